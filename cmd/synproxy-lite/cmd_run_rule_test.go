package main

import (
	"io"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// TestRunRule: the flags of "run" spell the engine's synproxy rules; -1
// switches the MSS option or window scaling off, 0 means the default MSS.
func TestRunRule(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		r4, r6 packet.Rule
	}{
		{"defaults", nil,
			packet.Rule{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, Timestamp: true, SACKPerm: true, TTL: 64},
			packet.Rule{MSS: 1440, HasMSS: true, WScale: 7, HasWScale: true, Timestamp: true, SACKPerm: true, TTL: 64}},
		{"no mss, no wscale", []string{"--mss", "-1", "--mss6", "-1", "--wscale", "-1"},
			packet.Rule{Timestamp: true, SACKPerm: true, TTL: 64},
			packet.Rule{Timestamp: true, SACKPerm: true, TTL: 64}},
		{"mss 0 is the default", []string{"--mss", "0", "--mss6", "0", "--wscale", "0"},
			packet.Rule{MSS: 1460, HasMSS: true, HasWScale: true, Timestamp: true, SACKPerm: true, TTL: 64},
			packet.Rule{MSS: 1440, HasMSS: true, HasWScale: true, Timestamp: true, SACKPerm: true, TTL: 64}},
		{"options off", []string{"--mss", "1200", "--wscale", "14", "--timestamp=false", "--sack=false"},
			packet.Rule{MSS: 1200, HasMSS: true, WScale: 14, HasWScale: true, TTL: 64},
			packet.Rule{MSS: 1440, HasMSS: true, WScale: 14, HasWScale: true, TTL: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--port", "8080", "--backend", "10.99.0.1:80"}, tc.args...)
			o, err := parseRunFlags(args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if r := o.rule(o.mss, 1460); *r != tc.r4 {
				t.Errorf("IPv4 rule %+v, want %+v", *r, tc.r4)
			}
			if r := o.rule(o.mss6, 1440); *r != tc.r6 {
				t.Errorf("IPv6 rule %+v, want %+v", *r, tc.r6)
			}
		})
	}
}
