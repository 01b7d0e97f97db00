package handoff

import (
	"context"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBackendDialMark: the Proxy's own backend connections carry the mark
// of Config, so that the rules never queue their packets (a backend on the
// protected port of this host would otherwise be handed over again).
func TestBackendDialMark(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: SO_MARK needs CAP_NET_ADMIN")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name string
		cfg  *Config
		want int
	}{
		{"mark", &Config{Mark: 0x53504c}, 0x53504c},
		{"no mark", &Config{}, 0},
		{"nil config", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Proxy{Backend: ln.Addr().String(), Config: tc.cfg}
			c, err := dial(context.Background(), p.dialer(), p.Backend)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rc, err := c.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var mark int
			var gerr error
			rc.Control(func(fd uintptr) { mark, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) })
			if gerr != nil || mark != tc.want {
				t.Errorf("backend socket mark %#x, %v; want %#x", mark, gerr, tc.want)
			}
		})
	}
}
