package config

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// LoadKeyFile reads a cookie secret from a file holding 64 hexadecimal
// digits or exactly cookie.KeySize raw bytes. It refuses a file that group
// or others may read or write, with a *KeyFileModeError.
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
// cookie.FleetSecretSize raw bytes), refusing one that group or others may
// access, with a *KeyFileModeError.
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

// readSecretFile reads a secret file after checking its permission bits.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, &KeyFileModeError{Path: path, Mode: perm}
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
