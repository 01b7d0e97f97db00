//go:build !linux

package handoff

import "syscall"

// markControl returns nil: socket marks are Linux only.
func markControl(mark uint32) func(network, address string, c syscall.RawConn) error { return nil }
