package cookie

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/dchest/siphash"
)

// Cookie layout constants, as in the kernel (net/ipv4/syncookies.c).
const (
	// CountBits is the number of top ISN bits that carry the time slot.
	CountBits = 8
	// HashBits is the number of low ISN bits that carry hash #1 plus the MSS index.
	HashBits = 24
	// HashMask selects the low HashBits bits.
	HashMask = 1<<HashBits - 1
	// MaxAge is the number of time slots a cookie is accepted in: the slot it
	// was made in and the next one (the kernel's MAX_SYNCOOKIE_AGE).
	MaxAge = 2
)

// Errors returned for arguments that cannot describe a TCP connection.
var (
	// ErrInvalidAddr: an address or the tuple is the zero value.
	ErrInvalidAddr = errors.New("cookie: tuple has an invalid address")
	// ErrMixedFamilies: the client and server addresses are of different
	// families (an IPv4-mapped IPv6 address counts as IPv6, as on the wire).
	ErrMixedFamilies = errors.New("cookie: client and server addresses are of different families")
)

// Tuple is the 4-tuple of a connection as the client's packets carry it:
// Client is their source, Server their destination. The SYN and the ACK of a
// handshake give the same Tuple.
type Tuple struct {
	Client netip.AddrPort
	Server netip.AddrPort
}

// Is6 reports whether the tuple is IPv6. It does not validate the tuple.
func (t Tuple) Is6() bool { return t.Client.Addr().Is6() }

// family validates t and reports whether it is IPv6.
func (t *Tuple) family() (v6 bool, err error) {
	c, s := t.Client.Addr(), t.Server.Addr()
	switch {
	case c.Is4() && s.Is4():
		return false, nil
	case c.Is6() && s.Is6():
		return true, nil
	case !c.IsValid() || !s.IsValid():
		return false, ErrInvalidAddr
	}
	return false, ErrMixedFamilies
}

// Reason says why a cookie was rejected.
type Reason uint8

const (
	// ReasonNone: the cookie is valid.
	ReasonNone Reason = iota
	// ReasonStale: the slot in the cookie is not the current one nor the one
	// before (too old, or from the future).
	ReasonStale
	// ReasonMSSIndex: the decoded MSS index is 4 or more, which means the
	// hash does not match: a forged, corrupted or mismatched cookie (wrong
	// tuple, sequence number or key). Its word is "hash".
	ReasonMSSIndex
	// ReasonMAC: the MAC of a full-profile cookie does not match (forged,
	// corrupted or mismatched: wrong tuple, sequence number, key or slot).
	ReasonMAC
	// ReasonTSecr: the ISN of a full-profile cookie matches but the low
	// bits of the ACK's TSecr do not.
	ReasonTSecr
	// ReasonKey: a full-profile cookie names a key (by its key bit) that
	// the Ring does not hold now.
	ReasonKey
)

// String returns the reason's word, the same on the command line, in JSON
// and in the reason label of the metric synproxy_lite_cookie_invalid_total:
// "valid", "stale" or "hash" (the Linux profile); "mac", "tsecr" or "key"
// (the full profile).
func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "valid"
	case ReasonStale:
		return "stale"
	case ReasonMSSIndex:
		return "hash"
	case ReasonMAC:
		return "mac"
	case ReasonTSecr:
		return "tsecr"
	case ReasonKey:
		return "key"
	}
	return "unknown"
}

// Verdict is the outcome of checking a cookie.
type Verdict struct {
	Valid  bool
	Reason Reason // ReasonNone when Valid
	// MSS is the table MSS the cookie encodes, and Index its table index;
	// both set only when Valid.
	MSS   uint16
	Index uint8
	// Count is the full time slot the cookie was made in (the checker's slot
	// minus Age) and Age how many slots ago; set when the slot is accepted
	// (Valid, or rejected for ReasonMSSIndex). For a stale cookie Age is the
	// 8-bit distance the kernel computes (255 for one slot in the future).
	Count uint32
	Age   uint32
}

// MSSTable returns the table of MSS values a cookie can encode: the kernel's
// msstab (IPv4) or msstab (IPv6).
func MSSTable(v6 bool) [4]uint16 {
	if v6 {
		return [4]uint16{1220, 1420, 1440, 8940}
	}
	return [4]uint16{536, 1300, 1440, 1460}
}

// MSSIndex returns the table index the kernel encodes for a client MSS: the
// largest index whose entry is not above mss, and 0 when mss is below entry 1
// (even below entry 0: an MSS under 536 (IPv4) or 1220 (IPv6) is raised, and
// 0, the value synproxy encodes for a SYN without an MSS option, is index 0).
func MSSIndex(mss uint16, v6 bool) uint8 {
	tab := MSSTable(v6)
	switch {
	case mss >= tab[3]:
		return 3
	case mss >= tab[2]:
		return 2
	case mss >= tab[1]:
		return 1
	}
	return 0
}

// Encode returns the cookie (the SYN-ACK's ISN) for a SYN on tuple t with
// sequence number sseq and client MSS mss, made in time slot count.
func (k *Key) Encode(t Tuple, sseq uint32, mss uint16, count uint32) (uint32, error) {
	v6, err := t.family()
	if err != nil {
		return 0, err
	}
	var h0, h1 uint32
	if !v6 {
		var m message4
		m.init(&t)
		h0, h1 = m.hash(k, 0, 0), m.hash(k, 1, count)
	} else {
		var m message6
		m.init(&t)
		h0, h1 = m.hash(k, 0, 0), m.hash(k, 1, count)
	}
	return encode(h0, h1, sseq, count, MSSIndex(mss, v6)), nil
}

func encode(h0, h1, sseq, count uint32, idx uint8) uint32 {
	return h0 + sseq + count<<HashBits + (h1+uint32(idx))&HashMask
}

// Check decodes the cookie of a client's ACK on tuple t, where sseq is the
// client's ISN (the ACK's sequence number minus 1), cookie the ACK's
// acknowledgment number minus 1, and count the checker's current time slot.
// Any cookie value gives a Verdict; only an invalid tuple gives an error.
func (k *Key) Check(t Tuple, sseq, cookie, count uint32) (Verdict, error) {
	v6, err := t.family()
	if err != nil {
		return Verdict{}, err
	}
	_, h1, r, age := k.decode(&t, v6, sseq, cookie, count)
	// The decision is verdict's, written out: returning the literals here
	// keeps Check as fast as it was before Trace (a call of verdict costs it
	// about 4 ns). TestTraceAgainstModel holds the two together.
	if age >= MaxAge {
		return Verdict{Reason: ReasonStale, Age: age}, nil
	}
	idx := (r - h1) & HashMask
	if idx >= 4 {
		return Verdict{Reason: ReasonMSSIndex, Count: count - age, Age: age}, nil
	}
	return Verdict{Valid: true, MSS: MSSTable(v6)[idx], Index: uint8(idx), Count: count - age, Age: age}, nil
}

// Trace is a check step by step: the values Key.Check computes on its way to
// its Verdict, for explainers and capture analysis (see the package
// documentation for the arithmetic).
type Trace struct {
	// H0 is hash #0 of the tuple (key half 0, count 0).
	H0 uint32
	// R is cookie - H0 - sseq: the slot's low byte in the top 8 bits,
	// (h1 + MSS index) mod 2^24 below.
	R uint32
	// Age is (count - R>>24) mod 256: how many slots ago the cookie was
	// made. Only 0 and 1 are accepted (MaxAge).
	Age uint32
	// H1 is hash #1 of the slot the cookie was made in (count - Age), and
	// Index (R - H1) mod 2^24, the MSS index when it is below 4. Both are
	// zero when the age is not accepted.
	H1    uint32
	Index uint32
	// Verdict is what Check returns.
	Verdict Verdict
}

// SlotByte returns the low byte of the slot the cookie says it was made in:
// the top 8 bits of R.
func (tr *Trace) SlotByte() uint32 { return tr.R >> HashBits }

// Trace checks a cookie as Check does and returns the intermediate values
// with the verdict.
func (k *Key) Trace(t Tuple, sseq, cookie, count uint32) (Trace, error) {
	v6, err := t.family()
	if err != nil {
		return Trace{}, err
	}
	h0, h1, r, age := k.decode(&t, v6, sseq, cookie, count)
	idx := (r - h1) & HashMask
	tr := Trace{H0: h0, R: r, Age: age, Verdict: verdict(v6, count, age, idx)}
	if age < MaxAge {
		tr.H1, tr.Index = h1, idx
	}
	return tr, nil
}

// decode is the arithmetic of the check: the hashes, r and the age. h1 is
// hash #1 of the slot count-age when the age is 0 or 1, else of count.
func (k *Key) decode(t *Tuple, v6 bool, sseq, cookie, count uint32) (h0, h1, r, age uint32) {
	// Hash #1 for the current slot is computed beside hash #0, before the
	// slot is known: the two are independent, so they overlap in the CPU,
	// and a handshake ACK nearly always arrives in the slot of its SYN-ACK.
	// Only an ACK from the previous slot pays for a third hash.
	if !v6 {
		var m message4
		m.init(t)
		h0, h1 = m.hash(k, 0, 0), m.hash(k, 1, count)
		r = cookie - h0 - sseq
		age = (count - r>>HashBits) & 0xff
		if age == 1 {
			h1 = m.hash(k, 1, count-1)
		}
		return h0, h1, r, age
	}
	var m message6
	m.init(t)
	h0, h1 = m.hash(k, 0, 0), m.hash(k, 1, count)
	r = cookie - h0 - sseq
	age = (count - r>>HashBits) & 0xff
	if age == 1 {
		h1 = m.hash(k, 1, count-1)
	}
	return h0, h1, r, age
}

// verdict is the check's decision on the age and the decoded MSS index.
func verdict(v6 bool, count, age, idx uint32) Verdict {
	if age >= MaxAge {
		return Verdict{Reason: ReasonStale, Age: age}
	}
	if idx >= 4 {
		return Verdict{Reason: ReasonMSSIndex, Count: count - age, Age: age}
	}
	return Verdict{Valid: true, MSS: MSSTable(v6)[idx], Index: uint8(idx), Count: count - age, Age: age}
}

// Hashes returns the two hash terms of tuple t for time slot count: h0 (hash
// #0, the same for every slot) and h1 (hash #1 for count). They are what
// Encode adds up; explainers and tests use them.
func (k *Key) Hashes(t Tuple, count uint32) (h0, h1 uint32, err error) {
	v6, err := t.family()
	if err != nil {
		return 0, 0, err
	}
	h0, h1 = k.hashes(t, v6, count)
	return h0, h1, nil
}

func (k *Key) hashes(t Tuple, v6 bool, count uint32) (h0, h1 uint32) {
	if !v6 {
		var m message4
		m.init(&t)
		return m.hash(k, 0, 0), m.hash(k, 1, count)
	}
	var m message6
	m.init(&t)
	return m.hash(k, 0, 0), m.hash(k, 1, count)
}

// The hash inputs in the kernel's byte order (see the package documentation)
// are kept as the little-endian 64-bit words SipHash consumes, and written to
// the buffer a word at a time, so the hash's 8-byte loads are forwarded from
// 8-byte stores.

// message4 is the 16-byte IPv4 message: addresses, then ports and count.
type message4 struct {
	b     [16]byte
	ports uint64
}

// init fills m in place: returning it by value would copy it with 16-byte
// moves that cannot be forwarded from the 8-byte stores, a stall that costs
// more than the rest of the message building.
func (m *message4) init(t *Tuple) {
	c4, s4 := t.Client.Addr().As4(), t.Server.Addr().As4()
	sp, cp := t.Server.Port(), t.Client.Port()
	// Wire bytes: server port (big-endian), client port (big-endian).
	m.ports = uint64(sp>>8|sp<<8) | uint64(cp>>8|cp<<8)<<16
	binary.LittleEndian.PutUint64(m.b[0:], uint64(binary.LittleEndian.Uint32(c4[:]))|uint64(binary.LittleEndian.Uint32(s4[:]))<<32)
}

// hash returns the low 32 bits of SipHash-2-4 of the message with the given
// count, keyed by half i of k.
func (m *message4) hash(k *Key, i int, count uint32) uint32 {
	binary.LittleEndian.PutUint64(m.b[8:], m.ports|uint64(count)<<32)
	return uint32(siphash.Hash(k.k[i][0], k.k[i][1], m.b[:]))
}

// message6 is the 40-byte IPv6 message: addresses, count, ports.
type message6 struct {
	ports uint32
	b     [40]byte
}

// init fills m in place (see message4.init).
func (m *message6) init(t *Tuple) {
	c16, s16 := t.Client.Addr().As16(), t.Server.Addr().As16()
	for i := 0; i < 16; i += 8 {
		binary.LittleEndian.PutUint64(m.b[i:], binary.LittleEndian.Uint64(c16[i:]))
		binary.LittleEndian.PutUint64(m.b[16+i:], binary.LittleEndian.Uint64(s16[i:]))
	}
	cp, sp := t.Client.Port(), t.Server.Port()
	// Wire bytes: client port (big-endian), server port (big-endian).
	m.ports = uint32(cp>>8|cp<<8) | uint32(sp>>8|sp<<8)<<16
}

func (m *message6) hash(k *Key, i int, count uint32) uint32 {
	binary.LittleEndian.PutUint64(m.b[32:], uint64(count)|uint64(m.ports)<<32)
	return uint32(siphash.Hash(k.k[i][0], k.k[i][1], m.b[:]))
}
