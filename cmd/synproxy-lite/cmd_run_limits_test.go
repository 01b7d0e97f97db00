package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// TestRunLimits: the limit flags spell handoff.Limits; 0 switches keepalive
// and the user timeout off; a bad value is refused naming its flag.
func TestRunLimits(t *testing.T) {
	base := []string{"--port", "8080", "--backend", "10.99.0.1:80"}
	for _, tc := range []struct {
		name string
		args []string
		want handoff.Limits
	}{
		{"defaults", nil, handoff.Limits{SourcePrefix4: 32, SourcePrefix6: 64, KeepAlive: time.Minute,
			UserTimeout: 2 * time.Minute, DialTimeout: 10 * time.Second, MaxDials: 256}},
		{"set", []string{"--max-conns", "3", "--max-conns-per-source", "2", "--source-prefix4", "24",
			"--source-prefix6", "48", "--idle-timeout", "2s", "--keepalive", "0", "--user-timeout", "0",
			"--backend-timeout", "1s", "--max-dials", "-1"},
			handoff.Limits{MaxConns: 3, MaxConnsPerSource: 2, SourcePrefix4: 24, SourcePrefix6: 48,
				IdleTimeout: 2 * time.Second, KeepAlive: -1, UserTimeout: -1, DialTimeout: time.Second, MaxDials: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseRunFlags(append(base, tc.args...), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if *o.limits != tc.want {
				t.Errorf("limits %+v, want %+v", *o.limits, tc.want)
			}
		})
	}
	for _, bad := range [][]string{
		{"--max-conns", "-2"}, {"--max-conns-per-source", "-1"}, {"--source-prefix4", "33"},
		{"--source-prefix6", "0"}, {"--idle-timeout", "-1s"}, {"--keepalive", "10ms"},
		{"--user-timeout", "-1s"}, {"--backend-timeout", "0"}, {"--max-dials", "0"},
	} {
		_, err := parseRunFlags(append(base, bad...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: %v, want an error naming %s", bad, err, bad[0])
		}
	}
}
