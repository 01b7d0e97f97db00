package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// TestCookieFullProfile: encode, check and explain under --profile full
// agree with the package's known answers (cookie/testdata), and the full
// profile's flags are refused where they mean nothing.
func TestCookieFullProfile(t *testing.T) {
	tuple := []string{"--key", specKeyHex, "--saddr", "192.0.2.1", "--daddr", "198.51.100.7", "--sport", "12345", "--dport", "80", "--seq", "1000"}
	out, errOut, code := runCmd(t, append(append([]string{"cookie", "encode", "--profile", "full"}, tuple...),
		"--mss", "1460", "--wscale", "7", "--sack", "--slot", "5", "--json")...)
	want := `{"profile":"full","isn":3196012877,"tsval_bits":177,"mss":1460,"mss_index":6,"wscale":7,"sack":true,"ecn":false,"key_bit":0,"slot":5}`
	if code != 0 || strings.TrimSpace(out) != want {
		t.Fatalf("encode: exit %d, %q %q; want %s", code, out, errOut, want)
	}
	for _, c := range []struct {
		args []string
		code int
		want map[string]any
	}{
		{[]string{"--cookie", "0xbe7f494d", "--check-slot", "6", "--json", "--tsecr", "0xb1"}, 0,
			map[string]any{"valid": true, "mss": 1460.0, "wscale": 7.0, "sack": true, "tsecr_checked": true, "age": 1.0, "slot": 5.0, "check_slot": 6.0}},
		{[]string{"--cookie", "0xbe7f494d", "--check-slot", "5", "--json"}, 0, map[string]any{"valid": true, "tsecr_checked": false}},
		{[]string{"--cookie", "0xbe7f494d", "--check-slot", "5", "--json", "--tsecr", "0xb0"}, 1, map[string]any{"valid": false, "reason": "tsecr"}},
		{[]string{"--cookie", "0xbe7f494d", "--check-slot", "7", "--json"}, 1, map[string]any{"valid": false, "reason": "mac"}},
	} {
		out, errOut, code := runCmd(t, append(append([]string{"cookie", "check", "--profile", "full"}, tuple...), c.args...)...)
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil || code != c.code {
			t.Fatalf("check %v: exit %d, %q %q", c.args, code, out, errOut)
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("check %v: %s = %v, want %v", c.args, k, got[k], v)
			}
		}
	}
	out, _, code = runCmd(t, append(append([]string{"cookie", "explain", "--profile", "full"}, tuple...), "--cookie", "0xbe7f494d", "--check-slot", "6")...)
	if code != 0 || !strings.Contains(out, "verdict: valid, MSS 1460, wscale 7, sack true") {
		t.Errorf("explain: exit %d\n%s", code, out)
	}
	for _, bad := range [][]string{
		{"cookie", "check", "--wscale", "7"},
		{"cookie", "encode", "--profile", "full", "--tsecr", "1"},
		{"cookie", "check", "--profile", "full", "--sack"},
		{"cookie", "encode", "--profile", "rich"},
		{"cookie", "encode", "--profile", "full", "--wscale", "15"},
		{"cookie", "encode", "--wscale", "7"},
	} {
		args := append(bad[:2:2], tuple...)
		args = append(args, bad[2:]...)
		if bad[1] == "encode" {
			args = append(args, "--mss", "1460")
		} else {
			args = append(args, "--cookie", "1")
		}
		if _, _, code := runCmd(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}

func TestRunCookieProfile(t *testing.T) {
	base := []string{"--port", "8080", "--backend", "10.99.0.1:80"}
	for _, c := range []struct {
		args []string
		want cookie.Profile
	}{{nil, cookie.ProfileLinux}, {[]string{"--cookie-profile", "full"}, cookie.ProfileFull}, {[]string{"--cookie-profile", "linux"}, cookie.ProfileLinux}} {
		o, err := parseRunFlags(append(base, c.args...), io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if o.cfg.Profile() != c.want {
			t.Fatalf("%v: %v %v", c.args, o, err)
		}
		srvs, err := servers(o.cfg, slog.New(slog.DiscardHandler), true)
		if err != nil || len(srvs) != 1 || srvs[0].cfg.Engine == nil || srvs[0].cfg.Engine.Profile != c.want ||
			srvs[0].cfg.Ring != nil && srvs[0].cfg.Ring.Profile() != c.want {
			t.Errorf("%v: the server's engine config does not carry the profile", c.args)
		}
	}
	if _, err := parseRunFlags(append(base, "--cookie-profile", "rich"), io.Discard); err == nil {
		t.Error("--cookie-profile rich accepted")
	}
}
