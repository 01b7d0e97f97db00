package cookie

import (
	"encoding/binary"

	"github.com/dchest/siphash"
)

// The full profile (see "The full profile" in the package documentation).
// This file holds its pure functions; they import no fmt, crypto or reflect,
// so that the js/wasm build can use them.

// Full-profile layout constants.
const (
	// FullMACBits is the number of top ISN bits that carry the MAC.
	FullMACBits = 21
	// FullFieldBits is the number of low ISN bits that carry the fields
	// (masked with the top bits of the MAC).
	FullFieldBits = 11
	// FullFieldMask selects the fields.
	FullFieldMask = 1<<FullFieldBits - 1
	// FullMACMask selects a MAC of FullMACBits bits.
	FullMACMask = 1<<FullMACBits - 1
	// FullTSBits is the number of low TSval bits that widen the MAC when
	// the client sends timestamps; FullTSMask selects them.
	FullTSBits = 8
	FullTSMask = 1<<FullTSBits - 1
)

// Field bits of a full-profile cookie, after unmasking (FullFields).
const (
	FullFieldMSS    = 0x007 // bits 0..2: MSS index (FullMSSTable)
	FullFieldWScale = 0x078 // bits 3..6: window-scale shift 0..14, 15 = none (NoWScale)
	FullFieldSACK   = 0x080 // bit 7: SACK-permitted
	FullFieldECN    = 0x100 // bit 8: ECN
	FullFieldKey    = 0x200 // bit 9: the key (epoch parity)
	FullFieldSlot   = 0x400 // bit 10: the time slot's parity
)

// Shifts of the one-bit fields.
const (
	fullKeyShift  = 9
	fullSlotShift = 10
)

// FullMSSTable returns the 8 MSS values a full-profile cookie can encode.
// Entries come from the MSS distribution Alcock and Nelson measured ("An
// Analysis of TCP Maximum Segment Sizes", University of Waikato, 2011: 1460
// about 45 %, 1440 20 %, 1452 15 %, 1400 and 1360 7 % each, 1200 5 %, 536
// 0.3 %), which FreeBSD's syncookie MSS table also follows, plus the jumbo
// frame. IPv6 entries are the same link MTUs less the larger header (1500
// Ethernet, 1492 PPPoE, 1480 IPv6-in-IPv4, 1420 WireGuard, 1400 VPNs and
// clamps, 9000 jumbo), with 1220 (the IPv6 minimum MTU) at the bottom.
func FullMSSTable(v6 bool) [8]uint16 {
	if v6 {
		return [8]uint16{1220, 1340, 1360, 1380, 1420, 1432, 1440, 8940}
	}
	return [8]uint16{536, 1200, 1360, 1400, 1440, 1452, 1460, 8960}
}

// FullMSSIndex returns the full-profile table index of a client MSS: the
// largest index whose entry is not above mss, 0 below entry 1 (an MSS below
// entry 0, or 0 for a SYN without an MSS option, is raised to entry 0, as
// the Linux profile does).
func FullMSSIndex(mss uint16, v6 bool) uint8 {
	tab := FullMSSTable(v6)
	i := uint8(7)
	for i > 0 && tab[i] > mss {
		i--
	}
	return i
}

// FullOptions are the SYN options a full-profile cookie carries.
type FullOptions struct {
	// MSS is the client's MSS option, 0 when the SYN had none. Decoded, it
	// is the table entry (FullMSSTable).
	MSS uint16
	// WScale is the client's window-scale shift and HasWScale whether the
	// SYN had the option. A shift above 14 is encoded as 14 (RFC 7323);
	// every other shift is carried exactly.
	WScale    uint8
	HasWScale bool
	// SACK: SACK-permitted was offered and allowed.
	SACK bool
	// ECN: ECN was requested (ECE and CWR) and allowed.
	ECN bool
}

// FullVerdict is the outcome of checking a full-profile cookie.
type FullVerdict struct {
	Valid  bool
	Reason Reason // ReasonNone when Valid
	// Options are the options the cookie carries (table values); set
	// only when Valid.
	Options FullOptions
	// MSSIndex is the MSS table index, KeyBit the key bit; set only when
	// Valid.
	MSSIndex, KeyBit uint8
	// TSChecked says the ACK's TSecr was checked too (the ACK carried
	// timestamps); set only when Valid.
	TSChecked bool
	// Count is the full time slot the cookie says it was made in (the
	// checker's slot minus Age, Age being 0 or 1 by the slot bit); set
	// for every cookie of a valid tuple.
	Count, Age uint32
}

// FullFields returns the 11 field bits of a full-profile cookie: the low
// bits with the MAC's top bits taken off.
func FullFields(cookie uint32) uint16 {
	return uint16((cookie ^ cookie>>(32-FullFieldBits)) & FullFieldMask)
}

// FullKeyBit returns the key bit a full-profile cookie names.
func FullKeyBit(cookie uint32) uint8 {
	return uint8(FullFields(cookie) >> fullKeyShift & 1)
}

// fullFields packs options, key bit and slot parity into the field bits.
func fullFields(o *FullOptions, v6 bool, keyBit uint8, count uint32) uint32 {
	ws := uint32(NoWScale)
	if o.HasWScale {
		ws = uint32(min(o.WScale, MaxWScale))
	}
	f := uint32(FullMSSIndex(o.MSS, v6)) | ws<<3
	if o.SACK {
		f |= FullFieldSACK
	}
	if o.ECN {
		f |= FullFieldECN
	}
	f |= uint32(keyBit&1)<<fullKeyShift | (count&1)<<fullSlotShift
	return f
}

// EncodeFull returns the full-profile cookie (the SYN-ACK's ISN) for a SYN
// on tuple t with sequence number sseq and options o, made in time slot
// count with key bit keyBit (0 or 1: the parity of the key's epoch in a
// Ring), and ts, the bits the SYN-ACK's TSval carries when it has a
// timestamp option (FullTSval).
func (k *Key) EncodeFull(t Tuple, sseq uint32, o FullOptions, count uint32, keyBit uint8) (isn uint32, ts uint8, err error) {
	v6, err := t.family()
	if err != nil {
		return 0, 0, err
	}
	f := fullFields(&o, v6, keyBit, count)
	h := k.fullHash(&t, v6, sseq, count, f)
	mac := uint32(h) & FullMACMask
	return mac<<FullFieldBits | (f ^ mac>>(FullMACBits-FullFieldBits)), uint8(h >> FullMACBits), nil
}

// FullTSval returns the SYN-ACK's TSval for a full-profile cookie: the
// millisecond clock msNow with its low FullTSBits bits replaced by ts (so
// up to 255 ms ahead of the clock).
func FullTSval(msNow uint32, ts uint8) uint32 {
	return msNow&^FullTSMask | uint32(ts)
}

// FullTrace is a full-profile check step by step.
type FullTrace struct {
	// Fields are the cookie's field bits (FullFields).
	Fields uint16
	// MAC is the cookie's top FullMACBits bits and Want the MAC the
	// checker computes for the fields, the tuple, the client's ISN and
	// the slot Count - Age.
	MAC, Want uint32
	// TS is the low byte of the ACK's TSecr and WantTS the byte the
	// checker computes; compared only when HasTS.
	TS, WantTS uint8
	HasTS      bool
	// Verdict is what CheckFull returns.
	Verdict FullVerdict
}

// CheckFull checks the full-profile cookie of a client's ACK on tuple t:
// sseq is the client's ISN (the ACK's sequence number minus 1), cookie the
// ACK's acknowledgment number minus 1, count the checker's current slot;
// when hasTS the ACK carried a timestamp option whose TSecr is tsecr, and
// its low FullTSBits bits must match too. The key bit is part of the MAC's
// input: a Ring picks the key by it (FullKeyBit) before calling CheckFull.
// Any cookie value gives a verdict; only an invalid tuple gives an error.
func (k *Key) CheckFull(t Tuple, sseq, cookie, count, tsecr uint32, hasTS bool) (FullVerdict, error) {
	v6, err := t.family()
	if err != nil {
		return FullVerdict{}, err
	}
	f, age, h := k.decodeFull(&t, v6, sseq, cookie, count)
	return fullVerdict(v6, f, age, count, cookie>>FullFieldBits == uint32(h)&FullMACMask,
		uint8(tsecr) == uint8(h>>FullMACBits), hasTS), nil
}

// TraceFull checks a full-profile cookie as CheckFull does and returns the
// intermediate values with the verdict.
func (k *Key) TraceFull(t Tuple, sseq, cookie, count, tsecr uint32, hasTS bool) (FullTrace, error) {
	v6, err := t.family()
	if err != nil {
		return FullTrace{}, err
	}
	f, age, h := k.decodeFull(&t, v6, sseq, cookie, count)
	tr := FullTrace{Fields: uint16(f), MAC: cookie >> FullFieldBits, Want: uint32(h) & FullMACMask,
		TS: uint8(tsecr), WantTS: uint8(h >> FullMACBits), HasTS: hasTS}
	tr.Verdict = fullVerdict(v6, f, age, count, tr.MAC == tr.Want, tr.TS == tr.WantTS, hasTS)
	return tr, nil
}

// decodeFull is the arithmetic of the check: the fields, the age their slot
// bit gives, and the hash of the slot count-age.
func (k *Key) decodeFull(t *Tuple, v6 bool, sseq, cookie, count uint32) (f, age uint32, h uint64) {
	f = uint32(FullFields(cookie))
	age = (count ^ f>>fullSlotShift) & 1
	return f, age, k.fullHash(t, v6, sseq, count-age, f)
}

// fullVerdict is the check's decision on the MAC and the TSecr bits.
func fullVerdict(v6 bool, f, age, count uint32, macOK, tsOK, hasTS bool) FullVerdict {
	v := FullVerdict{Count: count - age, Age: age}
	switch {
	case !macOK:
		v.Reason = ReasonMAC
	case hasTS && !tsOK:
		v.Reason = ReasonTSecr
	default:
		v.Valid, v.TSChecked = true, hasTS
		v.MSSIndex, v.KeyBit = uint8(f&FullFieldMSS), uint8(f>>fullKeyShift&1)
		v.Options = FullOptions{MSS: FullMSSTable(v6)[v.MSSIndex], SACK: f&FullFieldSACK != 0, ECN: f&FullFieldECN != 0}
		if ws := uint8(f & FullFieldWScale >> 3); ws != NoWScale {
			v.Options.WScale, v.Options.HasWScale = ws, true
		}
	}
	return v
}

// fullHash is SipHash-2-4, keyed by half 0 of k, of the full profile's
// message: 24 bytes for IPv4, 48 for IPv6 (see the package documentation),
// lengths the Linux profile never hashes.
func (k *Key) fullHash(t *Tuple, v6 bool, sseq, count, fields uint32) uint64 {
	cp, sp := t.Client.Port(), t.Server.Port()
	// Wire bytes: client port, server port (big-endian), then the client's
	// ISN (little-endian).
	w1 := uint64(cp>>8|cp<<8) | uint64(sp>>8|sp<<8)<<16 | uint64(sseq)<<32
	// Slot, fields, profile tag 'F' and the family.
	if !v6 {
		var b [24]byte
		c4, s4 := t.Client.Addr().As4(), t.Server.Addr().As4()
		binary.LittleEndian.PutUint64(b[0:], uint64(binary.LittleEndian.Uint32(c4[:]))|uint64(binary.LittleEndian.Uint32(s4[:]))<<32)
		binary.LittleEndian.PutUint64(b[8:], w1)
		binary.LittleEndian.PutUint64(b[16:], uint64(count)|uint64(fields)<<32|uint64('F')<<48|4<<56)
		return siphash.Hash(k.k[0][0], k.k[0][1], b[:])
	}
	var b [48]byte
	c16, s16 := t.Client.Addr().As16(), t.Server.Addr().As16()
	for i := 0; i < 16; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(c16[i:]))
		binary.LittleEndian.PutUint64(b[16+i:], binary.LittleEndian.Uint64(s16[i:]))
	}
	binary.LittleEndian.PutUint64(b[32:], w1)
	binary.LittleEndian.PutUint64(b[40:], uint64(count)|uint64(fields)<<32|uint64('F')<<48|6<<56)
	return siphash.Hash(k.k[0][0], k.k[0][1], b[:])
}
