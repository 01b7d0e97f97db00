package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runMain runs the binary's run function and returns its output and exit
// code.
func runMain(args ...string) (stdout, stderr string, code int) {
	var o, e strings.Builder
	code = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), code
}

// TestRunFlagErrors: every error of run's flags names the flag, the value
// and what would be valid.
func TestRunFlagErrors(t *testing.T) {
	base := []string{"run", "--dry-run"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "70000", "--backend", "10.99.0.1:80"}, "--port 70000: want a port number 1-65535"},
		{[]string{"--backend", "10.99.0.1:80"}, "--port: required"},
		{[]string{"--port", "80", "--backend", "::1:80"}, "--backend ::1:80: an IPv6 address needs brackets"},
		{[]string{"--port", "80", "--backend", "10.99.0.1:80", "--rotate", "90s"},
			"--rotate 1m30s: want 0 (never) or a whole number of minutes"},
		{[]string{"--port", "80", "--backend", "10.99.0.1:http2"}, `--backend 10.99.0.1:http2: bad port "http2"`},
		{[]string{"--port", "80", "--backend", "10.99.0.1:80", "--queue", "70000"}, "--queue 70000: want 0-65535"},
		{[]string{"--port", "80", "--backend", "10.99.0.1:80", "--workers", "0"}, "--workers 0: want 1-256"},
		{[]string{"--port", "80", "--backend", "10.99.0.1:80", "--wscale", "15"}, "--wscale 15: want -1 (no window scaling) or 0-14"},
		{[]string{"--port", "80", "--backend", "10.99.0.1:80", "--mss", "70000"}, "--mss 70000: want -1 (no MSS option)"},
		{[]string{"--port", "80", "--backend", "10.99.0.1:80", "--driver", "xdp"}, "--driver xdp: want auto or nfqueue or afpacket"},
		{[]string{"--port", "80", "--backend", "10.99.0.1:80", "--driver", "afpacket"}, "--interface: required with driver afpacket"},
		{[]string{"--port", "80", "--backend", "10.99.0.1:80", "--log-level", "loud"}, "--log-level loud: want debug, info, warn or error"},
		{[]string{"--port", "80", "--backend", "10.99.0.1:80", "--table", "a-b"}, "--table a-b: want a name of letters"},
		{[]string{"--port", "80", "--backend", "10.99.0.1:80", "--key-file", "k", "--fleet-secret-file", "f"},
			"--key-file and --fleet-secret-file exclude each other"},
		{[]string{"--config", "x.toml", "--port", "80"}, "--config excludes --port"},
	} {
		_, stderr, code := runMain(append(base, tc.args...)...)
		if code != exitUsage || !strings.HasPrefix(stderr, "synproxy-lite run: "+tc.want) {
			t.Errorf("%v: exit %d, %q; want exit %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
	// --workers is the global and the service's workers: said once.
	if _, stderr, _ := runMain("run", "--port", "80", "--backend", "10.99.0.1:80", "--workers", "0"); stderr !=
		"synproxy-lite run: --workers 0: want 1-256\n" {
		t.Errorf("--workers 0: %q", stderr)
	}
}

// TestCheck: check exits 0 and prints the rulesets for the good files, 1
// with an error naming the file and the key for every bad file, 2 for bad
// flags; it changes nothing on the host.
func TestCheck(t *testing.T) {
	good, _ := filepath.Glob("../../internal/config/testdata/good/*.toml")
	for _, f := range append(good, "../../docs/synproxy-lite.toml") {
		stdout, stderr, code := runMain("check", "--config", f)
		if code != exitOK || !strings.Contains(stdout, "table inet ") || !strings.Contains(stderr, f+": valid: ") {
			t.Errorf("%s: exit %d\n%s\n%s", f, code, stdout, stderr)
		}
	}
	stdout, _, _ := runMain("check", "--config", "../../internal/config/testdata/good/two.toml")
	for _, want := range []string{"# service web, port 443", "table inet spl_web {", "table inet spl_web_2 {",
		"table inet spl_ssh {", "tcp dport 8443", "counter queue num 102 ", "queue num 104 bypass"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("two.toml: no %q in\n%s", want, stdout)
		}
	}
	// A line says what BGP announces to whom, or that there is none.
	for f, want := range map[string]string{
		"bgp.toml": "bgp.toml: bgp: AS 65001, router id 10.99.161.11, 2 peer(s) 10.99.161.1, [fd00:99:a1::1]:1179 (AS 65000), " +
			"announce 10.99.175.1/32, fd00:99:af::1 while ready, hold time 3s\n",
		"minimal.toml": "minimal.toml: bgp: none\n",
	} {
		if _, stderr, code := runMain("check", "--config", "../../internal/config/testdata/good/"+f); code != exitOK ||
			!strings.Contains(stderr, want) {
			t.Errorf("%s: exit %d, no %q in\n%s", f, code, want, stderr)
		}
	}
	bad, _ := filepath.Glob("../../internal/config/testdata/bad/*.toml")
	if len(bad) == 0 {
		t.Fatal("no bad files")
	}
	for _, f := range bad {
		_, stderr, code := runMain("check", "--config", f)
		if code != exitFailure || !strings.HasPrefix(stderr, "synproxy-lite check: config: "+f) {
			t.Errorf("%s: exit %d, %q", f, code, stderr)
		}
	}
	for _, args := range [][]string{{"check"}, {"check", "--config"}, {"check", "--config", "a", "b"}, {"check", "--bogus"}} {
		if _, _, code := runMain(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	conf := filepath.Join(t.TempDir(), "afpacket.toml")
	os.WriteFile(conf, []byte("[[services]]\nports = [443]\nbackends = [\"127.0.0.1:8443\"]\ndriver = \"afpacket\"\ninterface = \"splnosuch0\"\n"), 0o644)
	if _, stderr, code := runMain("check", "--config", conf); code != exitFailure ||
		!strings.Contains(stderr, `services[0].interface = "splnosuch0": no such interface`) {
		t.Errorf("missing interface: exit %d, %q", code, stderr)
	}
	if _, stderr, code := runMain("check", "--config", filepath.Join(t.TempDir(), "missing.toml")); code != exitFailure ||
		!strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
}

// TestCheckKeyFile: check reads the key file the configuration names, with
// run's checks (its mode), and names the key when it fails.
func TestCheckKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "cookie.key")
	if _, _, code := runMain("key", "generate", "--out", key); code != exitOK {
		t.Fatal("key generate failed")
	}
	conf := filepath.Join(dir, "c.toml")
	os.WriteFile(conf, []byte("key_file = \""+key+"\"\nrotate = \"1h\"\n[[services]]\nports = [443]\nbackends = [\"127.0.0.1:8443\"]\n"), 0o644)
	if _, stderr, code := runMain("check", "--config", conf); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	os.Chmod(key, 0o644)
	if _, stderr, code := runMain("check", "--config", conf); code != exitFailure ||
		!strings.Contains(stderr, "key_file: config: key file "+key+" has mode 0644") {
		t.Errorf("readable key: exit %d, %q", code, stderr)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	os.Chmod(key, 0o600)
	os.WriteFile(conf, []byte("key_credential = \"cookie.key\"\n[[services]]\nports = [443]\nbackends = [\"127.0.0.1:8443\"]\n"), 0o644)
	if _, stderr, code := runMain("check", "--config", conf); code != exitOK || strings.Contains(stderr, "not checked") {
		t.Errorf("credential: exit %d, %q", code, stderr)
	}
	os.WriteFile(conf, []byte("key_credential = \"other\"\n[[services]]\nports = [443]\nbackends = [\"127.0.0.1:8443\"]\n"), 0o644)
	if _, stderr, code := runMain("check", "--config", conf); code != exitFailure || !strings.Contains(stderr, "key_credential: ") {
		t.Errorf("missing credential: exit %d, %q", code, stderr)
	}
}

// TestKeyGenerate: key generate writes a key (or fleet secret) with mode
// 0600, refuses to overwrite a file without --force, and run accepts what
// it writes.
func TestKeyGenerate(t *testing.T) {
	dir := t.TempDir()
	key, fleet := filepath.Join(dir, "cookie.key"), filepath.Join(dir, "fleet.secret")
	for _, args := range [][]string{{"--out", key}, {"--fleet", "--out", fleet}} {
		stdout, stderr, code := runMain(append([]string{"key", "generate"}, args...)...)
		if code != exitOK || !strings.Contains(stdout, "(mode 0600)") {
			t.Fatalf("%v: exit %d %q %q", args, code, stdout, stderr)
		}
	}
	first, _ := os.ReadFile(key)
	for _, f := range []string{key, fleet} {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, st.Mode(), err)
		}
		b, _ := os.ReadFile(f)
		if len(b) != 65 || b[64] != '\n' {
			t.Errorf("%s: %q, want 64 hex digits and a newline", f, b)
		}
	}
	if _, stderr, code := runMain("key", "generate", "--out", key); code != exitFailure ||
		!strings.Contains(stderr, "--out "+key+": exists; give --force to replace it") {
		t.Errorf("overwrite: exit %d %q", code, stderr)
	}
	if again, _ := os.ReadFile(key); string(again) != string(first) {
		t.Error("the key was overwritten without --force")
	}
	if _, _, code := runMain("key", "generate", "--out", key, "--force"); code != exitOK {
		t.Errorf("--force: exit %d", code)
	}
	if again, _ := os.ReadFile(key); string(again) == string(first) {
		t.Error("--force did not replace the key")
	}
	if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
		t.Errorf("--force: mode %v", st.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d files left in the directory, want 2", len(ents))
	}
	for _, args := range [][]string{{"--key-file", key}, {"--key-file", key, "--rotate", "1h"}, {"--fleet-secret-file", fleet}} {
		o, err := parseRunFlags(append([]string{"--port", "80", "--backend", "10.99.0.1:80"}, args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := o.ring(); err != nil || r == nil {
			t.Errorf("run %v: %v", args, err)
		}
	}
	for _, args := range [][]string{{"key"}, {"key", "make"}, {"key", "generate"}, {"key", "generate", "--out", key, "extra"}} {
		if _, _, code := runMain(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
