package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/internal/version"
)

// TestVersion: `version` and `--version` print the same line, `version
// --json` the same build as JSON.
func TestVersion(t *testing.T) {
	want := "synproxy-lite " + version.Read().String() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		out, errOut, code := runCmd(t, args...)
		if code != exitOK || out != want || errOut != "" {
			t.Errorf("%v: exit %d, out %q, err %q; want %q", args, code, out, errOut, want)
		}
	}
	out, errOut, code := runCmd(t, "version", "--json")
	if code != exitOK {
		t.Fatalf("version --json: exit %d, err %q", code, errOut)
	}
	var got version.Info
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("version --json: %v in %q", err, out)
	}
	if got != version.Read() || got.GoVersion != runtime.Version() {
		t.Errorf("version --json = %+v, want %+v", got, version.Read())
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"version", "extra"}, exitUsage},
		{[]string{"version", "--nope"}, exitUsage},
		{[]string{"version", "--help"}, exitOK},
	} {
		if _, _, code := runCmd(t, c.args...); code != c.code {
			t.Errorf("%v: exit %d, want %d", c.args, code, c.code)
		}
	}
}

// TestMakeInstall: `make install DESTDIR=...` puts the binary, the unit and
// the docs where the Makefile says, and the installed binary runs.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("MAKE INSTALL NOT CHECKED: -short")
	}
	makePath, err := exec.LookPath("make")
	if err != nil {
		t.Skip("MAKE INSTALL NOT CHECKED: no make on PATH")
	}
	goPath, err := exec.LookPath("go")
	if err != nil {
		t.Skip("MAKE INSTALL NOT CHECKED: no go on PATH")
	}
	for _, c := range []struct{ prefix, bin, doc string }{
		{"", "usr/local/bin", "usr/local/share/doc/synproxy-lite"},
		{"/usr", "usr/bin", "usr/share/doc/synproxy-lite"},
	} {
		dest := t.TempDir()
		// BIN apart from bin/: packaging's test builds one at the same time.
		args := []string{"-C", "../..", "install", "DESTDIR=" + dest, "GO=" + goPath, "BIN=" + filepath.Join(t.TempDir(), "synproxy-lite")}
		if c.prefix != "" {
			args = append(args, "PREFIX="+c.prefix)
		}
		cmd := exec.Command(makePath, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %v: %v\n%s", args, err, out)
		}
		bin := filepath.Join(dest, c.bin, "synproxy-lite")
		unit := filepath.Join(dest, "lib/systemd/system/synproxy-lite.service")
		for _, f := range []struct {
			path string
			mode os.FileMode
		}{
			{bin, 0o755},
			{unit, 0o644},
			{filepath.Join(dest, c.doc, "README.md"), 0o644},
			{filepath.Join(dest, c.doc, "LICENSE"), 0o644},
			{filepath.Join(dest, c.doc, "operators.md"), 0o644},
			{filepath.Join(dest, c.doc, "img/bench.png"), 0o644},
			{filepath.Join(dest, "etc/synproxy-lite/synproxy-lite.toml"), 0o644},
		} {
			fi, err := os.Stat(f.path)
			if err != nil {
				t.Errorf("PREFIX=%q: %v", c.prefix, err)
				continue
			}
			if fi.Mode().Perm() != f.mode {
				t.Errorf("%s: mode %v, want %v", f.path, fi.Mode().Perm(), f.mode)
			}
		}
		b, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		if want := "ExecStart=/" + c.bin + "/synproxy-lite "; !strings.Contains(string(b), want) {
			t.Errorf("PREFIX=%q: the unit has no %q:\n%s", c.prefix, want, b)
		}
		if want := "Documentation=file:///" + c.doc + "/operators.md"; !strings.Contains(string(b), want) {
			t.Errorf("PREFIX=%q: the unit has no %q:\n%s", c.prefix, want, b)
		}
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "synproxy-lite ") || !strings.Contains(string(out), runtime.Version()) {
			t.Errorf("%s --version: %v, %q", bin, err, out)
		}
	}
}
