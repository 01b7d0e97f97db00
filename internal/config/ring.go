package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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

// Ring returns the cookie ring that Secret and Rotate describe, reading the
// key or fleet secret file (or credential) with LoadKeyFile's checks; an
// error names the key (or run's flag) that gave the file:
//
//   - a fleet secret: each epoch's key derived from it (cookie.RingConfig.Fleet);
//   - a key, without rotate: that key for the daemon's life;
//   - a key with rotate: the key seeds the rotation, each epoch's key is
//     derived from it as from a fleet secret, so every node and every
//     restart with the same file agrees on the keys;
//   - nothing, with rotate: a fresh random key every epoch;
//   - nothing, without rotate: nil (the server's own random key, which a
//     graceful restart passes on).
func (c *Config) Ring() (*cookie.Ring, error) {
	s := c.Secret
	rc := &cookie.RingConfig{Rotate: c.Rotate, Profile: c.profile()}
	key, keyName, err := c.secretPath("key", s.KeyFile, s.KeyCredential)
	if err != nil {
		return nil, err
	}
	fleet, fleetName, err := c.secretPath("fleet_secret", s.FleetSecretFile, s.FleetSecretCredential)
	if err != nil {
		return nil, err
	}
	named := func(name string, err error) error { return fmt.Errorf("%s: %w", name, err) }
	switch {
	case key != "" && fleet != "":
		return nil, errors.New("config: a key and a fleet secret exclude each other")
	case fleet != "":
		f, err := LoadFleetSecretFile(fleet)
		if err != nil {
			return nil, named(fleetName, err)
		}
		rc.Fleet = &f
	case key != "" && rc.Rotate > 0:
		f, err := LoadFleetSecretFile(key)
		if err != nil {
			return nil, named(keyName, err)
		}
		rc.Fleet = &f
	case key != "":
		k, err := LoadKeyFile(key)
		if err != nil {
			return nil, named(keyName, err)
		}
		rc.Key = &k
	case rc.Rotate == 0:
		return nil, nil
	}
	return cookie.NewRing(rc)
}

// secretPath returns the path of a secret given as a file or a
// credential, and the name of the key (or flag) that gave it.
func (c *Config) secretPath(what, file, credential string) (path, name string, err error) {
	if credential != "" {
		name = what + "_credential"
		path, err = CredentialPath(credential)
		if err != nil {
			err = fmt.Errorf("%s: %w", name, err)
		}
		return path, name, err
	}
	name = what + "_file"
	if c.flags {
		name = flagOf[name]
	}
	return file, name, nil
}

// profile is the cookie profile the configuration names (validated;
// linux when it names none).
func (c *Config) profile() cookie.Profile {
	p, err := cookie.ParseProfile(c.CookieProfile)
	if err != nil {
		return cookie.ProfileLinux
	}
	return p
}

// Profile is the cookie profile of the configuration (CookieProfile).
func (c *Config) Profile() cookie.Profile { return c.profile() }
