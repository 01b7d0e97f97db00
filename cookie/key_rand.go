//go:build !js

package cookie

import "crypto/rand"

// GenerateKey returns a key drawn from crypto/rand.
func GenerateKey() (Key, error) {
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Key{}, &wrapError{"cookie: reading random key: ", err}
	}
	return NewKey(b[:])
}
