package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// CredentialsDirEnv is the variable systemd sets to the directory of a
// service's credentials (LoadCredential=, SetCredential=).
const CredentialsDirEnv = "CREDENTIALS_DIRECTORY"

// ErrNoCredentials is returned for a credential when $CREDENTIALS_DIRECTORY
// is not set: the process was not started by systemd with credentials.
var ErrNoCredentials = errors.New("config: $" + CredentialsDirEnv + " is not set (systemd sets it for LoadCredential=)")

// CredentialPath returns the file of the systemd credential name.
func CredentialPath(name string) (string, error) {
	dir := os.Getenv(CredentialsDirEnv)
	if dir == "" {
		return "", fmt.Errorf("credential %q: %w", name, ErrNoCredentials)
	}
	if !validCredential(name) {
		return "", fmt.Errorf("config: credential %q: a name without '/'", name)
	}
	return filepath.Join(dir, name), nil
}

// Ring returns the cookie ring the secrets and rotate describe, reading the
// key or fleet secret file (or credential) with LoadKeyFile's checks:
//
//   - a fleet secret: each epoch's key derived from it (cookie.RingConfig.Fleet);
//   - a key, without rotate: that key for the daemon's life;
//   - a key with rotate: the key seeds the rotation, each epoch's key is
//     derived from it as from a fleet secret, so every node and every
//     restart with the same file agrees on the keys;
//   - nothing, with rotate: a fresh random key every epoch;
//   - nothing, without rotate: nil (the server's own random key, which a
//     graceful restart passes on).
func (s Secret) Ring(rotate time.Duration) (*cookie.Ring, error) {
	rc := &cookie.RingConfig{Rotate: rotate}
	key, err := s.load(s.KeyFile, s.KeyCredential)
	if err != nil {
		return nil, err
	}
	fleet, err := s.load(s.FleetSecretFile, s.FleetSecretCredential)
	if err != nil {
		return nil, err
	}
	switch {
	case key != "" && fleet != "":
		return nil, errors.New("config: a key and a fleet secret exclude each other")
	case fleet != "":
		f, err := LoadFleetSecretFile(fleet)
		if err != nil {
			return nil, err
		}
		rc.Fleet = &f
	case key != "" && rc.Rotate > 0:
		f, err := LoadFleetSecretFile(key)
		if err != nil {
			return nil, err
		}
		rc.Fleet = &f
	case key != "":
		k, err := LoadKeyFile(key)
		if err != nil {
			return nil, err
		}
		rc.Key = &k
	case rc.Rotate == 0:
		return nil, nil
	}
	return cookie.NewRing(rc)
}

// load returns the path of a secret given as a file or a credential.
func (Secret) load(file, credential string) (string, error) {
	if credential != "" {
		return CredentialPath(credential)
	}
	return file, nil
}
