package proxy

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

func TestServerConfigValidate(t *testing.T) {
	backend := netip.MustParseAddrPort("10.99.0.1:80")
	rule := &packet.Rule{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, Timestamp: true, SACKPerm: true}
	rule6 := *rule
	rule6.MSS = 1440
	other6 := rule6
	other6.SACKPerm = false
	ecn := *rule
	ecn.ECN = true
	wide := *rule
	wide.WScale = 15
	for _, tc := range []struct {
		name string
		cfg  *ServerConfig
		ok   bool
	}{
		{"nil", nil, false},
		{"no port", &ServerConfig{}, false},
		{"minimal", &ServerConfig{Port: 80}, true},
		{"proxy", &ServerConfig{Port: 80, Backend: backend, ProxyProtocol: true, FailOpen: true}, true},
		{"negative workers", &ServerConfig{Port: 80, Workers: -1}, false},
		{"queues past 65535", &ServerConfig{Port: 80, Queue: 65535, Workers: 2}, false},
		{"negative backlog", &ServerConfig{Port: 80, Backlog: -1}, false},
		{"PROXY header without a backend", &ServerConfig{Port: 80, ProxyProtocol: true}, false},
		{"unknown driver", &ServerConfig{Port: 80, Driver: "dpdk"}, false},
		{"afpacket", &ServerConfig{Port: 80, Driver: "afpacket", Interface: "eth0"}, true},
		{"afpacket without an interface", &ServerConfig{Port: 80, Driver: "afpacket"}, false},
		{"afpacket failing open", &ServerConfig{Port: 80, Driver: "afpacket", Interface: "eth0", FailOpen: true}, false},
		{"rules", &ServerConfig{Port: 80, Rule: rule, Rule6: &rule6}, true},
		// The engine keeps a rule per family: they need not agree.
		{"Rule6 alone", &ServerConfig{Port: 80, Rule6: &rule6}, true},
		{"Rule6 with other options", &ServerConfig{Port: 80, Rule: rule, Rule6: &other6}, true},
		{"ECN", &ServerConfig{Port: 80, Rule: &ecn}, false},
		{"ECN for IPv6", &ServerConfig{Port: 80, Rule: rule, Rule6: &ecn}, false},
		{"window scale 15", &ServerConfig{Port: 80, Rule: &wide}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewServer(tc.cfg)
			if tc.ok && err != nil {
				t.Fatalf("NewServer: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrConfig) {
				t.Fatalf("NewServer = %v, want ErrConfig", err)
			}
		})
	}
}

// TestDrivers: every driver of the table can be looked up by its name and
// can be opened; the flags the daemon validates with follow the table.
func TestDrivers(t *testing.T) {
	ds := Drivers()
	if len(ds) == 0 || ds[0].Name != "nfqueue" {
		t.Fatalf("Drivers() = %v, want nfqueue first", ds)
	}
	for _, d := range ds {
		got, ok := LookupDriver(d.Name)
		if !ok || got.Name != d.Name || got.open == nil {
			t.Errorf("LookupDriver(%q) = %+v, %v", d.Name, got, ok)
		}
		if d.Drop && d.FailOpen {
			t.Errorf("%s: a driver under drop rules cannot fail open", d.Name)
		}
	}
	if _, ok := LookupDriver("dpdk"); ok {
		t.Error("LookupDriver found an unknown driver")
	}
}
