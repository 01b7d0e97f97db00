//go:build !js

package cookie

import (
	"encoding/binary"
	"testing"
)

// FuzzFullRoundTrip: the cookie EncodeFull makes matches the reference
// model and is accepted by CheckFull in its own slot and the next, with
// and without the timestamp bits, decoding the table values of its options.
func FuzzFullRoundTrip(f *testing.F) {
	kb := mustKey(f, specKey).Bytes()
	for _, c := range fullKAInputs {
		c4, s4 := c.t.Client.Addr().AsSlice(), c.t.Server.Addr().AsSlice()
		f.Add(kb[:], c.t.Is6(), c4, s4, c.t.Client.Port(), c.t.Server.Port(), c.sseq, c.count, c.o.MSS, c.o.WScale, uint8(0x3))
	}
	f.Fuzz(func(t *testing.T, key []byte, v6 bool, a, b []byte, cp, sp uint16, sseq, count uint32, mss uint16, ws, flags uint8) {
		k := fuzzKey(key)
		tp := fuzzTuple(v6, a, b, cp, sp)
		o := FullOptions{MSS: mss, WScale: ws, HasWScale: flags&1 != 0, SACK: flags&2 != 0, ECN: flags&4 != 0}
		bit := flags >> 3 & 1
		isn, ts, err := k.EncodeFull(tp, sseq, o, count, bit)
		if err != nil {
			t.Fatal(err)
		}
		var kb [KeySize]byte
		copy(kb[:], key)
		if wi, wt := (fullModel{kb}).encode(tp, sseq, o, count, bit); wi != isn || wt != ts {
			t.Fatalf("EncodeFull = %08x/%02x, model %08x/%02x", isn, ts, wi, wt)
		}
		for age := range uint32(2) {
			v, err := k.CheckFull(tp, sseq, isn, count+age, uint32(ts)|uint32(sseq)<<8, true)
			if err != nil || !v.Valid || v.Count != count || v.Age != age || v.KeyBit != bit ||
				v.Options.MSS != FullMSSTable(v6)[FullMSSIndex(mss, v6)] || v.Options.HasWScale != o.HasWScale ||
				v.Options.SACK != o.SACK || v.Options.ECN != o.ECN {
				t.Fatalf("age %d: %+v %v", age, v, err)
			}
			if v, _ := k.CheckFull(tp, sseq, isn, count+age, 0, false); !v.Valid {
				t.Fatalf("age %d without timestamps: %+v", age, v)
			}
		}
		if v, _ := k.CheckFull(tp, sseq, isn, count+2, uint32(ts), true); v.Valid {
			t.Fatal("accepted two slots later")
		}
	})
}

// FuzzFullCheck: CheckFull and TraceFull never panic, agree, and give an
// error only for an invalid tuple.
func FuzzFullCheck(f *testing.F) {
	f.Add([]byte{1}, false, []byte{192, 0, 2, 1}, []byte{198, 51, 100, 7}, uint16(1), uint16(2), uint32(3), uint32(4), uint32(5), uint32(6), true)
	f.Add([]byte{}, true, []byte{}, []byte{}, uint16(0), uint16(0), uint32(0), uint32(0), uint32(0), uint32(0), false)
	f.Fuzz(func(t *testing.T, key []byte, v6 bool, a, b []byte, cp, sp uint16, sseq, cookie, count, tsecr uint32, hasTS bool) {
		k := fuzzKey(key)
		tp := fuzzTuple(v6, a, b, cp, sp)
		v, err := k.CheckFull(tp, sseq, cookie, count, tsecr, hasTS)
		tr, err2 := k.TraceFull(tp, sseq, cookie, count, tsecr, hasTS)
		if (err == nil) != (err2 == nil) || tr.Verdict != v {
			t.Fatalf("CheckFull %+v %v, TraceFull %+v %v", v, err, tr.Verdict, err2)
		}
		if err != nil {
			return
		}
		if v.Valid != (v.Reason == ReasonNone) || v.Age > 1 || v.Count != count-v.Age {
			t.Fatalf("inconsistent verdict %+v", v)
		}
		if uint32(FullFields(cookie)) != uint32(tr.Fields) || tr.MAC != cookie>>FullFieldBits {
			t.Fatalf("trace fields %+v", tr)
		}
	})
}

// FuzzFullForgery: random cookies are accepted no more often than
// docs/cookie.md predicts (2^-21 per cookie without timestamps). Each input
// tries 256 cookies: the chance of one acceptance is 2^-13, of three or more
// about 2^-42, so three is a failure.
func FuzzFullForgery(f *testing.F) {
	f.Add(uint64(1), uint32(1000), uint32(5))
	f.Add(uint64(0xdeadbeef), uint32(0), uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, seed uint64, sseq, count uint32) {
		var kb [KeySize]byte
		binary.LittleEndian.PutUint64(kb[:], seed)
		k, _ := NewKey(kb[:])
		tp := tup("192.0.2.1:12345", "198.51.100.7:80")
		accepted := 0
		x := seed | 1
		for range 256 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			if v, _ := k.CheckFull(tp, sseq, uint32(x), count, 0, false); v.Valid {
				accepted++
			}
		}
		if accepted > 2 {
			t.Fatalf("%d of 256 random cookies accepted", accepted)
		}
	})
}
