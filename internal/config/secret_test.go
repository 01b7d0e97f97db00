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
