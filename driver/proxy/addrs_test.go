package proxy

import (
	"errors"
	"net/netip"
	"testing"
)

// TestAddrsConfig: a backend on this host at the protected port is
// accepted when Addrs leave its address unprotected, refused when they
// protect it; a driver that taps packets takes no Addrs.
func TestAddrsConfig(t *testing.T) {
	lo := netip.MustParseAddrPort("127.0.0.1:443")
	for _, tc := range []struct {
		name string
		cfg  ServerConfig
		ok   bool
	}{
		{"every address", ServerConfig{Port: 443, Backend: lo}, false},
		{"another address", ServerConfig{Port: 443, Backend: lo, Addrs: []netip.Addr{netip.MustParseAddr("10.99.0.1")}}, true},
		{"the backend's address", ServerConfig{Port: 443, Backend: lo, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}, false},
		{"a further backend's address", ServerConfig{Port: 443, Backend: netip.MustParseAddrPort("10.99.0.9:80"),
			Backends: []netip.AddrPort{lo}, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}, false},
		{"afpacket", ServerConfig{Port: 443, Driver: "afpacket", Interface: "eth0",
			Addrs: []netip.Addr{netip.MustParseAddr("10.99.0.1")}}, false},
	} {
		err := tc.cfg.validate()
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
