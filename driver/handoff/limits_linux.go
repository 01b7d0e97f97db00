package handoff

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nofile returns the soft limit of open descriptors.
func nofile() int {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 1 << 30
	}
	return int(r.Cur)
}

// setTimeouts sets keepalive (idle time ka, probes every ka/4, four of
// them; ka < 0: off) and TCP_USER_TIMEOUT (ut; ut < 0: the kernel's) on
// c's socket. A connection that is not a socket is left alone.
func setTimeouts(c net.Conn, ka, ut time.Duration) {
	if tc, ok := c.(*net.TCPConn); ok {
		if ka < 0 {
			tc.SetKeepAlive(false)
		} else {
			tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: ka, Interval: max(ka/4, time.Second), Count: 4})
		}
	}
	if ut < 0 {
		return
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(ut/time.Millisecond))
	})
}

// sinceData is how long ago c's socket last received or sent data, from
// TCP_INFO; ok is false for a connection that is not a TCP socket.
func sinceData(c net.Conn) (d time.Duration, ok bool) {
	sc, is := c.(syscall.Conn)
	if !is {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var ti *unix.TCPInfo
	cerr := rc.Control(func(fd uintptr) { ti, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if cerr != nil || err != nil {
		return 0, false
	}
	ms := min(ti.Last_data_recv, ti.Last_data_sent)
	return time.Duration(ms) * time.Millisecond, true
}
