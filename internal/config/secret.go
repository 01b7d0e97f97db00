package config

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// LoadKeyFile reads a cookie secret from a file holding 64 hexadecimal
// digits or exactly cookie.KeySize raw bytes; path may name a systemd
// credential (see SecretPath). It refuses a file that group
// or others may read or write, with a *KeyFileModeError, and one owned by
// neither the process's effective user nor root, with a *KeyFileOwnerError.
func LoadKeyFile(path string) (cookie.Key, error) {
	b, err := readSecretFile(path)
	if err != nil {
		return cookie.Key{}, err
	}
	if len(b) == cookie.KeySize {
		return cookie.NewKey(b)
	}
	return cookie.ParseKey(string(b))
}

// LoadFleetSecretFile reads a fleet secret file (64 hex digits or
// cookie.FleetSecretSize raw bytes; path may name a systemd credential,
// see SecretPath), refusing one that group or others may
// access, with a *KeyFileModeError, and one owned by neither the process's
// effective user nor root, with a *KeyFileOwnerError.
func LoadFleetSecretFile(path string) (cookie.FleetSecret, error) {
	b, err := readSecretFile(path)
	if err != nil {
		return cookie.FleetSecret{}, err
	}
	if len(b) == cookie.FleetSecretSize {
		return cookie.NewFleetSecret(b)
	}
	k, err := cookie.ParseKey(string(b))
	if err != nil {
		return cookie.FleetSecret{}, err
	}
	kb := k.Bytes()
	return cookie.NewFleetSecret(kb[:])
}

// readSecretFile reads the secret file value names (a path or a
// credential) after checking its permission bits and its owner.
func readSecretFile(value string) ([]byte, error) {
	path, err := SecretPath(value)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if perm := st.Mode().Perm(); !secretModeOK(path, perm) {
		return nil, &KeyFileModeError{Path: path, Mode: perm}
	}
	if uid, ok := fileOwner(st); ok {
		if euid := os.Geteuid(); uid != uint32(euid) && uid != 0 {
			return nil, &KeyFileOwnerError{Path: path, UID: uid, EUID: uint32(euid)}
		}
	}
	b := make([]byte, 4096)
	n, err := f.Read(b)
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", path, err)
	}
	return b[:n], nil
}

// KeyFileModeError reports a secret file that group or others can access.
type KeyFileModeError struct {
	Path string
	Mode fs.FileMode
}

func (e *KeyFileModeError) Error() string {
	return fmt.Sprintf("config: key file %s has mode %#o; it must not be accessible by group or others (chmod 600)", e.Path, e.Mode)
}

// KeyFileOwnerError reports a secret file owned by neither the process's
// effective user nor root: another user could have written the key, or
// could read it back by changing the mode of a file it owns.
type KeyFileOwnerError struct {
	Path string
	// UID is the file's owner, EUID the process's effective user.
	UID, EUID uint32
}

func (e *KeyFileOwnerError) Error() string {
	want := "root"
	if e.EUID != 0 {
		want = fmt.Sprintf("uid %d (the daemon's effective user) or root", e.EUID)
	}
	return fmt.Sprintf("config: key file %s is owned by uid %d; it must be owned by %s (chown)", e.Path, e.UID, want)
}
