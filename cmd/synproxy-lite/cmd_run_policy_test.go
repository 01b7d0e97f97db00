package main

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/engine"
)

// TestRunPolicy: the policy flags spell engine.Policy and the lists; a bad
// value is refused naming its flag.
func TestRunPolicy(t *testing.T) {
	dir := t.TempDir()
	allow := filepath.Join(dir, "allow")
	os.WriteFile(allow, []byte("# monitoring\n10.99.1.0/24\n\nfd00:99::7 # one host\n"), 0o600)
	base := []string{"--port", "8080", "--backend", "10.99.0.1:80"}
	for _, tc := range []struct {
		name  string
		args  []string
		want  engine.Policy
		allow []string
	}{
		{"defaults", nil, engine.Policy{ReflectRate: engine.DefaultReflectRate, Prefix4: 32, Prefix6: 64}, nil},
		{"set", []string{"--syn-rate", "50", "--syn-burst", "10", "--reflect-rate", "0", "--source-prefix6", "48",
			"--mode", "on-demand", "--on-demand-rate", "300", "--on-demand-hold", "3s", "--allow-file", allow},
			engine.Policy{Mode: engine.ModeOnDemand, SYNRate: 50, SYNBurst: 10, Prefix4: 32, Prefix6: 48,
				EngageRate: 300, Hold: 3 * time.Second}, []string{"10.99.1.0/24", "fd00:99::7/128"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseRunFlags(append(base, tc.args...), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if o.policy.Mode != tc.want.Mode || o.policy.SYNRate != tc.want.SYNRate || o.policy.SYNBurst != tc.want.SYNBurst ||
				o.policy.ReflectRate != tc.want.ReflectRate || o.policy.Prefix4 != tc.want.Prefix4 ||
				o.policy.Prefix6 != tc.want.Prefix6 || o.policy.EngageRate != tc.want.EngageRate || o.policy.Hold != tc.want.Hold {
				t.Errorf("policy %+v, want %+v", *o.policy, tc.want)
			}
			var got []string
			if o.lists != nil {
				for _, p := range o.lists.Allow {
					got = append(got, p.String())
				}
			}
			if strings.Join(got, " ") != strings.Join(tc.allow, " ") {
				t.Errorf("allow list %v, want %v", got, tc.allow)
			}
		})
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("10.99.1.0/24\n10.99.300.1\n"), 0o600)
	for _, args := range [][]string{
		{"--mode", "passive"}, {"--syn-rate", "-1"}, {"--reflect-rate", "-5"}, {"--on-demand-rate", "0", "--mode", "on-demand"},
		{"--on-demand-release", "2000"}, {"--on-demand-hold", "-1s"}, {"--allow-file", bad}, {"--deny-file", filepath.Join(dir, "none")},
	} {
		_, err := parseRunFlags(append(base, args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), args[0]) && !strings.Contains(err.Error(), args[len(args)-2]) {
			t.Errorf("%v: %v, want an error naming the flag", args, err)
		}
	}
	if _, err := readPrefixFile("--allow-file", bad); err == nil || !strings.Contains(err.Error(), ":2:") {
		t.Errorf("bad line: %v, want its line number", err)
	}
	if p, _ := readPrefixFile("--allow-file", allow); len(p) != 2 || p[1] != netip.MustParsePrefix("fd00:99::7/128") {
		t.Errorf("read %v", p)
	}
}

// TestRunDryRunPolicy: --dry-run prints the lists' sets and counters and
// the on-demand rules.
func TestRunDryRunPolicy(t *testing.T) {
	dir := t.TempDir()
	deny := filepath.Join(dir, "deny")
	os.WriteFile(deny, []byte("10.99.9.0/24\nfd00:99:9::/64\n"), 0o600)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"run", "--port", "8080", "--backend", "10.99.0.1:80", "--dry-run",
		"--deny-file", deny, "--mode", "on-demand", "--on-demand-rate", "500"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"set deny4 {", "elements = { 10.99.9.0/24 }", "elements = { fd00:99:9::/64 }",
		`ip saddr @deny4 counter name "denied" drop`, "set ondemand {", `counter name "syns"`, "tcp dport @ondemand accept",
		"dnat ipv4 to 10.99.0.1:80"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, out.String())
		}
	}
}
