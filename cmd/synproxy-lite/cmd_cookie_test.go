package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const specKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), code
}

// The worked examples of the specification (§6), through the command line.
func TestCookieEncodeKnownAnswers(t *testing.T) {
	for _, c := range []struct {
		saddr, daddr, sport, dport, seq, mss, count string
		want                                        string
	}{
		{"192.0.2.1", "198.51.100.7", "12345", "80", "1000", "1460", "5", `{"isn":4185536808,"mss":1460,"mss_index":3,"slot":5}`},
		{"192.0.2.1", "198.51.100.7", "12345", "80", "1000", "0", "5", `{"isn":4185536805,"mss":536,"mss_index":0,"slot":5}`},
		{"10.0.0.1", "10.0.0.2", "40000", "443", "4294967295", "1300", "4294967295", `{"isn":2112870097,"mss":1300,"mss_index":1,"slot":4294967295}`},
		{"203.0.113.9", "192.0.2.80", "65535", "8080", "305419896", "1452", "286330", `{"isn":548715145,"mss":1440,"mss_index":2,"slot":286330}`},
		{"2001:db8::1", "2001:db8::2", "40000", "443", "123456789", "1440", "71600", `{"isn":3344030359,"mss":1440,"mss_index":2,"slot":71600}`},
		{"2001:db8::1", "2001:db8::2", "40000", "443", "123456789", "9000", "71600", `{"isn":3344030360,"mss":8940,"mss_index":3,"slot":71600}`},
		{"fe80::1", "fe80::2", "1", "65535", "0", "1219", "255", `{"isn":874723556,"mss":1220,"mss_index":0,"slot":255}`},
	} {
		out, errOut, code := runCmd(t, "cookie", "encode", "--key", specKeyHex, "--saddr", c.saddr, "--daddr", c.daddr,
			"--sport", c.sport, "--dport", c.dport, "--seq", c.seq, "--mss", c.mss, "--slot", c.count, "--json")
		if code != 0 || strings.TrimSpace(out) != c.want {
			t.Errorf("encode %v: exit %d, out %q, err %q; want %s", c, code, out, errOut, c.want)
		}
	}
}

func TestCookieCheck(t *testing.T) {
	base := []string{"cookie", "check", "--key", specKeyHex, "--saddr", "192.0.2.1", "--daddr", "198.51.100.7", "--sport", "12345", "--dport", "80"}
	// The cookie of slot 5 carries 5 in its top byte: slot_mod_256 is 5
	// whatever the check slot; a forged one carries what its bits say.
	for _, c := range []struct {
		seq, cookie, count string
		code               int
		want               map[string]any
	}{
		{"1000", "4185536808", "5", 0, map[string]any{"valid": true, "mss": 1460.0, "mss_index": 3.0, "slot": 5.0, "slot_mod_256": 5.0, "age": 0.0, "check_slot": 5.0}},
		{"1000", "4185536808", "6", 0, map[string]any{"valid": true, "mss": 1460.0, "mss_index": 3.0, "slot": 5.0, "slot_mod_256": 5.0, "age": 1.0, "check_slot": 6.0}},
		{"1000", "4185536808", "7", 1, map[string]any{"valid": false, "reason": "stale", "slot_mod_256": 5.0, "age": 2.0, "check_slot": 7.0}},
		{"1000", "4185536808", "4", 1, map[string]any{"valid": false, "reason": "stale", "slot_mod_256": 5.0, "age": 255.0, "check_slot": 4.0}},
		{"1000", "4185536809", "5", 1, map[string]any{"valid": false, "reason": "hash", "slot": 5.0, "slot_mod_256": 5.0, "age": 0.0, "check_slot": 5.0}},
		{"1001", "4185536808", "5", 0, map[string]any{"valid": true, "mss": 1440.0, "mss_index": 2.0, "slot": 5.0, "slot_mod_256": 5.0, "age": 0.0, "check_slot": 5.0}},
		{"0x3e8", "0xf97a3928", "5", 0, map[string]any{"valid": true, "mss": 1460.0, "mss_index": 3.0, "slot": 5.0, "slot_mod_256": 5.0, "age": 0.0, "check_slot": 5.0}},
	} {
		out, errOut, code := runCmd(t, append(base, "--seq", c.seq, "--cookie", c.cookie, "--check-slot", c.count, "--json")...)
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("check %v: output %q (stderr %q): %v", c, out, errOut, err)
		}
		if code != c.code || len(got) != len(c.want) {
			t.Errorf("check %v: exit %d, %v; want exit %d, %v", c, code, got, c.code, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("check %v: %s = %v, want %v", c, k, got[k], v)
			}
		}
		// Without --json, one line that says the same.
		text, _, tcode := runCmd(t, append(base, "--seq", c.seq, "--cookie", c.cookie, "--check-slot", c.count)...)
		want := "valid: MSS "
		if r, ok := c.want["reason"]; ok {
			want = "invalid (" + r.(string) + "): "
		}
		if tcode != code || !strings.HasPrefix(text, want) || strings.Count(text, "\n") != 1 {
			t.Errorf("check %v as text: exit %d, %q; want exit %d, %q...", c, tcode, text, code, want)
		}
	}
}

func TestCookieExplain(t *testing.T) {
	base := []string{"cookie", "explain", "--key", specKeyHex, "--saddr", "2001:db8::1", "--daddr", "2001:db8::2", "--sport", "40000", "--dport", "443", "--seq", "123456789"}
	out, _, code := runCmd(t, append(base, "--cookie", "3344030360", "--check-slot", "71601")...)
	for _, want := range []string{"IPv6", "0ff3661e", "age", "8940", "verdict: valid, MSS 8940, made in slot 71600, age 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	out, _, code = runCmd(t, append(base, "--cookie", "3344030360", "--check-slot", "71602")...)
	if code != 1 || !strings.Contains(out, "verdict: invalid (stale)") {
		t.Errorf("stale explain: exit %d\n%s", code, out)
	}
	out, _, code = runCmd(t, append(base, "--cookie", "3344030361", "--check-slot", "71600")...)
	if code != 1 || !strings.Contains(out, "verdict: invalid (hash)") {
		t.Errorf("forged explain: exit %d\n%s", code, out)
	}
}

func TestCookieBadFlags(t *testing.T) {
	enc := []string{"cookie", "encode", "--key", specKeyHex, "--saddr", "192.0.2.1", "--daddr", "198.51.100.7", "--sport", "1", "--dport", "2", "--seq", "3"}
	for _, args := range [][]string{
		{"cookie"},
		{"cookie", "frobnicate"},
		enc, // no --mss
		append(append([]string{}, enc...), "--mss", "65536"),
		append(append([]string{}, enc...), "--mss", "-1"),
		append(append([]string{}, enc...), "--mss", "1460", "--slot", "4294967296"),
		append(append([]string{}, enc...), "--mss", "1460", "--bogus", "1"),
		append(append([]string{}, enc...), "--mss", "1460", "--cookie", "1"),
		append(append([]string{}, enc...), "--mss", "1460", "extra"),
		{"cookie", "encode", "--key", "abc", "--saddr", "192.0.2.1", "--daddr", "198.51.100.7", "--sport", "1", "--dport", "2", "--seq", "3", "--mss", "1"},
		{"cookie", "encode", "--key", specKeyHex, "--saddr", "192.0.2.1", "--daddr", "2001:db8::1", "--sport", "1", "--dport", "2", "--seq", "3", "--mss", "1"},
		{"cookie", "encode", "--key", specKeyHex, "--saddr", "nonsense", "--daddr", "192.0.2.2", "--sport", "1", "--dport", "2", "--seq", "3", "--mss", "1"},
		{"cookie", "check", "--key", specKeyHex, "--saddr", "192.0.2.1", "--daddr", "192.0.2.2", "--sport", "1", "--dport", "2", "--seq", "3"},
	} {
		out, errOut, code := runCmd(t, args...)
		if code != 2 || out != "" {
			t.Errorf("%v: exit %d, stdout %q; want exit 2 and no output", args, code, out)
		}
		if n := strings.Count(strings.TrimSpace(errOut), "\n"); len(args) > 2 && n != 0 {
			t.Errorf("%v: error is %d lines, want one: %q", args, n+1, errOut)
		}
	}
	// A leading zero is decimal, not octal.
	out, _, _ := runCmd(t, append(append([]string{}, enc[:len(enc)-2]...), "--seq", "010", "--mss", "1460", "--slot", "5")...)
	ref, _, _ := runCmd(t, append(append([]string{}, enc[:len(enc)-2]...), "--seq", "10", "--mss", "1460", "--slot", "5")...)
	if out != ref || out == "" {
		t.Errorf("--seq 010 gave %q, --seq 10 gave %q", out, ref)
	}
}

// writeKeyFile writes a key file with the mode given, owned by uid (which
// needs root unless it is the caller's).
func writeKeyFile(t *testing.T, dir, name, content string, mode os.FileMode, uid int) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if uid != os.Geteuid() {
		if err := os.Chown(p, uid, -1); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCookieKeyFile: --key-file gives the same answers as --key, for each
// operation; giving both is a usage error naming both flags; a key file
// that is refused (missing, mode, owner, contents) fails the command
// (exit 1) with the reason.
func TestCookieKeyFile(t *testing.T) {
	dir := t.TempDir()
	good := writeKeyFile(t, dir, "good", specKeyHex+"\n", 0o600, os.Geteuid())
	tuple := []string{"--saddr", "192.0.2.1", "--daddr", "198.51.100.7", "--sport", "12345", "--dport", "80", "--seq", "1000"}
	enc := append([]string{"--mss", "1460", "--slot", "5", "--json"}, tuple...)
	chk := append([]string{"--cookie", "4185536808", "--check-slot", "5", "--json"}, tuple...)
	chkText := append([]string{"--cookie", "4185536808", "--check-slot", "5"}, tuple...)
	with := func(op string, key []string, rest []string) []string {
		return append(append([]string{"cookie", op}, key...), rest...)
	}
	type kase struct {
		name string
		args []string
		code int
		want string // on stdout for exit 0, on stderr otherwise
	}
	cases := []kase{
		{"encode", with("encode", []string{"--key-file", good}, enc), exitOK, `{"isn":4185536808,"mss":1460,"mss_index":3,"slot":5}`},
		{"check", with("check", []string{"--key-file", good}, chk), exitOK, `"valid":true`},
		{"explain", with("explain", []string{"--key-file=" + good}, chkText), exitOK, "verdict: valid, MSS 1460"},
		{"both", with("encode", []string{"--key", specKeyHex, "--key-file", good}, enc), exitUsage, "--key and --key-file exclude each other"},
		{"neither", with("check", nil, chk), exitUsage, "missing --key or --key-file"},
		{"missing file", with("encode", []string{"--key-file", filepath.Join(dir, "missing")}, enc), exitFailure, "--key-file: config: open " + filepath.Join(dir, "missing")},
		{"group readable", with("encode", []string{"--key-file", writeKeyFile(t, dir, "0640", specKeyHex, 0o640, os.Geteuid())}, enc), exitFailure, "has mode 0640"},
		{"not a key", with("check", []string{"--key-file", writeKeyFile(t, dir, "short", "abcd", 0o600, os.Geteuid())}, chk), exitFailure, "--key-file: cookie: "},
	}
	if os.Geteuid() == 0 {
		other := writeKeyFile(t, dir, "other", specKeyHex, 0o600, 4242)
		cases = append(cases, kase{"another user's", with("explain", []string{"--key-file", other}, chk), exitFailure,
			"--key-file: config: key file " + other + " is owned by uid 4242; it must be owned by root (chown)"})
	} else {
		t.Log("the owner case needs root (os.Chown); not run")
	}
	for _, c := range cases {
		out, errOut, code := runCmd(t, c.args...)
		got := errOut
		if c.code == exitOK {
			got = out
		}
		if code != c.code || !strings.Contains(got, c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", c.name, code, out, errOut, c.code, c.want)
		}
		if c.code != exitOK && (out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0) {
			t.Errorf("%s: want no output and a one-line error: stdout %q, stderr %q", c.name, out, errOut)
		}
	}
}
