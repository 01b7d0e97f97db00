package cookie

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/dchest/siphash"
)

// specKey is the key of the worked examples in the specification
// (kernel-syncookies.md §6): bytes 00 01 … 1f in syncookie_secret order.
const specKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func mustKey(t testing.TB, s string) Key {
	t.Helper()
	k, err := ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func tup(c, s string) Tuple {
	return Tuple{Client: netip.MustParseAddrPort(c), Server: netip.MustParseAddrPort(s)}
}

// Known answers: specification §6, computed by a reference model that was
// cross-checked against Linux 6.1.192's lib/siphash.c.
var knownAnswers = []struct {
	name     string
	t        Tuple
	sseq     uint32
	mss      uint16
	count    uint32
	h0, h1   uint32
	idx      uint8
	tableMSS uint16
	isn      uint32
}{
	{"1 v4", tup("192.0.2.1:12345", "198.51.100.7:80"), 1000, 1460, 5, 0xf4306977, 0x7c49cbc6, 3, 1460, 4185536808},
	{"2 v4 no mss", tup("192.0.2.1:12345", "198.51.100.7:80"), 1000, 0, 5, 0xf4306977, 0x7c49cbc6, 0, 536, 4185536805},
	{"3 v4 wraps", tup("10.0.0.1:40000", "10.0.0.2:443"), 4294967295, 1300, 4294967295, 0x7df511de, 0x4efac4f3, 1, 1300, 2112870097},
	{"4 v4", tup("203.0.113.9:65535", "192.0.2.80:8080"), 305419896, 1452, 286330, 0x93b97cf6, 0x3dc6e719, 2, 1440, 548715145},
	{"5 v6", tup("[2001:db8::1]:40000", "[2001:db8::2]:443"), 123456789, 1440, 71600, 0x0ff3661e, 0x0f02a762, 2, 1440, 3344030359},
	{"6 v6 jumbo", tup("[2001:db8::1]:40000", "[2001:db8::2]:443"), 123456789, 9000, 71600, 0x0ff3661e, 0x0f02a762, 3, 8940, 3344030360},
	{"7 v6 low mss", tup("[fe80::1]:1", "[fe80::2]:65535"), 0, 1219, 255, 0x349d8d4c, 0xd385ab98, 0, 1220, 874723556},
}

func TestKnownAnswers(t *testing.T) {
	k := mustKey(t, specKey)
	for _, c := range knownAnswers {
		t.Run(c.name, func(t *testing.T) {
			h0, h1, err := k.Hashes(c.t, c.count)
			if err != nil {
				t.Fatal(err)
			}
			if h0 != c.h0 || h1 != c.h1 {
				t.Errorf("Hashes = %08x %08x, want %08x %08x", h0, h1, c.h0, c.h1)
			}
			isn, err := k.Encode(c.t, c.sseq, c.mss, c.count)
			if err != nil {
				t.Fatal(err)
			}
			if isn != c.isn {
				t.Errorf("Encode = %d (%08x), want %d (%08x)", isn, isn, c.isn, c.isn)
			}
			for age := uint32(0); age <= 2; age++ {
				v, err := k.Check(c.t, c.sseq, c.isn, c.count+age)
				if err != nil {
					t.Fatal(err)
				}
				if age < MaxAge {
					want := Verdict{Valid: true, MSS: c.tableMSS, Index: c.idx, Count: c.count, Age: age}
					if v != want {
						t.Errorf("Check at age %d = %+v, want %+v", age, v, want)
					}
				} else if v.Valid || v.Reason != ReasonStale {
					t.Errorf("Check at age %d = %+v, want stale", age, v)
				}
			}
		})
	}
}

// TestSpecMessages pins the hash-#1 input bytes listed in §6 by hashing them
// with the reference SipHash and comparing with the package's h1.
func TestSpecMessages(t *testing.T) {
	k := mustKey(t, specKey)
	kb := k.Bytes()
	k1a, k1b := binary.LittleEndian.Uint64(kb[16:]), binary.LittleEndian.Uint64(kb[24:])
	for _, c := range []struct {
		row int
		msg string
	}{
		{0, "c0000201c63364070050303905000000"},
		{2, "0a0000010a00000201bb9c40ffffffff"},
		{3, "cb007109c00002501f90ffff7a5e0400"},
		{4, "20010db8000000000000000000000001" + "20010db8000000000000000000000002" + "b0170100" + "9c40" + "01bb"},
		{6, "fe800000000000000000000000000001" + "fe800000000000000000000000000002" + "ff000000" + "0001" + "ffff"},
	} {
		m, _ := hex.DecodeString(c.msg)
		got := uint32(refSipHash(k1a, k1b, m))
		if ka := knownAnswers[c.row]; got != ka.h1 {
			t.Errorf("row %s: reference hash of spec message = %08x, want h1 %08x", ka.name, got, ka.h1)
		}
	}
	// Full 64-bit hash of example 1, hash #1.
	m, _ := hex.DecodeString("c0000201c63364070050303905000000")
	if got := refSipHash(k1a, k1b, m); got != 0x7930c1487c49cbc6 {
		t.Errorf("full SipHash of example 1 = %016x, want 7930c1487c49cbc6", got)
	}
}

// refSipHash is a plain SipHash-2-4 written from the paper, as an independent
// reference for github.com/dchest/siphash.
func refSipHash(k0, k1 uint64, m []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(m)
	for len(m) >= 8 {
		w := binary.LittleEndian.Uint64(m)
		v3 ^= w
		round()
		round()
		v0 ^= w
		m = m[8:]
	}
	var last [8]byte
	copy(last[:], m)
	last[7] = byte(n)
	w := binary.LittleEndian.Uint64(last[:])
	v3 ^= w
	round()
	round()
	v0 ^= w
	v2 ^= 0xff
	for range 4 {
		round()
	}
	return v0 ^ v1 ^ v2 ^ v3
}

// TestSipHashVectors checks the SipHash in use (github.com/dchest/siphash)
// and refSipHash against the reference vectors (veorq/SipHash vectors.h,
// vectors_sip64, identical to the kernel's lib/test_siphash.c): key 00..0f,
// message 00..(i-1). The first and last expected values are quoted by the
// specification (§1.3); the 15-byte one is the SipHash paper's example.
func TestSipHashVectors(t *testing.T) {
	const k0, k1 = 0x0706050403020100, 0x0f0e0d0c0b0a0908
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	for _, c := range []struct {
		n    int
		want uint64
	}{{0, 0x726fdb47dd0e0e31}, {63, 0x958a324ceb064572}, {15, 0xa129ca6149be45e5}} {
		if got := refSipHash(k0, k1, msg[:c.n]); got != c.want {
			t.Errorf("reference SipHash len %d = %016x, want %016x", c.n, got, c.want)
		}
		if got := siphash.Hash(k0, k1, msg[:c.n]); got != c.want {
			t.Errorf("siphash.Hash len %d = %016x, want %016x", c.n, got, c.want)
		}
	}
	for n := 0; n <= 63; n++ {
		if got, want := siphash.Hash(k0, k1, msg[:n]), refSipHash(k0, k1, msg[:n]); got != want {
			t.Errorf("len %d: siphash.Hash = %016x, reference %016x", n, got, want)
		}
	}
}

// model is an independent restatement of the specification (§1.4, §1.5, §1.7,
// §1.8, §2): it builds the hash messages byte by byte from the spec's tables
// and uses refSipHash.
type model struct{ key [32]byte }

func (m model) hash(half int, t Tuple, count uint32) uint32 {
	k0 := binary.LittleEndian.Uint64(m.key[16*half:])
	k1 := binary.LittleEndian.Uint64(m.key[16*half+8:])
	var msg []byte
	c, s := t.Client.Addr().AsSlice(), t.Server.Addr().AsSlice()
	cp, sp := t.Client.Port(), t.Server.Port()
	if t.Client.Addr().Is4() {
		msg = append(msg, c...)
		msg = append(msg, s...)
		msg = append(msg, byte(sp>>8), byte(sp), byte(cp>>8), byte(cp))
		msg = binary.LittleEndian.AppendUint32(msg, count)
	} else {
		msg = append(msg, c...)
		msg = append(msg, s...)
		msg = binary.LittleEndian.AppendUint32(msg, count)
		msg = append(msg, byte(cp>>8), byte(cp), byte(sp>>8), byte(sp))
	}
	return uint32(refSipHash(k0, k1, msg))
}

func (m model) index(mss uint16, v6 bool) uint32 {
	tab := []uint16{536, 1300, 1440, 1460}
	if v6 {
		tab = []uint16{1220, 1420, 1440, 8940}
	}
	idx := 0
	for i := range tab {
		if mss >= tab[i] {
			idx = i
		}
	}
	return uint32(idx)
}

func (m model) encode(t Tuple, sseq uint32, mss uint16, count uint32) uint32 {
	h0, h1 := m.hash(0, t, 0), m.hash(1, t, count)
	return h0 + sseq + (count%256)<<24 + (h1+m.index(mss, t.Client.Addr().Is6()))%(1<<24)
}

func randTuple(r *rand.Rand, v6 bool) Tuple {
	var c, s netip.Addr
	if v6 {
		var a, b [16]byte
		for i := range a {
			a[i], b[i] = byte(r.Uint32()), byte(r.Uint32())
		}
		c, s = netip.AddrFrom16(a), netip.AddrFrom16(b)
	} else {
		var a, b [4]byte
		binary.BigEndian.PutUint32(a[:], r.Uint32())
		binary.BigEndian.PutUint32(b[:], r.Uint32())
		c, s = netip.AddrFrom4(a), netip.AddrFrom4(b)
	}
	return Tuple{netip.AddrPortFrom(c, uint16(r.Uint32())), netip.AddrPortFrom(s, uint16(r.Uint32()))}
}

func TestAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		var kb [32]byte
		for j := range kb {
			kb[j] = byte(r.Uint32())
		}
		k, _ := NewKey(kb[:])
		tp := randTuple(r, i%2 == 1)
		sseq, mss, count := r.Uint32(), uint16(r.Uint32()), r.Uint32()
		got, err := k.Encode(tp, sseq, mss, count)
		if err != nil {
			t.Fatal(err)
		}
		if want := (model{kb}).encode(tp, sseq, mss, count); got != want {
			t.Fatalf("Encode(%v, %d, %d, %d) = %08x, model %08x", tp, sseq, mss, count, got, want)
		}
	}
}

// TestTraceAgainstModel: Trace's values are the model's arithmetic, and its
// verdict is Check's, for valid, stale and mismatched cookies of both
// families.
func TestTraceAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	seen := map[Reason]int{}
	for i := range 20000 {
		var kb [32]byte
		for j := range kb {
			kb[j] = byte(r.Uint32())
		}
		k, _ := NewKey(kb[:])
		m := model{kb}
		tp := randTuple(r, i%2 == 1)
		sseq, count := r.Uint32(), r.Uint32()
		var cookie uint32
		switch i % 4 {
		case 0: // a random value: nearly always stale
			cookie = r.Uint32()
		case 1: // a random value in an accepted slot: nearly always mss-index
			cookie = m.hash(0, tp, 0) + sseq + (count-uint32(i/4%2))<<HashBits + r.Uint32()&HashMask
		default: // a real cookie, checked at age 0 or 1
			made := count - uint32(i/4%2)
			cookie = m.encode(tp, sseq, uint16(r.Uint32()), made)
		}
		tr, err := k.Trace(tp, sseq, cookie, count)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := k.Check(tp, sseq, cookie, count)
		if tr.Verdict != v {
			t.Fatalf("Trace verdict %+v, Check %+v", tr.Verdict, v)
		}
		seen[v.Reason]++
		h0 := m.hash(0, tp, 0)
		rr := cookie - h0 - sseq
		age := (count - rr>>24) % 256
		want := Trace{H0: h0, R: rr, Age: age, Verdict: v}
		if age < MaxAge {
			want.H1 = m.hash(1, tp, count-age)
			want.Index = (rr - want.H1) % (1 << 24)
		}
		if tr != want {
			t.Fatalf("Trace(%v, %d, %08x, %d) = %+v, model %+v", tp, sseq, cookie, count, tr, want)
		}
		if tr.SlotByte() != rr>>24 {
			t.Fatalf("SlotByte = %d, want %d", tr.SlotByte(), rr>>24)
		}
		if (tr.Index < 4 && age < MaxAge) != v.Valid || (v.Valid && uint32(v.Index) != tr.Index) {
			t.Fatalf("index %d age %d but verdict %+v", tr.Index, age, v)
		}
	}
	for _, reason := range []Reason{ReasonNone, ReasonStale, ReasonMSSIndex} {
		if seen[reason] == 0 {
			t.Errorf("no %v verdict among the cases", reason)
		}
	}
}

func TestMSSIndexAll(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		tab := MSSTable(v6)
		for m := 0; m <= 65535; m++ {
			got := MSSIndex(uint16(m), v6)
			want := uint8((model{}).index(uint16(m), v6))
			if got != want {
				t.Fatalf("v6=%v MSSIndex(%d) = %d, want %d", v6, m, got, want)
			}
			// Encoded MSS never exceeds the client's unless raised to entry 0.
			if enc := tab[got]; enc > uint16(m) && got != 0 {
				t.Fatalf("v6=%v mss %d encodes %d", v6, m, enc)
			}
		}
	}
	// The exhaustive ranges of §2.
	for _, c := range []struct {
		v6      bool
		lo, hi  uint16
		idx     uint8
		encoded uint16
	}{
		{false, 0, 1299, 0, 536}, {false, 1300, 1439, 1, 1300}, {false, 1440, 1459, 2, 1440}, {false, 1460, 65535, 3, 1460},
		{true, 0, 1419, 0, 1220}, {true, 1420, 1439, 1, 1420}, {true, 1440, 8939, 2, 1440}, {true, 8940, 65535, 3, 8940},
	} {
		for _, m := range []uint16{c.lo, c.hi} {
			if got := MSSIndex(m, c.v6); got != c.idx || MSSTable(c.v6)[got] != c.encoded {
				t.Errorf("v6=%v mss %d: index %d (%d), want %d (%d)", c.v6, m, got, MSSTable(c.v6)[got], c.idx, c.encoded)
			}
		}
	}
}

// TestRoundTripEveryMSS encodes and checks all 65,536 MSS values for both
// families, at every accepted age.
func TestRoundTripEveryMSS(t *testing.T) {
	k := mustKey(t, specKey)
	for _, tp := range []Tuple{knownAnswers[0].t, knownAnswers[4].t} {
		v6 := tp.Is6()
		for m := 0; m <= 65535; m++ {
			sseq, count := uint32(m)*2654435761, uint32(m)*40503
			isn, err := k.Encode(tp, sseq, uint16(m), count)
			if err != nil {
				t.Fatal(err)
			}
			for age := uint32(0); age < MaxAge; age++ {
				v, _ := k.Check(tp, sseq, isn, count+age)
				if !v.Valid || v.MSS != MSSTable(v6)[MSSIndex(uint16(m), v6)] || v.Count != count || v.Age != age {
					t.Fatalf("v6=%v mss %d age %d: %+v", v6, m, age, v)
				}
			}
		}
	}
}

// TestSlotBoundaries: every age the kernel accepts, the first it rejects, a
// cookie from the future, the 8-bit alias and the 32-bit counter wrap.
func TestSlotBoundaries(t *testing.T) {
	k := mustKey(t, specKey)
	tp := knownAnswers[0].t
	for _, made := range []uint32{0, 1, 254, 255, 256, 286326, 1<<32 - 2, 1<<32 - 1} {
		isn, _ := k.Encode(tp, 77, 1460, made)
		for _, c := range []struct {
			delta  uint32
			valid  bool
			reason Reason
		}{
			{0, true, ReasonNone},
			{1, true, ReasonNone},
			{2, false, ReasonStale},
			{3, false, ReasonStale},
			{255, false, ReasonStale},
			{1<<32 - 1, false, ReasonStale}, // checker one slot behind: age 255
		} {
			v, _ := k.Check(tp, 77, isn, made+c.delta)
			if v.Valid != c.valid || v.Reason != c.reason {
				t.Errorf("made %d, checked at +%d: %+v, want valid=%v reason=%v", made, c.delta, v, c.valid, c.reason)
			}
			if c.valid && v.Count != made {
				t.Errorf("made %d: Count = %d", made, v.Count)
			}
		}
		// 256 slots later the top byte aliases to age 0, and h1 is
		// recomputed with the wrong count: rejected by the MSS index (with
		// probability 1-4/2^24; this tuple and key are known to reject).
		v, _ := k.Check(tp, 77, isn, made+256)
		if v.Valid || v.Reason != ReasonMSSIndex || v.Age != 0 {
			t.Errorf("made %d, checked 256 slots later: %+v, want mss-index rejection at age 0", made, v)
		}
	}
}

// TestSequenceOffByOne reproduces the kernel's linear coupling of the client
// sequence number and the MSS index (§1.8).
func TestSequenceOffByOne(t *testing.T) {
	k := mustKey(t, specKey)
	c := knownAnswers[0]
	v, _ := k.Check(c.t, c.sseq+1, c.isn, c.count)
	if !v.Valid || v.MSS != 1440 {
		t.Errorf("sseq+1: %+v, want valid with MSS 1440", v)
	}
	v, _ = k.Check(c.t, c.sseq-1, c.isn, c.count)
	if v.Valid || v.Reason != ReasonMSSIndex {
		t.Errorf("sseq-1: %+v, want mss-index rejection", v)
	}
	// The ACK of example 1: seq 1001, ack 4185536809.
	v, _ = k.Check(c.t, 1001-1, 4185536809-1, 6)
	if !v.Valid || v.MSS != 1460 || v.Age != 1 {
		t.Errorf("example ACK: %+v", v)
	}
}

func TestBadInput(t *testing.T) {
	k := mustKey(t, specKey)
	for _, c := range []struct {
		name string
		t    Tuple
		err  error
	}{
		{"zero", Tuple{}, ErrInvalidAddr},
		{"mixed", tup("192.0.2.1:1", "[2001:db8::1]:2"), ErrMixedFamilies},
		{"mapped vs v4", tup("[::ffff:192.0.2.1]:1", "192.0.2.2:2"), ErrMixedFamilies},
	} {
		if _, err := k.Encode(c.t, 1, 1460, 1); !errors.Is(err, c.err) {
			t.Errorf("%s: Encode error %v, want %v", c.name, err, c.err)
		}
		if _, err := k.Check(c.t, 1, 1, 1); !errors.Is(err, c.err) {
			t.Errorf("%s: Check error %v, want %v", c.name, err, c.err)
		}
		if _, _, err := k.Hashes(c.t, 1); !errors.Is(err, c.err) {
			t.Errorf("%s: Hashes error %v, want %v", c.name, err, c.err)
		}
		if _, err := k.Trace(c.t, 1, 1, 1); !errors.Is(err, c.err) {
			t.Errorf("%s: Trace error %v, want %v", c.name, err, c.err)
		}
	}
	for _, s := range []string{"", "00", specKey + "00", specKey[:63] + "g"} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		}
	}
	// Hex digits of either case; the first non-digit is named as fmt's %#U
	// and encoding/hex name it.
	if k2, err := ParseKey(strings.ToUpper(specKey)); err != nil || k2 != k {
		t.Errorf("upper-case key: %v", err)
	}
	for _, c := range []struct{ s, want string }{
		{specKey[:63] + "g", "cookie: key is not hexadecimal: invalid byte: U+0067 'g'"},
		{"x" + specKey[1:], "cookie: key is not hexadecimal: invalid byte: U+0078 'x'"},
		{specKey[:10] + "\x01" + specKey[11:], "cookie: key is not hexadecimal: invalid byte: U+0001"},
		{specKey[:10] + "\xe9" + specKey[11:], "cookie: key is not hexadecimal: invalid byte: U+00E9 'é'"},
	} {
		_, err := ParseKey(c.s)
		if err == nil || err.Error() != c.want || errors.Unwrap(err) == nil {
			t.Errorf("ParseKey(%q) error %v, want %q (wrapping the byte's error)", c.s, err, c.want)
		}
		var ibe hex.InvalidByteError
		if b := []byte(c.s); len(b) == 64 {
			_, herr := hex.Decode(make([]byte, 32), b)
			if !errors.As(herr, &ibe) || "cookie: key is not hexadecimal: "+strings.TrimPrefix(herr.Error(), "encoding/hex: ") != c.want {
				t.Errorf("%q: encoding/hex says %v", c.s, herr)
			}
		}
	}
	var kse *KeySizeError
	if _, err := NewKey(make([]byte, 31)); !errors.As(err, &kse) || kse.Size != 31 {
		t.Errorf("NewKey(31 bytes) error %v", err)
	}
	// An MSS of 0 is not an error: index 0.
	if _, err := k.Encode(knownAnswers[0].t, 1, 0, 1); err != nil {
		t.Errorf("MSS 0: %v", err)
	}
}

func TestKeyBytesRoundTrip(t *testing.T) {
	k := mustKey(t, specKey)
	b := k.Bytes()
	if hex.EncodeToString(b[:]) != specKey {
		t.Errorf("Bytes = %x", b)
	}
	if k.k[0][0] != 0x0706050403020100 || k.k[0][1] != 0x0f0e0d0c0b0a0908 ||
		k.k[1][0] != 0x1716151413121110 || k.k[1][1] != 0x1f1e1d1c1b1a1918 {
		t.Errorf("key words %x", k.k)
	}
}

// TestForgeryRate pins the forgery odds of §1.8 exactly. For a fixed tuple
// and client sequence number, of the 2^32 possible cookies exactly 4 pass in
// each of the 2 accepted slots (one per MSS index): 8/2^32 = 2^-29. The
// accepted slots are enumerated in full (2·2^24 checks); the stale test is
// sampled at random, where 2/256 of values must pass it.
func TestForgeryRate(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: enumerates 2^25 cookies")
	}
	k := mustKey(t, specKey)
	tp := knownAnswers[0].t
	const sseq, count = 1000, 5
	h0, _, _ := k.Hashes(tp, 0)
	accepted := 0
	for age := uint32(0); age < MaxAge; age++ {
		base := h0 + sseq + (count-age)<<HashBits
		for low := uint32(0); low <= HashMask; low++ {
			if v, _ := k.Check(tp, sseq, base+low, count); v.Valid {
				accepted++
			}
		}
	}
	if accepted != 8 {
		t.Errorf("%d cookies of 2^32 accepted, want exactly 8 (2^-29)", accepted)
	}
	r := rand.New(rand.NewPCG(3, 4))
	inSlot := 0
	const n = 1 << 20
	for range n {
		if v, _ := k.Check(tp, sseq, r.Uint32(), count); v.Reason != ReasonStale {
			inSlot++
		}
	}
	// Mean n/128 = 8192, standard deviation about 90.
	if inSlot < 8192-600 || inSlot > 8192+600 {
		t.Errorf("slot test passed %d of %d random cookies, predicted %d", inSlot, n, n/128)
	}
}
