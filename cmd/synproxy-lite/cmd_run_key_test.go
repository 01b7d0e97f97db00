package main

import (
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// TestRunKeyFileRotate: --key-file with --rotate seeds the rotation: two
// daemons (or one and its restart) given the same key file accept each
// other's cookies, and a daemon with another key file does not.
func TestRunKeyFileRotate(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := filepath.Join(dir, "k1"), filepath.Join(dir, "k2")
	if err := os.WriteFile(k1, []byte(specKeyHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k2, []byte("ff"+specKeyHex[2:]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ring := func(key string) *cookie.Ring {
		t.Helper()
		o, err := parseRunFlags([]string{"--port", "8080", "--backend", "10.99.0.1:80", "--key-file", key, "--rotate", "1h"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		r, err := o.ring()
		if err != nil || r == nil {
			t.Fatalf("ring: %v %v", r, err)
		}
		return r
	}
	a, b, other := ring(k1), ring(k1), ring(k2)
	tu := cookie.Tuple{Client: netip.MustParseAddrPort("10.99.0.2:40000"), Server: netip.MustParseAddrPort("10.99.0.1:8080")}
	c, err := a.Encode(tu, 1000, 1460)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		name string
		ring *cookie.Ring
		want bool
	}{{"same key file", b, true}, {"another key file", other, false}} {
		v, err := r.ring.Check(tu, 1000, c)
		if err != nil || v.Valid != r.want {
			t.Errorf("%s: valid %v (%v), want %v", r.name, v.Valid, err, r.want)
		}
	}
}
