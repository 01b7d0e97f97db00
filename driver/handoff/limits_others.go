//go:build !linux

package handoff

import (
	"net"
	"time"
)

// nofile returns a common soft limit of open descriptors.
func nofile() int { return 1024 }

// setTimeouts sets keepalive where the system supports it.
func setTimeouts(c net.Conn, ka, ut time.Duration) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAlive(ka >= 0)
	}
}

// sinceData is not known without TCP_INFO.
func sinceData(c net.Conn) (time.Duration, bool) { return 0, false }
