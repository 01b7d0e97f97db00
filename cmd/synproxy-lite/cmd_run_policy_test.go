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

// TestCheckPolicy: check prints the policy's sets and rules in the ruleset
// (as run --dry-run does) and a line per service of the engine's policy;
// a policy it refuses is named by its key and line.
func TestCheckPolicy(t *testing.T) {
	const good = "../../internal/config/testdata/good/policy.toml"
	stdout, stderr, code := runMain("check", "--config", good)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"table inet spl_web {", "elements = { 10.99.9.0/24, 10.99.66.0/24 }",
		"elements = { fd00:99:9::/64, fd00:99:66::1 }", `ip saddr @deny4 counter name "denied" drop`, "set ondemand {",
		"set proven4 {", `ip saddr @proven4 counter name "proven" queue num 101`, "table inet spl_api {",
		"elements = { 10.99.7.0/24 }", `ip saddr @allow4 counter name "allowed" accept`, "dnat ipv4 to 10.99.0.3:80"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, stdout)
		}
	}
	for _, want := range []string{
		good + ": service web: mode on-demand (cookies from 300 SYN/s to the port, off below 150 SYN/s for 3s); " +
			"SYN limit 50/s burst 20 per /32 and /48 source; reflection budget 200 SYN-ACK/s burst 200 per /32 and /48 source; " +
			"allow 0, deny 4 prefixes; proven clients first (4096 sources a family, for 5m0s)\n",
		good + ": service api: mode monitor; no SYN limit; reflection budget 1000 SYN-ACK/s burst 1000 per /32 and /64 source; " +
			"allow 1, deny 0 prefixes\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}
	if dry, _, code := runMain("run", "--dry-run", "--config", good); code != exitOK || dry != stdout {
		t.Errorf("run --dry-run --config: exit %d, a ruleset other than check's:\n%s", code, dry)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name, policy, want string
	}{
		{"mode", "[services.policy]\nmode = \"passive\"\n", `:5: services[0].policy.mode = "passive": want protect, monitor or on-demand`},
		{"unknown", "[services.policy]\nsynrate = 5\n", ":5: unknown key services[0].policy.synrate"},
		{"deny-file", "[services.policy]\ndeny_file = \"nosuch.list\"\n", `:5: services[0].policy.deny_file = "nosuch.list": open ` +
			filepath.Join(dir, "nosuch.list") + ": no such file"},
		{"deny-line", "[services.policy]\ndeny_file = \"bad.list\"\n", `bad.list:2: "10.99.300.1" is neither a CIDR`},
		{"allow", "policy = { allow = [\"10.99.0.0/33\"] }\n", `:4: services[0].policy.allow = "10.99.0.0/33": want CIDRs`},
	} {
		os.WriteFile(filepath.Join(dir, "bad.list"), []byte("10.99.1.0/24\n10.99.300.1\n"), 0o644)
		conf := filepath.Join(dir, tc.name+".toml")
		os.WriteFile(conf, []byte("[[services]]\nports = [443]\nbackends = [\"127.0.0.1:8443\"]\n"+tc.policy), 0o644)
		_, stderr, code := runMain("check", "--config", conf)
		if code != exitFailure || !strings.HasPrefix(stderr, "synproxy-lite check: config: "+conf) || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, %q; want %q", tc.name, code, stderr, tc.want)
		}
	}
	// The flags' policy is checked by the same code, naming the flags.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "passive"}, "--mode passive: want protect, monitor or on-demand"},
		{[]string{"--proven-clients", "--proven-timeout", "10ms"}, "--proven-timeout 10ms: want at least 1s"},
		{[]string{"--syn-burst", "-3"}, "--syn-burst -3: want 0 (the rate)"},
	} {
		_, stderr, code := runMain(append([]string{"run", "--dry-run", "--port", "80", "--backend", "10.99.0.1:80"}, tc.args...)...)
		if code != exitUsage || !strings.HasPrefix(stderr, "synproxy-lite run: "+tc.want) {
			t.Errorf("%v: exit %d, %q; want %q", tc.args, code, stderr, tc.want)
		}
	}
	// afpacket and afxdp serve proven clients themselves, on a ring of
	// their own: no nft set or queue for them; auto picks afxdp on lo. A
	// configuration file with them passes check.
	for _, drv := range []string{"afpacket", "afxdp"} {
		conf := filepath.Join(dir, "proven-"+drv+".toml")
		os.WriteFile(conf, []byte("[[services]]\nports = [443]\nbackends = [\"127.0.0.1:8443\"]\ndriver = \""+drv+
			"\"\ninterface = \"lo\"\n[services.policy.proven_clients]\nenabled = true\n"), 0o644)
		if _, stderr, code := runMain("check", "--config", conf); code != exitOK {
			t.Errorf("check of proven clients on %s: exit %d, %s", drv, code, stderr)
		}
	}
	for _, drv := range []string{"afpacket", "afxdp", "auto"} {
		out, stderr, code := runMain("run", "--dry-run", "--port", "80", "--backend", "10.99.0.1:80", "--proven-clients",
			"--driver", drv, "--interface", "lo")
		if code != exitOK || strings.Contains(out, "proven4") || strings.Contains(out, "queue num") {
			t.Errorf("--proven-clients --driver %s: exit %d, %s\n%s", drv, code, stderr, out)
		}
		if drv == "auto" && !strings.Contains(stderr, "driver=afxdp") {
			t.Errorf("--proven-clients --driver auto: %s; want afxdp chosen", stderr)
		}
	}
}
