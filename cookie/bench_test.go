//go:build !js

package cookie

import (
	"testing"
	"time"

	"github.com/dchest/siphash"
)

// TestNoAllocs pins the zero-allocation promise of every per-packet entry point.
func TestNoAllocs(t *testing.T) {
	k := mustKey(t, specKey)
	v4, v6 := knownAnswers[0].t, knownAnswers[4].t
	ring, _ := NewRing(&RingConfig{Key: &k})
	fleet, _ := NewFleetSecret(make([]byte, FleetSecretSize))
	fring, _ := NewRing(&RingConfig{Rotate: time.Hour, Fleet: &fleet})
	c4, _ := k.Encode(v4, 1, 1460, 9)
	c6, _ := k.Encode(v6, 1, 1460, 9)
	rc, _ := ring.Encode(v4, 1, 1460)
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"EncodeV4", func() { k.Encode(v4, 1, 1460, 9) }},
		{"EncodeV6", func() { k.Encode(v6, 1, 1460, 9) }},
		{"CheckV4", func() { k.Check(v4, 1, c4, 9) }},
		{"CheckV6", func() { k.Check(v6, 1, c6, 9) }},
		{"TraceV4", func() { k.Trace(v4, 1, c4, 10) }},
		{"TraceV6", func() { k.Trace(v6, 1, c6, 10) }},
		{"Hashes", func() { k.Hashes(v6, 9) }},
		{"TSval", func() { TSval(12345, TSOptions{WScale: 7, HasWScale: true}) }},
		{"DecodeTSecr", func() { DecodeTSecr(12345) }},
		{"RingEncode", func() { ring.Encode(v4, 1, 1460) }},
		{"RingCheck", func() { ring.Check(v4, 1, rc) }},
		{"FleetRingCheck", func() { fring.Check(v4, 1, rc) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, c.fn); n != 0 {
				t.Errorf("%s: %v allocs per run, want 0", c.name, n)
			}
		})
	}
}

var sink uint32

// BenchmarkSipHash2x16 is the floor: two bare SipHash-2-4 calls on 16 bytes,
// what an IPv4 encode or check cannot do without.
func BenchmarkSipHash2x16(b *testing.B) {
	b.ReportAllocs()
	var m [16]byte
	var s uint64
	for b.Loop() {
		m[12]++
		s += siphash.Hash(0x0706050403020100, 0x0f0e0d0c0b0a0908, m[:])
		s += siphash.Hash(0x1716151413121110, 0x1f1e1d1c1b1a1918, m[:])
	}
	sink = uint32(s)
}

func BenchmarkEncodeV4(b *testing.B) { benchEncode(b, knownAnswers[0].t) }

// BenchmarkCheckV4 checks the cookie of a handshake ACK in the slot of its
// SYN-ACK, which nearly every ACK is (one whose SYN-ACK left in the previous
// slot is BenchmarkCheckV4PreviousSlot).
func BenchmarkCheckV4(b *testing.B) { benchCheck(b, knownAnswers[0].t, 0) }

func BenchmarkCheckV4PreviousSlot(b *testing.B) { benchCheck(b, knownAnswers[0].t, 1) }

func BenchmarkEncodeV6(b *testing.B) { benchEncode(b, knownAnswers[4].t) }

// BenchmarkCheckV6 checks the cookie of a handshake ACK in the slot of its
// SYN-ACK, which nearly every ACK is (one whose SYN-ACK left in the previous
// slot is BenchmarkCheckV6PreviousSlot).
func BenchmarkCheckV6(b *testing.B) { benchCheck(b, knownAnswers[4].t, 0) }

func BenchmarkCheckV6PreviousSlot(b *testing.B) { benchCheck(b, knownAnswers[4].t, 1) }

func BenchmarkRingCheckV4(b *testing.B) {
	k := mustKey(b, specKey)
	r, _ := NewRing(&RingConfig{Key: &k})
	t := knownAnswers[0].t
	c, _ := r.Encode(t, 1000, 1460)
	b.ReportAllocs()
	var n uint32
	for b.Loop() {
		v, _ := r.Check(t, 1000, c)
		n += v.Count
	}
	sink = n
}

func benchCheck(b *testing.B, t Tuple, age uint32) {
	k := mustKey(b, specKey)
	c, _ := k.Encode(t, 1000, 1460, 5)
	b.ReportAllocs()
	var n uint32
	for b.Loop() {
		v, _ := k.Check(t, 1000, c, 5+age)
		n += v.Count
	}
	if n == 0 {
		b.Fatal("cookie rejected")
	}
	sink = n
}

func benchEncode(b *testing.B, t Tuple) {
	k := mustKey(b, specKey)
	b.ReportAllocs()
	var s uint32
	for b.Loop() {
		c, _ := k.Encode(t, s, 1460, 5)
		s += c
	}
	sink = s
}
