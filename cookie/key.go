package cookie

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// KeySize is the size of a cookie secret in bytes: two 16-byte SipHash keys,
// the layout of the kernel's syncookie_secret (and syncookie6_secret).
const KeySize = 32

// Key is a cookie secret with its SipHash keys ready for use. The zero Key is
// the all-zero secret, which is what a kernel holds before its first cookie.
// Key is a small value type, safe to copy and to share between goroutines.
// It redacts itself when printed with fmt and when logged with log/slog.
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
	for i := range b {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			c := s[2*i]
			if ok1 {
				c = s[2*i+1]
			}
			return Key{}, &wrapError{"cookie: key is not hexadecimal: ", invalidByteError(c)}
		}
		b[i] = hi<<4 | lo
	}
	return NewKey(b[:])
}

// fromHex returns the value of a hexadecimal digit (either case). The
// package decodes hex itself: encoding/hex would link fmt into the
// WebAssembly build.
func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// invalidByteError is a byte of a hex key that is not a hex digit.
type invalidByteError byte

func (e invalidByteError) Error() string {
	// As fmt's %#U: U+0067 'g'.
	const digits = "0123456789ABCDEF"
	s := "invalid byte: U+00" + string([]byte{digits[e>>4], digits[e&15]})
	if r := rune(e); strconv.IsPrint(r) {
		s += " '" + string(r) + "'"
	}
	return s
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

// KeySizeError reports a secret of the wrong size.
type KeySizeError struct {
	Size int  // bytes given, or hex digits when Hex is set
	Hex  bool // the secret was given as hexadecimal text
}

func (e *KeySizeError) Error() string {
	if e.Hex {
		return "cookie: key must be " + strconv.Itoa(2*KeySize) + " hex digits (" + strconv.Itoa(KeySize) + " bytes), got " + strconv.Itoa(e.Size) + " digits"
	}
	return "cookie: key must be " + strconv.Itoa(KeySize) + " bytes, got " + strconv.Itoa(e.Size)
}

// wrapError prefixes an underlying error, which it unwraps to (what
// fmt.Errorf's %w does, without fmt).
type wrapError struct {
	prefix string
	err    error
}

func (e *wrapError) Error() string { return e.prefix + e.err.Error() }
func (e *wrapError) Unwrap() error { return e.err }
