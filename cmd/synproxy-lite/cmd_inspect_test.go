package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The report itself is tested in internal/inspect; these tests are of the
// command: its flags, its exit codes and its messages.

func TestInspectUsageAndErrors(t *testing.T) {
	dir := t.TempDir()
	notCap := filepath.Join(dir, "x.txt")
	os.WriteFile(notCap, []byte("hello, world"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"inspect"}, exitUsage, "want one capture file"},
		{[]string{"inspect", "a", "b"}, exitUsage, "want one capture file"},
		{[]string{"inspect", "--bogus", "x"}, exitUsage, "--bogus: no such flag for inspect"},
		{[]string{"inspect", "--jsn", "x"}, exitUsage, "--jsn: no such flag for inspect; did you mean --json?"},
		{[]string{"inspect", notCap, "--count", "5"}, exitUsage, "--count is now --check-slot"},
		{[]string{"inspect", notCap, "--key", "abc"}, exitUsage, "--key"},
		{[]string{"inspect", notCap, "--check-slot", "-1"}, exitUsage, `--check-slot: "-1" is not a number in 0..4294967295`},
		{[]string{"inspect", notCap, "--key6", specKeyHex}, exitUsage, "--key6 needs --key"},
		{[]string{"inspect", notCap, "--key", specKeyHex, "--key6", "zz"}, exitUsage, "--key6"},
		{[]string{"inspect", filepath.Join(dir, "missing.pcap")}, exitFailure, "no such file"},
		{[]string{"inspect", notCap}, exitFailure, "not a pcap or pcapng file"},
	} {
		_, errOut, code := runCmd(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
	// A pcapng file on which gopacket's reader panics (found by
	// FuzzInspectCapture): reported as an error.
	crasher := filepath.Join(dir, "crasher.pcapng")
	os.WriteFile(crasher, []byte("\n\r\r\nD\x00\x00\x00M<+\x1a\x01\x00\x00\x000000000000 \x00A000000000000000000000000000000000\x00\x000000\x01\x00\x00\x000\x00\x00\x0000000000\t\x00\x00\x00\x00\x00\x00\x0000000000000000000000000000000000"), 0o644)
	if _, errOut, code := runCmd(t, "inspect", crasher); code != exitFailure || !strings.Contains(errOut, "capture reader failed on a malformed file") {
		t.Errorf("crasher: exit %d, %q", code, errOut)
	}
	out, _, code := runCmd(t, "inspect", "--help")
	if code != exitOK || !strings.Contains(out, "usage:") {
		t.Errorf("--help: %d %q", code, out)
	}
}

// TestInspectFlags: --key, --key6, --check-slot and --json reach the report, on
// the captures of Linux 6.1 and 6.12 nftables synproxy in packet/testdata
// (with the kernels' secrets in kernel.json).
func TestInspectFlags(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "packet", "testdata", "kernel.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index []struct {
		File       string
		Key4, Key6 string
		Max        uint32 `json:"slot_max"`
		Pairs      int
	}
	if err := json.Unmarshal(raw, &index); err != nil || len(index) == 0 {
		t.Fatalf("kernel.json: %v (%d entries)", err, len(index))
	}
	fx := index[0]
	path := filepath.Join("..", "..", "packet", "testdata", fx.File)
	count := strconv.FormatUint(uint64(fx.Max), 10)

	out, errOut, code := runCmd(t, "inspect", path, "--json", "--key", fx.Key4, "--key6", fx.Key6, "--check-slot", count)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitOK || errOut != "" || len(lines) != fx.Pairs+1 {
		t.Fatalf("--json: exit %d, stderr %q, %d lines for %d handshakes", code, errOut, len(lines), fx.Pairs)
	}
	for i, line := range lines[:fx.Pairs] {
		var h struct {
			Type   string
			Family string
			Cookie *struct {
				Count       *uint32 `json:"check_slot"`
				CountSource string  `json:"check_slot_source"`
				Valid       bool
			}
		}
		if err := json.Unmarshal([]byte(line), &h); err != nil || h.Type != "handshake" || h.Cookie == nil || !h.Cookie.Valid ||
			h.Cookie.CountSource != "flag" || *h.Cookie.Count != fx.Max {
			t.Fatalf("handshake %d: %v %s", i+1, err, line)
		}
	}
	if !strings.Contains(lines[fx.Pairs], `"type":"summary"`) {
		t.Errorf("last line is not the summary: %s", lines[fx.Pairs])
	}
	// --key6 is the IPv6 secret: with --key alone the IPv6 cookies fail
	// (the kernels' two secrets differ).
	out, _, code = runCmd(t, "inspect", path, "--key", fx.Key4, "--check-slot", count)
	if code != exitOK || !strings.Contains(out, "(IPv6)") || !strings.Contains(out, "checked in slot "+count+" (flag): valid") || !strings.Contains(out, "NOT valid") {
		t.Errorf("--key without --key6: exit %d\n%s", code, out)
	}
	out, _, code = runCmd(t, "inspect", path)
	if code != exitOK || !strings.Contains(out, "cookie   not checked (no --key)") || strings.Contains(out, "{") {
		t.Errorf("text report without --key: exit %d\n%s", code, out)
	}
}

// TestInspectKeyFiles: --key-file and --key6-file give the report --key and
// --key6 give; a key given both ways is a usage error naming both flags;
// --key6-file needs a key for IPv4; a refused key file fails the command.
func TestInspectKeyFiles(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "packet", "testdata", "kernel.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index []struct {
		File       string
		Key4, Key6 string
		Max        uint32 `json:"slot_max"`
	}
	if err := json.Unmarshal(raw, &index); err != nil || len(index) == 0 {
		t.Fatalf("kernel.json: %v (%d entries)", err, len(index))
	}
	fx := index[0]
	path := filepath.Join("..", "..", "packet", "testdata", fx.File)
	count := strconv.FormatUint(uint64(fx.Max), 10)
	dir := t.TempDir()
	me := os.Geteuid()
	k4 := writeKeyFile(t, dir, "key4", fx.Key4+"\n", 0o600, me)
	k6 := writeKeyFile(t, dir, "key6", fx.Key6+"\n", 0o400, me)
	open := writeKeyFile(t, dir, "open", fx.Key4, 0o644, me)

	want, errOut, code := runCmd(t, "inspect", path, "--json", "--key", fx.Key4, "--key6", fx.Key6, "--check-slot", count)
	if code != exitOK || errOut != "" || !strings.Contains(want, `"valid":true`) {
		t.Fatalf("reference with --key and --key6: exit %d, %q", code, errOut)
	}
	type kase struct {
		name string
		args []string
		code int
		want string // the stderr expected; for exit 0, stdout is the reference
	}
	cases := []kase{
		{"both files", []string{"--key-file", k4, "--key6-file", k6}, exitOK, ""},
		{"file and hex", []string{"--key-file", k4, "--key6", fx.Key6}, exitOK, ""},
		{"hex and file", []string{"--key", fx.Key4, "--key6-file", k6}, exitOK, ""},
		{"--key twice", []string{"--key", fx.Key4, "--key-file", k4}, exitUsage, "--key and --key-file exclude each other"},
		{"--key6 twice", []string{"--key-file", k4, "--key6", fx.Key6, "--key6-file", k6}, exitUsage, "--key6 and --key6-file exclude each other"},
		{"--key6-file alone", []string{"--key6-file", k6}, exitUsage, "--key6-file needs --key or --key-file"},
		{"--key6 alone", []string{"--key6", fx.Key6}, exitUsage, "--key6 needs --key or --key-file"},
		{"world readable", []string{"--key-file", open}, exitFailure, "--key-file: config: key file " + open + " has mode 0644"},
		{"missing --key6-file", []string{"--key-file", k4, "--key6-file", filepath.Join(dir, "missing")}, exitFailure, "--key6-file: config: open "},
	}
	if me == 0 {
		other := writeKeyFile(t, dir, "other", fx.Key6, 0o600, 4242)
		cases = append(cases, kase{"another user's", []string{"--key-file", k4, "--key6-file", other}, exitFailure,
			"--key6-file: config: key file " + other + " is owned by uid 4242; it must be owned by root (chown)"})
	} else {
		t.Log("the owner case needs root (os.Chown); not run")
	}
	for _, c := range cases {
		out, errOut, code := runCmd(t, append([]string{"inspect", path, "--json", "--check-slot", count}, c.args...)...)
		switch {
		case code != c.code:
			t.Errorf("%s: exit %d, stderr %q; want %d", c.name, code, errOut, c.code)
		case c.code == exitOK && (out != want || errOut != ""):
			t.Errorf("%s: report differs from --key/--key6's (stderr %q):\n%s", c.name, errOut, out)
		case c.code != exitOK && (out != "" || !strings.Contains(errOut, c.want)):
			t.Errorf("%s: stdout %q, stderr %q; want %q", c.name, out, errOut, c.want)
		}
	}
}
