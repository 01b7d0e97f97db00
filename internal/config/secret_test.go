package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// specKey is bytes 00 01 … 1f, the key of package cookie's worked examples.
const specKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	want, err := cookie.ParseKey(specKey)
	if err != nil {
		t.Fatal(err)
	}
	raw := want.Bytes()
	for _, c := range []struct {
		name string
		data []byte
		mode os.FileMode
		ok   bool
	}{
		{"hex", []byte(specKey + "\n"), 0o600, true},
		{"raw", raw[:], 0o400, true},
		{"group readable", []byte(specKey), 0o640, false},
		{"world readable", []byte(specKey), 0o604, false},
		{"short", []byte("abcd"), 0o600, false},
	} {
		p := write(c.name, c.data, c.mode)
		k, err := LoadKeyFile(p)
		if c.ok && (err != nil || k != want) {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && err == nil {
			t.Errorf("%s: accepted", c.name)
		}
		if _, ferr := LoadFleetSecretFile(p); c.ok != (ferr == nil) {
			t.Errorf("%s: fleet loader: %v", c.name, ferr)
		}
	}
	var me *KeyFileModeError
	if _, err := LoadKeyFile(filepath.Join(dir, "group readable")); !errors.As(err, &me) || me.Mode != 0o640 {
		t.Errorf("mode error: %v", err)
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

// TestKeyFileErrors: errors name the package, and the mode error says how to
// fix the file.
func TestKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	if err := os.WriteFile(p, []byte(specKey), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFleetSecretFile(p)
	var me *KeyFileModeError
	if !errors.As(err, &me) || me.Path != p || me.Mode != 0o644 ||
		err.Error() != "config: key file "+p+" has mode 0644; it must not be accessible by group or others (chmod 600)" {
		t.Errorf("fleet file mode error: %v", err)
	}
	_, err = LoadKeyFile(filepath.Join(dir, "missing"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: ") {
		t.Errorf("missing file: %v", err)
	}
}

// TestKeyFileOwner: a secret file must belong to the process's effective
// user or to root; another owner is refused by both loaders, with an error
// naming the file, its owner and the owner expected.
func TestKeyFileOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: needs root to give a file to another user (os.Chown); run as root, CI does")
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name     string
		uid, gid int
		mode     os.FileMode
		err      string // "" for none
	}{
		{"root's", 0, 0, 0o600, ""},
		{"root's, read-only", 0, 0, 0o400, ""},
		{"root's, another group's", 0, 4242, 0o600, ""},
		{"another user's", 4242, 0, 0o600, "is owned by uid 4242; it must be owned by root (chown)"},
		{"another user's, read-only", 65534, 0, 0o400, "is owned by uid 65534; it must be owned by root (chown)"},
		{"another user's and group readable", 4242, 0, 0o640, "has mode 0640"},
	} {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, []byte(specKey), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, c.uid, c.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, c.mode); err != nil {
			t.Fatal(err)
		}
		for loader, load := range map[string]func(string) error{
			"key":   func(p string) error { _, err := LoadKeyFile(p); return err },
			"fleet": func(p string) error { _, err := LoadFleetSecretFile(p); return err },
		} {
			err := load(p)
			switch {
			case c.err == "" && err != nil:
				t.Errorf("%s, %s loader: %v", c.name, loader, err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), "config: key file "+p+" "+c.err)):
				t.Errorf("%s, %s loader: %v; want %q", c.name, loader, err, c.err)
			}
		}
		var oe *KeyFileOwnerError
		_, err := LoadKeyFile(p)
		if isOwner := errors.As(err, &oe); isOwner != strings.Contains(c.err, "owned by") {
			t.Errorf("%s: %v: KeyFileOwnerError %v", c.name, err, isOwner)
		} else if isOwner && (oe.Path != p || oe.UID != uint32(c.uid) || oe.EUID != 0 ||
			err.Error() != "config: key file "+p+" "+c.err) {
			t.Errorf("%s: %#v: %v", c.name, oe, err)
		}
	}
}

// TestKeyFileOwnerErrorText: for a daemon that does not run as root, the
// error names its effective user as well as root.
func TestKeyFileOwnerErrorText(t *testing.T) {
	for _, c := range []struct {
		err  KeyFileOwnerError
		want string
	}{
		{KeyFileOwnerError{Path: "/etc/k", UID: 1001, EUID: 0}, "config: key file /etc/k is owned by uid 1001; it must be owned by root (chown)"},
		{KeyFileOwnerError{Path: "/etc/k", UID: 1001, EUID: 998}, "config: key file /etc/k is owned by uid 1001; it must be owned by uid 998 (the daemon's effective user) or root (chown)"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}
