//go:build !js

package cookie

import (
	"bufio"
	"encoding/binary"
	"flag"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var updateFull = flag.Bool("update-full", false, "rewrite testdata/full_known_answers.txt from the reference model")

// fullModel is an independent restatement of the full profile from the
// package documentation: the message byte by byte, refSipHash, the tables
// as lists, the fields masked with the MAC's top bits.
type fullModel struct{ key [32]byte }

func (m fullModel) hash(t Tuple, sseq, count, fields uint32) uint64 {
	k0 := binary.LittleEndian.Uint64(m.key[0:])
	k1 := binary.LittleEndian.Uint64(m.key[8:])
	var msg []byte
	msg = append(msg, t.Client.Addr().AsSlice()...)
	msg = append(msg, t.Server.Addr().AsSlice()...)
	cp, sp := t.Client.Port(), t.Server.Port()
	msg = append(msg, byte(cp>>8), byte(cp), byte(sp>>8), byte(sp))
	msg = binary.LittleEndian.AppendUint32(msg, sseq)
	msg = binary.LittleEndian.AppendUint32(msg, count)
	msg = binary.LittleEndian.AppendUint16(msg, uint16(fields))
	fam := byte(4)
	if t.Client.Addr().Is6() {
		fam = 6
	}
	msg = append(msg, 'F', fam)
	return refSipHash(k0, k1, msg)
}

func (m fullModel) encode(t Tuple, sseq uint32, o FullOptions, count uint32, kb uint8) (uint32, uint8) {
	mssTab := []uint16{536, 1200, 1360, 1400, 1440, 1452, 1460, 8960}
	if t.Client.Addr().Is6() {
		mssTab = []uint16{1220, 1340, 1360, 1380, 1420, 1432, 1440, 8940}
	}
	mi := 0
	for i, v := range mssTab {
		if o.MSS >= v {
			mi = i
		}
	}
	ws := 15
	if o.HasWScale {
		ws = min(int(o.WScale), 14)
	}
	f := uint32(mi) | uint32(ws)<<3 | uint32(kb)<<9 | (count%2)<<10
	if o.SACK {
		f |= 1 << 7
	}
	if o.ECN {
		f |= 1 << 8
	}
	h := m.hash(t, sseq, count, f)
	mac := uint32(h) % (1 << 21)
	return mac<<11 | (f ^ mac>>10), uint8(h >> 21)
}

// fullKA is one known answer of testdata/full_known_answers.txt.
type fullKA struct {
	name   string
	t      Tuple
	sseq   uint32
	count  uint32
	keyBit uint8
	o      FullOptions
	isn    uint32
	ts     uint8
}

// fullKAInputs are the inputs of the known answers; the answers themselves
// live in testdata, written by the reference model (-update-full) and
// checked against both the model and the package.
var fullKAInputs = []fullKA{
	{name: "v4-full", t: tup("192.0.2.1:12345", "198.51.100.7:80"), sseq: 1000, count: 5,
		o: FullOptions{MSS: 1460, WScale: 7, HasWScale: true, SACK: true}},
	{name: "v4-bare", t: tup("192.0.2.1:12345", "198.51.100.7:80"), sseq: 1000, count: 5},
	{name: "v4-key1-ecn", t: tup("10.0.0.1:40000", "10.0.0.2:443"), sseq: 4294967295, count: 4294967295, keyBit: 1,
		o: FullOptions{MSS: 1452, WScale: 8, HasWScale: true, SACK: true, ECN: true}},
	{name: "v4-rounded", t: tup("203.0.113.9:65535", "192.0.2.80:8080"), sseq: 305419896, count: 286330,
		o: FullOptions{MSS: 1380, WScale: 14, HasWScale: true}},
	{name: "v4-jumbo-ws0", t: tup("203.0.113.9:1", "192.0.2.80:2"), sseq: 7, count: 28633000,
		o: FullOptions{MSS: 9000, WScale: 0, HasWScale: true, SACK: true}},
	{name: "v6-full", t: tup("[2001:db8::1]:40000", "[2001:db8::2]:443"), sseq: 123456789, count: 71600,
		o: FullOptions{MSS: 1440, WScale: 7, HasWScale: true, SACK: true}},
	{name: "v6-jumbo-key1", t: tup("[2001:db8::1]:40000", "[2001:db8::2]:443"), sseq: 123456789, count: 71601, keyBit: 1,
		o: FullOptions{MSS: 9000, WScale: 9, HasWScale: true}},
	{name: "v6-low", t: tup("[fe80::1]:1", "[fe80::2]:65535"), sseq: 0, count: 255,
		o: FullOptions{MSS: 1219, SACK: true}},
}

const fullKAFile = "testdata/full_known_answers.txt"

func (c fullKA) line() string {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	return strings.Join([]string{c.name, c.t.Client.String(), c.t.Server.String(),
		strconv.FormatUint(uint64(c.sseq), 10), strconv.FormatUint(uint64(c.count), 10),
		strconv.Itoa(int(c.keyBit)), strconv.Itoa(int(c.o.MSS)), strconv.Itoa(int(c.o.WScale)),
		b(c.o.HasWScale), b(c.o.SACK), b(c.o.ECN),
		"0x" + strconv.FormatUint(uint64(c.isn), 16), "0x" + strconv.FormatUint(uint64(c.ts), 16)}, " ")
}

func readFullKA(t *testing.T) []fullKA {
	f, err := os.Open(fullKAFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fullKA
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		w := strings.Fields(line)
		if len(w) != 13 {
			t.Fatalf("bad line %q", line)
		}
		n := func(s string) uint64 {
			v, err := strconv.ParseUint(s, 0, 64)
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			return v
		}
		out = append(out, fullKA{name: w[0], t: tup(w[1], w[2]), sseq: uint32(n(w[3])), count: uint32(n(w[4])),
			keyBit: uint8(n(w[5])), o: FullOptions{MSS: uint16(n(w[6])), WScale: uint8(n(w[7])),
				HasWScale: w[8] == "1", SACK: w[9] == "1", ECN: w[10] == "1"},
			isn: uint32(n(w[11])), ts: uint8(n(w[12]))})
	}
	return out
}

// TestFullKnownAnswers pins the full profile's layout: the answers in
// testdata were made by fullModel (with -update-full) from the key of the
// Linux profile's worked examples, bytes 00 01 … 1f.
func TestFullKnownAnswers(t *testing.T) {
	k := mustKey(t, specKey)
	m := fullModel{k.Bytes()}
	if *updateFull {
		var sb strings.Builder
		sb.WriteString("# Full-profile known answers, key 000102…1f (see TestFullKnownAnswers).\n")
		sb.WriteString("# name client server sseq count keybit mss wscale haswscale sack ecn isn ts\n")
		for _, c := range fullKAInputs {
			c.isn, c.ts = m.encode(c.t, c.sseq, c.o, c.count, c.keyBit)
			sb.WriteString(c.line() + "\n")
		}
		if err := os.WriteFile(fullKAFile, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kas := readFullKA(t)
	if len(kas) != len(fullKAInputs) {
		t.Fatalf("%d known answers, want %d", len(kas), len(fullKAInputs))
	}
	for _, c := range kas {
		t.Run(c.name, func(t *testing.T) {
			if isn, ts := m.encode(c.t, c.sseq, c.o, c.count, c.keyBit); isn != c.isn || ts != c.ts {
				t.Errorf("model = %08x/%02x, testdata %08x/%02x", isn, ts, c.isn, c.ts)
			}
			isn, ts, err := k.EncodeFull(c.t, c.sseq, c.o, c.count, c.keyBit)
			if err != nil || isn != c.isn || ts != c.ts {
				t.Errorf("EncodeFull = %08x/%02x %v, want %08x/%02x", isn, ts, err, c.isn, c.ts)
			}
			v, _ := k.CheckFull(c.t, c.sseq, c.isn, c.count+1, uint32(c.ts)|0xabcd00, true)
			if !v.Valid || v.Age != 1 || v.Count != c.count || v.KeyBit != c.keyBit || !v.TSChecked {
				t.Errorf("CheckFull: %+v", v)
			}
		})
	}
}

func TestFullAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 20000 {
		var kb [32]byte
		for j := range kb {
			kb[j] = byte(r.Uint32())
		}
		k, _ := NewKey(kb[:])
		tp := randTuple(r, i%2 == 1)
		o := FullOptions{MSS: uint16(r.Uint32()), WScale: uint8(r.IntN(16)), HasWScale: r.IntN(2) == 0,
			SACK: r.IntN(2) == 0, ECN: r.IntN(2) == 0}
		sseq, count, bit := r.Uint32(), r.Uint32(), uint8(r.IntN(2))
		isn, ts, _ := k.EncodeFull(tp, sseq, o, count, bit)
		wisn, wts := fullModel{kb}.encode(tp, sseq, o, count, bit)
		if isn != wisn || ts != wts {
			t.Fatalf("case %d: EncodeFull = %08x/%02x, model %08x/%02x", i, isn, ts, wisn, wts)
		}
	}
}

// TestFullRoundTripEveryOption: every MSS, every shift with and without the
// option, SACK and ECN, both key bits and both ages decode to the table
// values, rounded down; two slots later the MAC fails.
func TestFullRoundTripEveryOption(t *testing.T) {
	k := mustKey(t, specKey)
	for _, v6 := range []bool{false, true} {
		tp := knownAnswers[0].t
		if v6 {
			tp = knownAnswers[4].t
		}
		tab := FullMSSTable(v6)
		for mss := range 65536 {
			o := FullOptions{MSS: uint16(mss), WScale: uint8(mss % 16), HasWScale: mss%3 != 0,
				SACK: mss%5 != 0, ECN: mss%7 == 0}
			count, bit := uint32(mss*7), uint8(mss%2)
			isn, ts, _ := k.EncodeFull(tp, 99, o, count, bit)
			for age := range uint32(2) {
				v, _ := k.CheckFull(tp, 99, isn, count+age, uint32(ts), true)
				want := tab[0]
				for _, e := range tab {
					if uint16(mss) >= e {
						want = e
					}
				}
				ws, has := uint8(0), o.HasWScale
				if has {
					ws = min(o.WScale, 14)
				}
				if !v.Valid || v.Options != (FullOptions{MSS: want, WScale: ws, HasWScale: has, SACK: o.SACK, ECN: o.ECN}) ||
					v.KeyBit != bit || v.Age != age || v.Count != count {
					t.Fatalf("v6=%v mss %d age %d: %+v", v6, mss, age, v)
				}
				if v, _ := k.CheckFull(tp, 99, isn, count+age, 0, false); !v.Valid || v.TSChecked {
					t.Fatalf("without timestamps: %+v", v)
				}
			}
			if v, _ := k.CheckFull(tp, 99, isn, count+2, uint32(ts), true); v.Valid || v.Reason != ReasonMAC {
				t.Fatalf("two slots later: %+v", v)
			}
			if mss%64 == 0 {
				if v, _ := k.CheckFull(tp, 100, isn, count, uint32(ts), true); v.Valid || v.Reason != ReasonMAC {
					t.Fatalf("other client ISN: %+v", v)
				}
				if v, _ := k.CheckFull(tp, 99, isn, count, uint32(ts)+1, true); v.Valid || v.Reason != ReasonTSecr {
					t.Fatalf("other TSecr: %+v", v)
				}
			}
		}
	}
}

// TestFullForgeryRate pins the forgery odds of docs/cookie.md for the full
// profile. For a fixed tuple, client ISN and slot, the 2^32 cookies split by
// their 11 field bits into 2048 classes of 2^21 (the MAC). Key.CheckFull
// accepts exactly one cookie per class: 2^11 of 2^32, 2^-21. Eight classes
// are enumerated in full (8·2^21 checks); in every class the one accepted
// cookie is found and 64 other MACs are refused. A Ring holding one key
// refuses the classes whose key bit names no key: 2^10 of 2^32, 2^-22 per
// ACK. An ACK with timestamps must also match 8 TSecr bits: 1 of 256, so
// 2^-30 through a ring.
func TestFullForgeryRate(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: enumerates 2^24 cookies")
	}
	k := mustKey(t, specKey)
	tp := knownAnswers[0].t
	const sseq, count = 1000, 5
	unmask := func(mac, f uint32) uint32 { return mac<<FullFieldBits | (f ^ mac>>(FullMACBits-FullFieldBits)) }
	for _, f := range []uint32{0, 1, 0x7f, 0x80, 0x1ff, 0x200, 0x400, 0x7ff} {
		accepted := 0
		for mac := uint32(0); mac <= FullMACMask; mac++ {
			c := unmask(mac, f)
			if uint32(FullFields(c)) != f {
				t.Fatalf("cookie %08x has fields %03x, want %03x", c, FullFields(c), f)
			}
			if v, _ := k.CheckFull(tp, sseq, c, count, 0, false); v.Valid {
				accepted++
			}
		}
		if accepted != 1 {
			t.Errorf("fields %03x: %d of 2^21 cookies accepted, want exactly 1", f, accepted)
		}
	}
	ring, _ := NewRing(&RingConfig{Key: &k, Now: func() time.Time { return time.Unix(count*60+1, 0) }})
	r := rand.New(rand.NewPCG(7, 8))
	keyAccepted, ringAccepted, tsAccepted := 0, 0, 0
	for f := uint32(0); f <= FullFieldMask; f++ {
		tr, _ := k.TraceFull(tp, sseq, unmask(0, f), count, 0, false)
		c := unmask(tr.Want, f)
		if v, _ := k.CheckFull(tp, sseq, c, count, 0, false); v.Valid {
			keyAccepted++
		}
		for range 64 {
			if other := r.Uint32() & FullMACMask; other != tr.Want {
				if v, _ := k.CheckFull(tp, sseq, unmask(other, f), count, 0, false); v.Valid {
					t.Fatalf("fields %03x: a second MAC accepted", f)
				}
			}
		}
		if v, _ := ring.CheckFull(tp, sseq, c, 0, false); v.Valid {
			ringAccepted++
			for ts := range uint32(256) {
				if v, _ := ring.CheckFull(tp, sseq, c, ts|r.Uint32()<<8, true); v.Valid {
					tsAccepted++
				}
			}
		} else if v.Reason != ReasonKey {
			t.Fatalf("fields %03x: ring rejected with %v, want key", f, v.Reason)
		}
	}
	if keyAccepted != 2048 || ringAccepted != 1024 || tsAccepted != 1024 {
		t.Errorf("accepted: key %d (want 2^11: 2^-21), ring %d (want 2^10: 2^-22), with TSecr %d of 1024·256 (want 1024: 2^-30)",
			keyAccepted, ringAccepted, tsAccepted)
	}
}

// TestFullRingRotation: the key bit follows the epoch; the previous key's
// cookies pass by their bit during the grace period (one check, no trial)
// and are refused for their key after it.
func TestFullRingRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Start on an epoch boundary of a 2-minute rotation.
		time.Sleep(time.Until(time.Now().Truncate(2 * time.Minute).Add(2 * time.Minute)))
		r, _ := NewRing(&RingConfig{Rotate: 2 * time.Minute})
		tp := knownAnswers[0].t
		o := FullOptions{MSS: 1460, WScale: 7, HasWScale: true, SACK: true}
		time.Sleep(110 * time.Second) // late in the epoch
		c, ts, _ := r.EncodeFull(tp, 1, o)
		bit := FullKeyBit(c)
		time.Sleep(20 * time.Second) // rotated, in the grace period (one slot)
		c2, _, _ := r.EncodeFull(tp, 1, o)
		if FullKeyBit(c2) == bit {
			t.Fatal("the key bit did not change at the rotation")
		}
		if v, _ := r.CheckFull(tp, 1, c, uint32(ts), true); !v.Valid || v.Age != 1 || v.KeyBit != bit {
			t.Errorf("previous key's cookie in the grace period: %+v", v)
		}
		if v, _ := r.CheckFull(tp, 1, c2, 0, false); !v.Valid || v.Age != 0 {
			t.Errorf("current key's cookie: %+v", v)
		}
		time.Sleep(60 * time.Second) // past the grace period
		if v, _ := r.CheckFull(tp, 1, c, uint32(ts), true); v.Valid || v.Reason != ReasonKey {
			t.Errorf("previous key's cookie after the grace period: %+v", v)
		}
		if _, err := r.CheckFull(Tuple{}, 1, c, 0, false); err == nil {
			t.Error("invalid tuple accepted")
		}
	})
}

// TestFullFleetProfile: fleet nodes agree only when they agree on the
// profile; Linux-profile fleet keys are the ones EpochKey always derived.
func TestFullFleetProfile(t *testing.T) {
	f, _ := NewFleetSecret(make([]byte, FleetSecretSize))
	if f.ProfileEpochKey(ProfileLinux, 3, time.Hour) != f.EpochKey(3, time.Hour) {
		t.Error("the Linux profile's fleet keys changed")
	}
	if f.ProfileEpochKey(ProfileFull, 3, time.Hour) == f.EpochKey(3, time.Hour) {
		t.Error("the full profile derives the Linux profile's key")
	}
	synctest.Test(t, func(t *testing.T) {
		full, _ := NewRing(&RingConfig{Rotate: time.Hour, Fleet: &f, Profile: ProfileFull})
		full2, _ := NewRing(&RingConfig{Rotate: time.Hour, Fleet: &f, Profile: ProfileFull})
		linux, _ := NewRing(&RingConfig{Rotate: time.Hour, Fleet: &f})
		if full.Profile() != ProfileFull || linux.Profile() != ProfileLinux {
			t.Error("Profile")
		}
		tp := knownAnswers[0].t
		c, _, _ := full.EncodeFull(tp, 7, FullOptions{MSS: 1460})
		if v, _ := full2.CheckFull(tp, 7, c, 0, false); !v.Valid {
			t.Errorf("a full-profile peer rejected the cookie: %+v", v)
		}
		if v, _ := linux.CheckFull(tp, 7, c, 0, false); v.Valid {
			t.Error("a Linux-profile node's key accepted a full-profile cookie")
		}
	})
}

func TestParseProfile(t *testing.T) {
	for _, p := range Profiles {
		if q, err := ParseProfile(p.String()); err != nil || q != p {
			t.Errorf("ParseProfile(%q) = %v, %v", p, q, err)
		}
	}
	if _, err := ParseProfile("rich"); err == nil || !strings.HasPrefix(err.Error(), "cookie: ") {
		t.Errorf("ParseProfile(rich) = %v", err)
	}
	if Profile(9).String() != "profile(9)" {
		t.Error(Profile(9).String())
	}
}

func TestFullBadInput(t *testing.T) {
	var k Key
	bad := Tuple{Client: netip.MustParseAddrPort("192.0.2.1:1"), Server: netip.MustParseAddrPort("[::1]:2")}
	if _, _, err := k.EncodeFull(bad, 1, FullOptions{}, 1, 0); err != ErrMixedFamilies {
		t.Error(err)
	}
	if _, err := k.CheckFull(Tuple{}, 1, 1, 1, 0, false); err != ErrInvalidAddr {
		t.Error(err)
	}
	for _, r := range []Reason{ReasonMAC, ReasonTSecr, ReasonKey} {
		if r.String() == "unknown" {
			t.Errorf("reason %d has no name", r)
		}
	}
}
