package flood

import (
	"errors"
	"math/rand/v2"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// ErrNotSupported is returned by NewSender on systems without raw sockets.
var ErrNotSupported = errors.New("flood: not supported on this system")

// ErrAddr is returned for a source prefix without room for a host, or a
// source and destination of different families.
var ErrAddr = errors.New("flood: bad addresses")

// Generator builds the flood's SYNs. It is not safe for concurrent use.
type Generator struct {
	src  netip.Prefix
	host int // host bits of src drawn at random (at most 32)
	seg  packet.Segment
	rnd  *rand.Rand
}

// Config configures a Generator. A nil *Config means the defaults.
type Config struct {
	// MSS is the value of the SYNs' MSS option; 0 means 1460.
	MSS uint16
	// Window is the SYNs' TCP window; 0 means 1024.
	Window uint16
	// Rand is the source of randomness; nil means math/rand/v2's global
	// source.
	Rand *rand.Rand
}

// NewGenerator returns a generator of SYNs from random hosts of src (never
// the prefix's first or last address; for prefixes longer than 32 host
// bits, random in the low 32) and random ports 1024-65534 to dst, with
// random sequence numbers and an MSS option.
func NewGenerator(src netip.Prefix, dst netip.AddrPort, cfg *Config) (*Generator, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	src = src.Masked()
	host := src.Addr().BitLen() - src.Bits()
	if !src.IsValid() || !dst.Addr().IsValid() || src.Addr().Is4() != dst.Addr().Is4() || host < 2 {
		return nil, ErrAddr
	}
	g := &Generator{src: src, host: min(host, 32), rnd: cfg.Rand}
	g.seg = packet.Segment{Dst: dst, Flags: packet.FlagSYN, Window: cfg.Window,
		Options: packet.Options{MSS: cfg.MSS, HasMSS: true}}
	if g.seg.Window == 0 {
		g.seg.Window = 1024
	}
	if g.seg.Options.MSS == 0 {
		g.seg.Options.MSS = 1460
	}
	return g, nil
}

func (g *Generator) uint32() uint32 {
	if g.rnd != nil {
		return g.rnd.Uint32()
	}
	return rand.Uint32()
}

func (g *Generator) int64N(n int64) int64 {
	if g.rnd != nil {
		return g.rnd.Int64N(n)
	}
	return rand.Int64N(n)
}

// Append appends one SYN, an IP packet (IPv4: 44 bytes, TTL 64, ID 0, no
// DF), to b and returns the extended slice.
func (g *Generator) Append(b []byte) []byte {
	// A host number in [1, 2^host-2]: neither the network's address nor,
	// for IPv4, its broadcast address.
	n := 1 + uint64(g.int64N(int64(1)<<g.host-2))
	a := g.src.Addr().As16()
	for i := 15; i >= 0 && n != 0; i-- {
		a[i] |= byte(n)
		n >>= 8
	}
	src := netip.AddrFrom16(a)
	if g.src.Addr().Is4() {
		src = src.Unmap()
	}
	g.seg.Src = netip.AddrPortFrom(src, uint16(1024+g.int64N(64511)))
	g.seg.Seq = g.uint32()
	out, err := packet.AppendSegment(b, nil, &g.seg)
	if err != nil {
		panic("flood: " + err.Error()) // NewGenerator checked the addresses
	}
	return out
}
