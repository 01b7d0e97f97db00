//go:build !js

package cookie

import "testing"

// TestFullNoAllocs pins the zero-allocation promise of the full profile's
// per-packet entry points.
func TestFullNoAllocs(t *testing.T) {
	k := mustKey(t, specKey)
	v4, v6 := knownAnswers[0].t, knownAnswers[4].t
	ring, _ := NewRing(&RingConfig{Key: &k, Profile: ProfileFull})
	o := FullOptions{MSS: 1460, WScale: 7, HasWScale: true, SACK: true}
	c4, ts4, _ := k.EncodeFull(v4, 1, o, 9, 0)
	c6, _, _ := k.EncodeFull(v6, 1, o, 9, 0)
	rc, rts, _ := ring.EncodeFull(v4, 1, o)
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"EncodeFullV4", func() { k.EncodeFull(v4, 1, o, 9, 0) }},
		{"EncodeFullV6", func() { k.EncodeFull(v6, 1, o, 9, 0) }},
		{"CheckFullV4", func() { k.CheckFull(v4, 1, c4, 9, uint32(ts4), true) }},
		{"CheckFullV6", func() { k.CheckFull(v6, 1, c6, 10, 0, false) }},
		{"TraceFullV4", func() { k.TraceFull(v4, 1, c4, 10, 0, false) }},
		{"FullTSval", func() { FullTSval(12345, 7) }},
		{"RingEncodeFull", func() { ring.EncodeFull(v4, 1, o) }},
		{"RingCheckFull", func() { ring.CheckFull(v4, 1, rc, uint32(rts), true) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, c.fn); n != 0 {
				t.Errorf("%s: %v allocs per run, want 0", c.name, n)
			}
		})
	}
}

// The full profile's benchmarks run beside BenchmarkSipHash2x16, the floor
// of the Linux profile (two bare SipHash-2-4 calls on 16 bytes): the full
// profile hashes once, 24 bytes (IPv4) or 48 (IPv6).
//
//	go test -run '^$' -bench 'SipHash2x16|Full|EncodeV4|CheckV4$' -benchmem ./cookie/

func BenchmarkFullEncodeV4(b *testing.B) { benchEncodeFull(b, knownAnswers[0].t) }
func BenchmarkFullCheckV4(b *testing.B)  { benchCheckFull(b, knownAnswers[0].t, 0) }

// BenchmarkFullCheckV4PreviousSlot costs the same as the current slot: the
// slot bit names the slot, no trial hash.
func BenchmarkFullCheckV4PreviousSlot(b *testing.B) { benchCheckFull(b, knownAnswers[0].t, 1) }
func BenchmarkFullEncodeV6(b *testing.B)            { benchEncodeFull(b, knownAnswers[4].t) }
func BenchmarkFullCheckV6(b *testing.B)             { benchCheckFull(b, knownAnswers[4].t, 0) }

func BenchmarkRingCheckFullV4(b *testing.B) {
	k := mustKey(b, specKey)
	r, _ := NewRing(&RingConfig{Key: &k, Profile: ProfileFull})
	t := knownAnswers[0].t
	c, ts, _ := r.EncodeFull(t, 1000, FullOptions{MSS: 1460, WScale: 7, HasWScale: true, SACK: true})
	b.ReportAllocs()
	var n uint32
	for b.Loop() {
		v, _ := r.CheckFull(t, 1000, c, uint32(ts), true)
		n += v.Count
	}
	sink = n
}

func benchCheckFull(b *testing.B, t Tuple, age uint32) {
	k := mustKey(b, specKey)
	c, ts, _ := k.EncodeFull(t, 1000, FullOptions{MSS: 1460, WScale: 7, HasWScale: true, SACK: true}, 5, 0)
	b.ReportAllocs()
	var n uint32
	for b.Loop() {
		v, _ := k.CheckFull(t, 1000, c, 5+age, uint32(ts), true)
		n += uint32(v.Options.MSS)
	}
	if n == 0 {
		b.Fatal("cookie rejected")
	}
	sink = n
}

func benchEncodeFull(b *testing.B, t Tuple) {
	k := mustKey(b, specKey)
	o := FullOptions{MSS: 1460, WScale: 7, HasWScale: true, SACK: true}
	b.ReportAllocs()
	var s uint32
	for b.Loop() {
		c, _, _ := k.EncodeFull(t, s, o, 5, 0)
		s += c
	}
	sink = s
}
