package parity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Segment is a parsed IPv4/IPv6 TCP segment (no IP options or extension
// headers: the harness never sends them and synproxy never makes them).
type Segment struct {
	V6       bool
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    uint8
	Window   uint16
	IPHdr    []byte
	TCPHdr   []byte // header including options
	Options  []byte
	Payload  []byte
	Opts     SynOptions
}

// SynOptions are the options the synproxy option parser extracts.
type SynOptions struct {
	HasMSS    bool
	MSS       uint16
	HasWScale bool
	WScale    uint8 // as sent, not clamped
	SACKPerm  bool
	HasTS     bool
	TSval     uint32
	TSecr     uint32
}

// TCP flags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
	FlagECE = 0x40
	FlagCWR = 0x80
)

// ErrNotTCP is returned for packets that are not plain TCP over IPv4/IPv6.
var ErrNotTCP = errors.New("parity: not a plain TCP segment")

// ParseSegment parses an IP packet.
func ParseSegment(p []byte) (Segment, error) {
	var s Segment
	if len(p) < 20 {
		return s, ErrNotTCP
	}
	var l4 []byte
	switch p[0] >> 4 {
	case 4:
		if p[0]&0xf != 5 || p[9] != 6 || len(p) < 40 {
			return s, ErrNotTCP
		}
		tot := int(binary.BigEndian.Uint16(p[2:]))
		if tot > len(p) || tot < 40 {
			return s, fmt.Errorf("parity: IPv4 total length %d of %d bytes", tot, len(p))
		}
		s.IPHdr, l4 = p[:20], p[20:tot]
		src, dst := netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
		s.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:]))
		s.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:]))
	case 6:
		if len(p) < 60 || p[6] != 6 {
			return s, ErrNotTCP
		}
		pl := int(binary.BigEndian.Uint16(p[4:]))
		if 40+pl > len(p) || pl < 20 {
			return s, fmt.Errorf("parity: IPv6 payload length %d of %d bytes", pl, len(p))
		}
		s.V6 = true
		s.IPHdr, l4 = p[:40], p[40:40+pl]
		src, dst := netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
		s.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:]))
		s.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:]))
	default:
		return s, ErrNotTCP
	}
	doff := int(l4[12]>>4) * 4
	if doff < 20 || doff > len(l4) {
		return s, fmt.Errorf("parity: TCP data offset %d", doff)
	}
	s.Seq = binary.BigEndian.Uint32(l4[4:])
	s.Ack = binary.BigEndian.Uint32(l4[8:])
	s.Flags = l4[13]
	s.Window = binary.BigEndian.Uint16(l4[14:])
	s.TCPHdr, s.Options, s.Payload = l4[:doff], l4[20:doff], l4[doff:]
	s.Opts = parseOptions(s.Options)
	return s, nil
}

// parseOptions follows synproxy_parse_options: stop at EOL, at a bad length
// or when fewer than two bytes remain; take options only with their exact
// lengths.
func parseOptions(o []byte) SynOptions {
	var r SynOptions
	for len(o) > 0 {
		switch o[0] {
		case 0:
			return r
		case 1:
			o = o[1:]
			continue
		}
		if len(o) < 2 {
			return r
		}
		l := int(o[1])
		if l < 2 || l > len(o) {
			return r
		}
		switch {
		case o[0] == 2 && l == 4:
			r.HasMSS, r.MSS = true, binary.BigEndian.Uint16(o[2:])
		case o[0] == 3 && l == 3:
			r.HasWScale, r.WScale = true, o[2]
		case o[0] == 4 && l == 2:
			r.SACKPerm = true
		case o[0] == 8 && l == 10:
			r.HasTS, r.TSval, r.TSecr = true, binary.BigEndian.Uint32(o[2:]), binary.BigEndian.Uint32(o[6:])
		}
		o = o[l:]
	}
	return r
}

// MustSegment parses a packet known to be valid (a captured SYN-ACK).
func MustSegment(p []byte) Segment {
	s, err := ParseSegment(p)
	if err != nil {
		panic(err)
	}
	return s
}
