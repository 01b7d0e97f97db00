package cookie

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// fuzzTuple makes a tuple of either family from raw fuzz bytes.
func fuzzTuple(v6 bool, a, b []byte, cp, sp uint16) Tuple {
	var c, s netip.Addr
	if v6 {
		var x, y [16]byte
		copy(x[:], a)
		copy(y[:], b)
		c, s = netip.AddrFrom16(x), netip.AddrFrom16(y)
	} else {
		var x, y [4]byte
		copy(x[:], a)
		copy(y[:], b)
		c, s = netip.AddrFrom4(x), netip.AddrFrom4(y)
	}
	return Tuple{netip.AddrPortFrom(c, cp), netip.AddrPortFrom(s, sp)}
}

func fuzzKey(b []byte) Key {
	var kb [KeySize]byte
	copy(kb[:], b)
	k, _ := NewKey(kb[:])
	return k
}

// FuzzRoundTrip: for every input, the cookie Encode makes is accepted by Check
// in its own slot and the next, with the table MSS of the client's MSS, and
// rejected as stale two slots later; and it matches the reference model.
func FuzzRoundTrip(f *testing.F) {
	for _, c := range knownAnswers {
		kb := mustKey(f, specKey).Bytes()
		c4, s4 := c.t.Client.Addr().AsSlice(), c.t.Server.Addr().AsSlice()
		f.Add(kb[:], c.t.Is6(), c4, s4, c.t.Client.Port(), c.t.Server.Port(), c.sseq, c.mss, c.count)
	}
	f.Fuzz(func(t *testing.T, key []byte, v6 bool, a, b []byte, cp, sp uint16, sseq uint32, mss uint16, count uint32) {
		k := fuzzKey(key)
		tp := fuzzTuple(v6, a, b, cp, sp)
		isn, err := k.Encode(tp, sseq, mss, count)
		if err != nil {
			t.Fatal(err)
		}
		var kb [KeySize]byte
		copy(kb[:], key)
		if want := (model{kb}).encode(tp, sseq, mss, count); isn != want {
			t.Fatalf("Encode = %08x, model %08x", isn, want)
		}
		for age := uint32(0); age < MaxAge; age++ {
			v, err := k.Check(tp, sseq, isn, count+age)
			if err != nil || !v.Valid || v.MSS != MSSTable(v6)[MSSIndex(mss, v6)] || v.Count != count || v.Age != age {
				t.Fatalf("age %d: %+v %v", age, v, err)
			}
		}
		if v, _ := k.Check(tp, sseq, isn, count+MaxAge); v.Valid || v.Reason != ReasonStale {
			t.Fatalf("two slots later: %+v", v)
		}
	})
}

// FuzzCheck: Check never panics and never errs on any cookie, and what it
// accepts is exactly what Encode would have produced for the decoded slot
// and MSS index.
func FuzzCheck(f *testing.F) {
	kb := mustKey(f, specKey).Bytes()
	f.Add(kb[:], false, []byte{192, 0, 2, 1}, []byte{198, 51, 100, 7}, uint16(12345), uint16(80), uint32(1000), uint32(4185536808), uint32(5))
	f.Add(kb[:], true, []byte{0x20, 1, 0xd, 0xb8}, []byte{0x20, 1, 0xd, 0xb8}, uint16(1), uint16(2), uint32(0), uint32(0), uint32(0))
	f.Add([]byte{}, false, []byte{}, []byte{}, uint16(0), uint16(0), uint32(0xffffffff), uint32(0xffffffff), uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, key []byte, v6 bool, a, b []byte, cp, sp uint16, sseq, ck, count uint32) {
		k := fuzzKey(key)
		tp := fuzzTuple(v6, a, b, cp, sp)
		v, err := k.Check(tp, sseq, ck, count)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Valid {
			return
		}
		again, _ := k.Encode(tp, sseq, MSSTable(v6)[v.Index], v.Count)
		if again != ck {
			t.Fatalf("accepted %08x but Encode gives %08x for %+v", ck, again, v)
		}
	})
}

// FuzzForgery: random cookies are accepted no more often than the
// specification predicts. Each input tries 4096 cookies derived from it; the
// chance of even one acceptance is 4096·2^-29 < 10^-5, so an input that gets
// two is a failure (the probability of that under the prediction is ~10^-10).
func FuzzForgery(f *testing.F) {
	f.Add(uint64(1), uint32(1000), uint32(5))
	f.Add(uint64(0xdeadbeef), uint32(0), uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, seed uint64, sseq, count uint32) {
		var kb [KeySize]byte
		binary.LittleEndian.PutUint64(kb[:], seed)
		k, _ := NewKey(kb[:])
		tp := tup("192.0.2.1:12345", "198.51.100.7:80")
		accepted := 0
		x := seed | 1
		for range 4096 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			if v, _ := k.Check(tp, sseq, uint32(x), count); v.Valid {
				accepted++
			}
		}
		if accepted > 1 {
			t.Fatalf("%d of 4096 random cookies accepted", accepted)
		}
	})
}
