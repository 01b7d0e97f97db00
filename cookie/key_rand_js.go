package cookie

import (
	"errors"
	"syscall/js"
)

// GenerateKey returns a key drawn from the browser's crypto.getRandomValues,
// the source crypto/rand reads on js/wasm. The package reads it itself:
// crypto/rand would link math/big and fmt into the explainer's binary.
func GenerateKey() (k Key, err error) {
	defer func() {
		if r := recover(); r != nil { // getRandomValues missing or throwing
			msg := "no crypto.getRandomValues"
			if e, ok := r.(error); ok {
				msg = e.Error()
			}
			k, err = Key{}, &wrapError{"cookie: reading random key: ", errors.New(msg)}
		}
	}()
	a := js.Global().Get("Uint8Array").New(KeySize)
	js.Global().Get("crypto").Call("getRandomValues", a)
	var b [KeySize]byte
	if js.CopyBytesToGo(b[:], a) != KeySize {
		return Key{}, &wrapError{"cookie: reading random key: ", errors.New("short read")}
	}
	return NewKey(b[:])
}
