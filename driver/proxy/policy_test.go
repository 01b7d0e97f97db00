package proxy

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
)

func TestServerConfigPolicy(t *testing.T) {
	backend := netip.MustParseAddrPort("10.99.0.1:80")
	for _, tc := range []struct {
		name string
		cfg  *ServerConfig
		ok   bool
	}{
		{"lists", &ServerConfig{Port: 80, Backend: backend, Lists: &nft.Lists{Allow: []netip.Prefix{netip.MustParsePrefix("10.99.1.0/24")}}}, true},
		{"invalid prefix", &ServerConfig{Port: 80, Lists: &nft.Lists{Deny: []netip.Prefix{{}}}}, false},
		{"monitor", &ServerConfig{Port: 80, Backend: backend, Policy: &engine.Policy{Mode: engine.ModeMonitor}}, true},
		{"monitor without a backend", &ServerConfig{Port: 80, Policy: &engine.Policy{Mode: engine.ModeMonitor}}, false},
		{"on demand", &ServerConfig{Port: 80, Backend: backend, Policy: &engine.Policy{Mode: engine.ModeOnDemand, EngageRate: 100}}, true},
		{"on demand without a rate", &ServerConfig{Port: 80, Backend: backend, Policy: &engine.Policy{Mode: engine.ModeOnDemand}}, false},
		{"proven clients", &ServerConfig{Port: 80, ProvenClients: &nft.Proven{}}, true},
		{"proven clients on afpacket", &ServerConfig{Port: 80, Driver: "afpacket", Interface: "eth0", ProvenClients: &nft.Proven{}}, true},
		{"proven clients on afxdp", &ServerConfig{Port: 80, Driver: "afxdp", Interface: "eth0", ProvenClients: &nft.Proven{}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewServer(tc.cfg)
			if (err == nil) != tc.ok {
				t.Errorf("NewServer: %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("%v is not an ErrConfig", err)
			}
		})
	}
}

// TestServerListsWithout: SetLists on a Server without Lists fails.
func TestServerListsWithout(t *testing.T) {
	s, err := NewServer(&ServerConfig{Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetLists(&nft.Lists{}); !errors.Is(err, ErrNoLists) && !errors.Is(err, ErrNotSupported) {
		t.Errorf("SetLists: %v, want ErrNoLists", err)
	}
	if s.Lists() != nil {
		t.Error("Lists of a Server without them is not nil")
	}
}
