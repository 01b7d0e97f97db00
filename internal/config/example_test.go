package config_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/internal/config"
)

// A key file holds the secret as 64 hex digits and may be read by its owner
// only; the key it holds never prints.
func ExampleLoadKeyFile() {
	dir, _ := os.MkdirTemp("", "config-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "cookie.key")
	os.WriteFile(path, []byte("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"), 0o600)

	key, err := config.LoadKeyFile(path)
	fmt.Println(key, err)

	os.Chmod(path, 0o640)
	_, err = config.LoadKeyFile(path)
	fmt.Println(err != nil)

	ring, _ := cookie.NewRing(&cookie.RingConfig{Key: &key})
	fmt.Println(ring != nil)
	// Output:
	// cookie.Key(REDACTED) <nil>
	// true
	// true
}
