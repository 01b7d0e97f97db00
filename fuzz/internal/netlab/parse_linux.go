package netlab

import "syscall"

func syscallParseNetlink(b []byte) ([]syscall.NetlinkMessage, error) {
	return syscall.ParseNetlinkMessage(b)
}
