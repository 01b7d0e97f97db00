package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// TestCredentials: a value without a slash names a file of
// $CREDENTIALS_DIRECTORY; the ACL mask systemd's credentials show in their
// group bits is accepted there and nowhere else.
func TestCredentials(t *testing.T) {
	creds, other := t.TempDir(), t.TempDir()
	write := func(dir, name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(specKey+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write(creds, "key", 0o400)
	write(creds, "acl", 0o440)
	write(creds, "world", 0o444)
	write(creds, "group-writable", 0o460)
	outside := write(other, "acl", 0o440)
	want, _ := cookie.ParseKey(specKey)
	for _, c := range []struct {
		name, env, value string
		ok               bool
		credErr          bool
	}{
		{"credential", creds, "key", true, false},
		{"credential with an ACL mask", creds, "acl", true, false},
		{"credential by its path", creds, filepath.Join(creds, "acl"), true, false},
		{"world-readable credential", creds, "world", false, false},
		{"group-writable credential", creds, "group-writable", false, false},
		{"missing credential", creds, "fleet", false, true},
		{"dot", creds, "..", false, true},
		{"mask outside the directory", creds, outside, false, false},
		{"no credentials directory", "", outside, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(CredentialsEnv, c.env)
			k, err := LoadKeyFile(c.value)
			if c.ok != (err == nil) || c.ok && k != want {
				t.Fatalf("LoadKeyFile(%q): %v", c.value, err)
			}
			var ce *CredentialError
			if errors.As(err, &ce) != c.credErr {
				t.Errorf("%v: a CredentialError: %v, want %v", err, !c.credErr, c.credErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("%v: not prefixed with the package name", err)
			}
			if _, err := LoadFleetSecretFile(c.value); c.ok != (err == nil) {
				t.Errorf("LoadFleetSecretFile(%q): %v", c.value, err)
			}
		})
	}
	t.Setenv(CredentialsEnv, creds)
	_, err := LoadKeyFile("fleet")
	if err == nil || !strings.Contains(err.Error(), "LoadCredential=fleet:") {
		t.Errorf("a missing credential's error does not name the unit's line: %v", err)
	}
}

// TestSecretPathWithoutSystemd: without $CREDENTIALS_DIRECTORY a bare
// name is a path relative to the working directory, as always.
func TestSecretPathWithoutSystemd(t *testing.T) {
	t.Setenv(CredentialsEnv, "")
	if p, err := SecretPath("key"); p != "key" || err != nil {
		t.Errorf("SecretPath(key) = %q, %v", p, err)
	}
}
