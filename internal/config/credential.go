package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CredentialsEnv names the directory in which systemd places a service's
// credentials (LoadCredential=NAME:PATH makes the file NAME there,
// readable by the service's user only).
const CredentialsEnv = "CREDENTIALS_DIRECTORY"

// SecretPath returns the file that a --key-file or --fleet-secret-file
// value names. A value without a slash, under systemd with
// $CREDENTIALS_DIRECTORY set, is the name of a credential: the file of
// that name in that directory, which must exist (a *CredentialError
// says which LoadCredential= line is missing). Any other value is a file
// path, relative to the working directory or absolute.
func SecretPath(value string) (string, error) {
	dir := os.Getenv(CredentialsEnv)
	if dir == "" || strings.ContainsRune(value, '/') {
		return value, nil
	}
	if value == "" || value == "." || value == ".." {
		return "", &CredentialError{Name: value, Dir: dir}
	}
	path := filepath.Join(dir, value)
	if _, err := os.Stat(path); err != nil {
		return "", &CredentialError{Name: value, Dir: dir, Err: err}
	}
	return path, nil
}

// inCredentials reports whether path is a file directly in
// $CREDENTIALS_DIRECTORY.
func inCredentials(path string) bool {
	dir := os.Getenv(CredentialsEnv)
	if dir == "" {
		return false
	}
	abs, err := filepath.Abs(path)
	return err == nil && filepath.Dir(abs) == filepath.Clean(dir)
}

// secretModeOK reports whether a secret file's permission bits are
// acceptable: no access for group or others. A credential of systemd's is
// read-only, in a directory of the service's own, and systemd grants the
// service's user access with an ACL, whose mask shows in the group bits:
// there only others' bits must be clear.
func secretModeOK(path string, perm fs.FileMode) bool {
	if perm&0o077 == 0 {
		return true
	}
	return perm&0o007 == 0 && perm&0o022 == 0 && inCredentials(path)
}

// CredentialError reports a credential name that is not in
// $CREDENTIALS_DIRECTORY.
type CredentialError struct {
	Name, Dir string
	Err       error
}

func (e *CredentialError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("config: %q is not a credential name", e.Name)
	}
	return fmt.Sprintf("config: credential %q is not in $%s (%s): the unit needs LoadCredential=%s:/path/to/the/file, or give a path (with a slash)",
		e.Name, CredentialsEnv, e.Dir, e.Name)
}

func (e *CredentialError) Unwrap() error { return e.Err }
