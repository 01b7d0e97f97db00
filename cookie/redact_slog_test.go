//go:build !js

package cookie

import "testing"

func TestKeyRedacted(t *testing.T) {
	k := mustKey(t, specKey)
	f, _ := NewFleetSecret(make([]byte, 32))
	for _, s := range []string{k.String(), k.GoString(), k.LogValue().String(), f.String(), f.LogValue().String()} {
		if len(s) == 0 || s == specKey {
			t.Errorf("not redacted: %q", s)
		}
	}
}
