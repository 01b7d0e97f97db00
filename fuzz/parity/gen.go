package parity

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
)

// SYNSpec describes a client SYN.
type SYNSpec struct {
	Src, Dst  netip.AddrPort
	Seq       uint32
	Window    uint16
	HasMSS    bool
	MSS       uint16
	HasWScale bool
	WScale    uint8
	SACKPerm  bool
	HasTS     bool
	TSval     uint32
	ECN       bool // ECE and CWR set
}

// BuildSYN appends the IP packet of spec, with complete checksums and the
// option layout Linux clients use (MSS, SACK-permitted folded into the
// timestamp's padding, window scale after a NOP).
func BuildSYN(dst []byte, s *SYNSpec) []byte {
	var opts []byte
	if s.HasMSS {
		opts = append(opts, 2, 4, byte(s.MSS>>8), byte(s.MSS))
	}
	switch {
	case s.HasTS && s.SACKPerm:
		opts = append(opts, 4, 2, 8, 10)
	case s.HasTS:
		opts = append(opts, 1, 1, 8, 10)
	case s.SACKPerm:
		opts = append(opts, 1, 1, 4, 2)
	}
	if s.HasTS {
		opts = binary.BigEndian.AppendUint32(opts, s.TSval)
		opts = binary.BigEndian.AppendUint32(opts, 0)
	}
	if s.HasWScale {
		opts = append(opts, 1, 3, 3, s.WScale)
	}
	flags := byte(FlagSYN)
	if s.ECN {
		flags |= FlagECE | FlagCWR
	}
	return buildTCP(dst, s.Src, s.Dst, s.Seq, 0, flags, s.Window, opts, 64)
}

// BuildACK appends a client ACK (seq, ack) with an optional timestamp
// option (TSval, TSecr), complete checksums.
func BuildACK(dst []byte, src, to netip.AddrPort, seq, ack uint32, window uint16, ts bool, tsval, tsecr uint32) []byte {
	var opts []byte
	if ts {
		opts = append(opts, 1, 1, 8, 10)
		opts = binary.BigEndian.AppendUint32(opts, tsval)
		opts = binary.BigEndian.AppendUint32(opts, tsecr)
	}
	return buildTCP(dst, src, to, seq, ack, FlagACK, window, opts, 64)
}

func buildTCP(dst []byte, src, to netip.AddrPort, seq, ack uint32, flags byte, window uint16, opts []byte, ttl byte) []byte {
	tcpLen := 20 + len(opts)
	start := len(dst)
	if src.Addr().Is6() {
		dst = append(dst, 0x60, 0, 0, 0, byte(tcpLen>>8), byte(tcpLen), 6, ttl)
		a, b := src.Addr().As16(), to.Addr().As16()
		dst = append(dst, a[:]...)
		dst = append(dst, b[:]...)
	} else {
		tot := 20 + tcpLen
		dst = append(dst, 0x45, 0, byte(tot>>8), byte(tot), 0, 0, 0x40, 0, ttl, 6, 0, 0)
		a, b := src.Addr().As4(), to.Addr().As4()
		dst = append(dst, a[:]...)
		dst = append(dst, b[:]...)
		binary.BigEndian.PutUint16(dst[start+10:], IPv4Checksum(dst[start:start+20]))
	}
	th := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, src.Port())
	dst = binary.BigEndian.AppendUint16(dst, to.Port())
	dst = binary.BigEndian.AppendUint32(dst, seq)
	dst = binary.BigEndian.AppendUint32(dst, ack)
	dst = append(dst, byte(tcpLen/4)<<4, flags)
	dst = binary.BigEndian.AppendUint16(dst, window)
	dst = append(dst, 0, 0, 0, 0)
	dst = append(dst, opts...)
	ck, _ := TCPChecksum(dst[start:])
	binary.BigEndian.PutUint16(dst[th+16:], ck)
	return dst
}

// PartialChecksum rewrites the TCP checksum field of an IP packet to the
// pseudo-header sum (CHECKSUM_PARTIAL form) and returns the TCP header's
// offset in the packet.
func PartialChecksum(p []byte) int {
	s, err := ParseSegment(p)
	if err != nil {
		return -1
	}
	l4 := len(s.IPHdr)
	binary.BigEndian.PutUint16(p[l4+16:], partialSum(&s))
	return l4
}

// MSSBoundaries are the MSS values around every table edge of both
// families (and 0, sent as an MSS option of value 0).
var MSSBoundaries = []uint16{
	0, 1, 535, 536, 537, 1299, 1300, 1301, 1439, 1440, 1441, 1459, 1460, 1461,
	1219, 1220, 1221, 1419, 1420, 1421, 8939, 8940, 8941, 9000, 65535,
}

// Gen makes a reproducible random stream of SYNs.
type Gen struct {
	r                *rand.Rand
	Client4, Client6 netip.Prefix // client source prefixes (spoofed)
	Server4, Server6 netip.Addr
}

// NewGen returns a generator seeded with seed.
func NewGen(seed int64, c4, c6 netip.Prefix, s4, s6 netip.Addr) *Gen {
	return &Gen{r: rand.New(rand.NewPCG(uint64(seed), 0x5eed)), Client4: c4, Client6: c6, Server4: s4, Server6: s6}
}

// Rand exposes the generator's source.
func (g *Gen) Rand() *rand.Rand { return g.r }

// Addr returns a random address inside p.
func (g *Gen) Addr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		if i*8+8 <= bits {
			continue
		}
		r := byte(g.r.Uint32())
		if i*8 < bits {
			keep := byte(0xff) << (8 - (bits - i*8))
			b[i] = b[i]&keep | r&^keep
		} else {
			b[i] = r
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Next returns a random SYN of the given family.
func (g *Gen) Next(v6 bool) SYNSpec {
	r := g.r
	var s SYNSpec
	port := func() uint16 { return uint16(1 + r.IntN(65535)) }
	if v6 {
		s.Src = netip.AddrPortFrom(g.Addr(g.Client6), port())
		s.Dst = netip.AddrPortFrom(g.Server6, port())
	} else {
		s.Src = netip.AddrPortFrom(g.Addr(g.Client4), port())
		s.Dst = netip.AddrPortFrom(g.Server4, port())
	}
	switch r.IntN(20) {
	case 0:
		s.Seq = 0
	case 1:
		s.Seq = 0xffffffff
	default:
		s.Seq = r.Uint32()
	}
	s.Window = uint16(r.Uint32())
	switch x := r.IntN(10); {
	case x == 0: // no MSS option
	case x < 5:
		s.HasMSS, s.MSS = true, MSSBoundaries[r.IntN(len(MSSBoundaries))]
	case x < 7:
		s.HasMSS, s.MSS = true, uint16(500+r.IntN(1100))
	default:
		s.HasMSS, s.MSS = true, uint16(r.Uint32())
	}
	s.HasTS = r.IntN(10) < 6
	if s.HasTS {
		s.TSval = r.Uint32()
	}
	s.SACKPerm = r.IntN(2) == 0
	if r.IntN(3) != 0 {
		s.HasWScale, s.WScale = true, uint8(r.IntN(17))
		if r.IntN(20) == 0 {
			s.WScale = uint8(r.Uint32())
		}
	}
	s.ECN = r.IntN(10) == 0
	return s
}
