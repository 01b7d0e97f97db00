package proxy

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// TestBackendIsSelf: a Backend on this host at the protected Port would
// have the proxy hand its own backend connections over to itself, without
// end. Such a config is refused, naming both flags.
func TestBackendIsSelf(t *testing.T) {
	cases := []struct {
		backend string
		self    bool
	}{
		{"127.0.0.1:80", true},
		{"127.0.0.2:80", true},
		{"[::1]:80", true},
		{"0.0.0.0:80", true},
		{"[::]:80", true},
		{"[::ffff:127.0.0.1]:80", true},
		{"127.0.0.1:8080", false},
		{"10.99.0.1:80", false}, // not an address of this host
		{"[fd00:99::1]:80", false},
	}
	// An address of one of this host's interfaces, if it has one.
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() {
				cases = append(cases, struct {
					backend string
					self    bool
				}{netip.AddrPortFrom(p.Addr(), 80).String(), true})
				break
			}
		}
	}
	for _, tc := range cases {
		t.Run(tc.backend, func(t *testing.T) {
			cfg := &ServerConfig{Port: 80, Backend: netip.MustParseAddrPort(tc.backend)}
			err := cfg.validate()
			if !tc.self {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("validate = %v, want ErrConfig", err)
			}
			for _, w := range []string{"--port", "--backend", tc.backend} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q: %v", w, err)
				}
			}
		})
	}
}
