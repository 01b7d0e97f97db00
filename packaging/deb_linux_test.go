package packaging

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	pkgName = "synproxy-lite"
	sysUser = "synproxy-lite"
	docDir  = "/usr/share/doc/synproxy-lite"
)

// pkgPaths are the package's files and their modes, all owned by root.
var pkgPaths = []struct {
	path string
	mode os.FileMode
}{
	{"/usr/bin/synproxy-lite", 0o755},
	{"/lib/systemd/system/synproxy-lite.service", 0o644},
	{"/etc/synproxy-lite/synproxy-lite.toml", 0o644},
	{docDir + "/copyright", 0o644},
	{docDir + "/LICENSE", 0o644},
	{docDir + "/README.md", 0o644},
	{docDir + "/operators.md", 0o644},
	{docDir + "/examples/synproxy-lite.toml", 0o644},
	{docDir + "/img/bench.png", 0o644},
}

// leftovers are what the package may leave on the machine, checked
// absent before and after the test.
var leftovers = []string{"/usr/bin/synproxy-lite", "/lib/systemd/system/synproxy-lite.service", "/etc/synproxy-lite", docDir}

// dpkg runs dpkg, waiting for the lock while another dpkg or apt holds it
// (up to ten minutes).
func dpkg(args ...string) ([]byte, error) {
	for i := 0; ; i++ {
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err == nil || i == 600 || !strings.Contains(string(out), "lock") {
			return out, err
		}
		time.Sleep(time.Second)
	}
}

func installedStatus() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkgName).Output()
	if err != nil {
		return "unknown"
	}
	return string(out)
}

// TestDebInstall builds the .deb (make package), installs it with dpkg on
// this machine, runs the installed binary and checks the system user, the
// files, their modes, the conffile and dpkg -L; then removes it (the user
// and the conffile stay, as in Debian) and purges it. Cleanup purges the
// package and deletes the user whatever happened, and the test refuses to
// run on a machine where any of it exists already.
func TestDebInstall(t *testing.T) {
	deb := buildDeb(t)

	run := func(args ...string) string {
		t.Helper()
		var out []byte
		var err error
		if args[0] == "dpkg" {
			out, err = dpkg(args[1:]...)
		} else {
			out, err = exec.Command(args[0], args[1:]...).CombinedOutput()
		}
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	purgeOnCleanup(t)
	run("dpkg", "--install", deb)

	// The installed binary runs.
	if out := run("/usr/bin/synproxy-lite", "version"); !strings.HasPrefix(out, "synproxy-lite ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("synproxy-lite version: %q", out)
	}
	// The system user and its group.
	u, err := user.Lookup(sysUser)
	if err != nil {
		t.Fatalf("no user %s after install: %v", sysUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	if uid == 0 || uid >= 1000 || u.HomeDir != "/nonexistent" {
		t.Errorf("user %s: uid %d, home %s; want a system user without a home", sysUser, uid, u.HomeDir)
	}
	if passwd := run("getent", "passwd", sysUser); !strings.Contains(passwd, "nologin") && !strings.Contains(passwd, "/bin/false") {
		t.Errorf("user %s can log in: %s", sysUser, passwd)
	}
	if g, err := user.LookupGroup(sysUser); err != nil || g.Gid != u.Gid {
		t.Errorf("group %s: %v, %v; want the user's primary group", sysUser, g, err)
	}
	// Files, modes, owners, and dpkg's list.
	listed := map[string]bool{}
	for _, p := range strings.Fields(run("dpkg", "-L", pkgName)) {
		listed[p] = true
	}
	check := func(path string, mode os.FileMode) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Error(err)
			return
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != mode || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: mode %v, owner %d:%d; want %v, root:root", path, fi.Mode().Perm(), st.Uid, st.Gid, mode)
		}
	}
	for _, f := range pkgPaths {
		check(f.path, f.mode)
		if !listed[f.path] {
			t.Errorf("dpkg -L %s does not list %s", pkgName, f.path)
		}
	}
	if conf := run("dpkg-query", "-W", "-f=${Conffiles}", pkgName); !strings.Contains(conf, "/etc/synproxy-lite/synproxy-lite.toml") {
		t.Errorf("the example configuration is not a conffile: %q", conf)
	}
	// postinst's key, for the unit's LoadCredential=, is a key the daemon reads.
	check("/etc/synproxy-lite/key", 0o600)
	if key, err := os.ReadFile("/etc/synproxy-lite/key"); err != nil || len(strings.TrimSpace(string(key))) != 64 {
		t.Errorf("the key postinst wrote is %d bytes (%v), want 64 hex digits", len(key), err)
	}
	run("/usr/bin/synproxy-lite", "cookie", "encode", "--key-file", "/etc/synproxy-lite/key",
		"--saddr", "10.99.0.1", "--daddr", "10.99.0.2", "--sport", "40000", "--dport", "443", "--seq", "1", "--mss", "1460")
	// The installed unit, with the installed binary, passes verify.
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		if said, failed := verifyUnit(t, analyze, "/lib/systemd/system/synproxy-lite.service"); said != "" || failed {
			t.Errorf("systemd-analyze verify of the installed unit:\n%s", said)
		}
	}

	// Remove: the program goes; the conffile, the key and the user stay.
	run("dpkg", "--remove", pkgName)
	for _, p := range []string{"/usr/bin/synproxy-lite", "/lib/systemd/system/synproxy-lite.service", docDir} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after dpkg --remove", p)
		}
	}
	for _, p := range []string{"/etc/synproxy-lite/synproxy-lite.toml", "/etc/synproxy-lite/key"} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("dpkg --remove took %s: %v", p, err)
		}
	}
	if _, err := user.Lookup(sysUser); err != nil {
		t.Errorf("dpkg --remove deleted the user %s", sysUser)
	}
	// Purge: the configuration and the key go; the user stays.
	run("dpkg", "--purge", pkgName)
	if _, err := os.Lstat("/etc/synproxy-lite"); err == nil {
		t.Error("/etc/synproxy-lite is still there after dpkg --purge")
	}
	if _, err := user.Lookup(sysUser); err != nil {
		t.Errorf("dpkg --purge deleted the user %s (Debian packages leave theirs)", sysUser)
	}
}

// buildDeb skips the test, loudly, unless it runs as root on a machine
// with dpkg, make and go where neither the package, nor its user, nor any
// of its files exist; then builds the .deb (make package) into a
// temporary directory and returns its path.
func buildDeb(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: installing the .deb needs root")
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "make", "go", "userdel"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED LOUDLY: %s is not installed; the .deb is not tested", tool)
		}
	}
	if st := installedStatus(); st != "unknown" && !strings.Contains(st, "not-installed") {
		t.Skipf("SKIPPED LOUDLY: package %s is known to dpkg on this machine (%q); the test would replace it", pkgName, st)
	}
	if _, err := user.Lookup(sysUser); err == nil {
		t.Skipf("SKIPPED LOUDLY: user %s exists on this machine; the test would delete it", sysUser)
	}
	for _, p := range leftovers {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("SKIPPED LOUDLY: %s exists on this machine; the test would remove it", p)
		}
	}

	dir := t.TempDir()
	goPath, _ := exec.LookPath("go")
	mk := exec.Command("make", "-C", "..", "package", "PKGDIR="+dir, "BIN="+filepath.Join(dir, "synproxy-lite"), "VERSION=v0.0.0-test", "GO="+goPath)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make package wrote %v, want one .deb", debs)
	}
	return debs[0]
}

// purgeOnCleanup purges the package and deletes its user and group when
// the test ends, whatever happened, and reports anything left behind.
func purgeOnCleanup(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		if out, err := dpkg("--purge", pkgName); err != nil {
			t.Errorf("cleanup: dpkg --purge: %v\n%s", err, out)
		}
		if _, err := user.Lookup(sysUser); err == nil {
			if out, err := exec.Command("userdel", sysUser).CombinedOutput(); err != nil {
				t.Errorf("cleanup: userdel: %v\n%s", err, out)
			}
		}
		if _, err := user.LookupGroup(sysUser); err == nil {
			if out, err := exec.Command("groupdel", sysUser).CombinedOutput(); err != nil {
				t.Errorf("cleanup: groupdel: %v\n%s", err, out)
			}
		}
		for _, p := range leftovers {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("cleanup: %s is left behind; removing it", p)
				os.RemoveAll(p)
			}
		}
		if st := installedStatus(); st != "unknown" && !strings.Contains(st, "not-installed") {
			t.Errorf("cleanup: dpkg still knows %s: %q", pkgName, st)
		}
	})
}
