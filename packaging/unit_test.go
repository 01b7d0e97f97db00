package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildBinary builds the command into dir and returns its path.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	goPath, err := exec.LookPath("go")
	if err != nil {
		t.Skip("SKIPPED LOUDLY: no go on PATH to build the binary")
	}
	bin := filepath.Join(dir, "synproxy-lite")
	if out, err := exec.Command(goPath, "build", "-o", bin, "../cmd/synproxy-lite").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// verifyUnit runs systemd-analyze verify on a unit file and returns what
// it said about that unit (it also reports on the host's units the unit
// pulls in, which are none of ours), and whether it exited non-zero.
func verifyUnit(t *testing.T, analyze, path string) (said string, failed bool) {
	t.Helper()
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	var ours []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "synproxy-lite") {
			ours = append(ours, line)
		}
	}
	return strings.Join(ours, "\n"), err != nil
}

// TestUnitVerify: systemd-analyze verify accepts the unit without a
// word (a setting it cannot parse is only a warning, so any line about
// the unit fails), with ExecStart pointing at a freshly built binary; and
// it would notice a broken copy, so that a silent verifier cannot pass.
func TestUnitVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("SKIPPED LOUDLY: systemd-analyze is not installed (scripts/test-deps.sh installs systemd)")
	}
	unit, err := os.ReadFile("synproxy-lite.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	for _, c := range []struct {
		name    string
		edit    func(string) string
		wantBad bool
	}{
		{"shipped", func(s string) string { return s }, false},
		{"unknown type", func(s string) string { return strings.Replace(s, "Type=notify\n", "Type=notified\n", 1) }, true},
		{"unknown setting", func(s string) string { return strings.Replace(s, "[Service]\n", "[Service]\nNotASetting=yes\n", 1) }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			sub := filepath.Join(dir, c.name)
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(sub, "synproxy-lite.service")
			text := strings.ReplaceAll(c.edit(string(unit)), "/usr/bin/synproxy-lite", bin)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			said, failed := verifyUnit(t, analyze, path)
			if bad := said != "" || failed; bad != c.wantBad {
				t.Errorf("systemd-analyze verify: rejected %v, want %v:\n%s", bad, c.wantBad, said)
			}
		})
	}
}

// TestUnitSettings pins what the issue asks of the unit, which verify
// cannot judge: notify with reload, credentials, its own user, two
// capabilities and no --key-file beside --rotate.
func TestUnitSettings(t *testing.T) {
	b, err := os.ReadFile("synproxy-lite.service")
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = append(settings[k], v)
		}
	}
	for k, want := range map[string]string{
		"Type":                  "notify",
		"NotifyAccess":          "all",
		"ExecReload":            "/bin/kill -HUP $MAINPID",
		"User":                  "synproxy-lite",
		"AmbientCapabilities":   "CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet": "CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"LoadCredential":        "key:/etc/synproxy-lite/key",
	} {
		if got := strings.Join(settings[k], " | "); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if _, ok := settings["DynamicUser"]; ok {
		t.Error("DynamicUser is set: the service runs as the package's synproxy-lite user")
	}
	exec := strings.Join(settings["ExecStart"], " ")
	if !strings.Contains(exec, "--config /etc/synproxy-lite/synproxy-lite.toml") {
		t.Errorf("ExecStart does not read the packaged configuration file: %s", exec)
	}
	if strings.Contains(exec, "--rotate") && strings.Contains(exec, "--key-file") {
		t.Errorf("ExecStart combines --key-file and --rotate: %s", exec)
	}
}
