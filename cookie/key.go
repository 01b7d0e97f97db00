package cookie

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
)

// KeySize is the size of a cookie secret in bytes: two 16-byte SipHash keys,
// the layout of the kernel's syncookie_secret (and syncookie6_secret).
const KeySize = 32

// Key is a cookie secret with its SipHash keys ready for use. The zero Key is
// the all-zero secret, which is what a kernel holds before its first cookie.
// Key is a small value type, safe to copy and to share between goroutines.
// It redacts itself when logged with log/slog or fmt.
type Key struct {
	// k[i] are the two SipHash-2-4 64-bit key words of half i, read as
	// little-endian words from the secret bytes (the kernel's in-memory form
	// on a little-endian host).
	k [2][2]uint64
}

// NewKey returns the key whose secret is b, which must be exactly [KeySize]
// bytes in the kernel's memory order (half 0 first).
func NewKey(b []byte) (Key, error) {
	if len(b) != KeySize {
		return Key{}, &KeySizeError{Size: len(b)}
	}
	var k Key
	for i := range 2 {
		k.k[i][0] = binary.LittleEndian.Uint64(b[16*i:])
		k.k[i][1] = binary.LittleEndian.Uint64(b[16*i+8:])
	}
	return k, nil
}

// ParseKey parses a secret written as 64 hexadecimal digits (surrounding
// white space is ignored).
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if len(s) != 2*KeySize {
		return Key{}, &KeySizeError{Size: len(s), Hex: true}
	}
	var b [KeySize]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return Key{}, fmt.Errorf("cookie: key is not hexadecimal: %w", err)
	}
	return NewKey(b[:])
}

// GenerateKey returns a key drawn from crypto/rand.
func GenerateKey() (Key, error) {
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Key{}, fmt.Errorf("cookie: reading random key: %w", err)
	}
	return NewKey(b[:])
}

// LoadKeyFile reads a secret from a file holding 64 hexadecimal digits or
// exactly 32 raw bytes. It refuses a file that group or others may read or
// write, with a *KeyFileModeError.
func LoadKeyFile(path string) (Key, error) {
	b, err := readSecretFile(path)
	if err != nil {
		return Key{}, err
	}
	if len(b) == KeySize {
		return NewKey(b)
	}
	return ParseKey(string(b))
}

// readSecretFile reads a secret file after checking its permission bits.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cookie: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cookie: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, &KeyFileModeError{Path: path, Mode: perm}
	}
	b := make([]byte, 4096)
	n, err := f.Read(b)
	if err != nil {
		return nil, fmt.Errorf("cookie: reading %s: %w", path, err)
	}
	return b[:n], nil
}

// Bytes returns the secret in the kernel's memory order.
func (k Key) Bytes() [KeySize]byte {
	var b [KeySize]byte
	for i := range 2 {
		binary.LittleEndian.PutUint64(b[16*i:], k.k[i][0])
		binary.LittleEndian.PutUint64(b[16*i+8:], k.k[i][1])
	}
	return b
}

// String redacts the secret.
func (k Key) String() string { return "cookie.Key(REDACTED)" }

// GoString redacts the secret.
func (k Key) GoString() string { return k.String() }

// LogValue redacts the secret in log/slog output.
func (k Key) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// KeySizeError reports a secret of the wrong size.
type KeySizeError struct {
	Size int  // bytes given, or hex digits when Hex is set
	Hex  bool // the secret was given as hexadecimal text
}

func (e *KeySizeError) Error() string {
	if e.Hex {
		return fmt.Sprintf("cookie: key must be %d hex digits (%d bytes), got %d digits", 2*KeySize, KeySize, e.Size)
	}
	return fmt.Sprintf("cookie: key must be %d bytes, got %d", KeySize, e.Size)
}

// KeyFileModeError reports a secret file that group or others can access.
type KeyFileModeError struct {
	Path string
	Mode fs.FileMode
}

func (e *KeyFileModeError) Error() string {
	return fmt.Sprintf("cookie: key file %s has mode %#o; it must not be accessible by group or others (chmod 600)", e.Path, e.Mode)
}
