package packet

import (
	"encoding/binary"
	"net/netip"
)

// LinkType says what precedes the IP header in the bytes given to Decode.
type LinkType uint8

const (
	// LinkIP: the bytes start with the IP header, as NFQUEUE and raw IP
	// sockets deliver them. The version nibble selects IPv4 or IPv6.
	LinkIP LinkType = iota
	// LinkEthernet: an Ethernet II header (with up to two 802.1Q/802.1ad VLAN
	// tags), as AF_PACKET delivers frames.
	LinkEthernet
)

func (l LinkType) String() string {
	switch l {
	case LinkIP:
		return "ip"
	case LinkEthernet:
		return "ethernet"
	}
	return "unknown"
}

// EtherTypes Decode understands.
const (
	EtherTypeIPv4  = 0x0800
	EtherTypeIPv6  = 0x86dd
	EtherTypeVLAN  = 0x8100 // 802.1Q
	EtherTypeQinQ  = 0x88a8 // 802.1ad
	etherTypeQinQ2 = 0x9100 // pre-standard QinQ
)

// Sizes of the fixed headers.
const (
	EthernetHeaderLen = 14
	IPv4HeaderLen     = 20 // without options
	IPv6HeaderLen     = 40 // without extension headers
	TCPHeaderLen      = 20 // without options
	MaxTCPOptionsLen  = 40
	maxVLANTags       = 2
)

// MaxExtHeaders is the number of IPv6 extension headers Decode walks before
// refusing the packet with ErrExtHeader.
const MaxExtHeaders = 8

// IP protocol numbers (IPv4 protocol, IPv6 next header).
const (
	ProtoHopByHop = 0
	ProtoTCP      = 6
	ProtoRouting  = 43
	ProtoFragment = 44
	ProtoESP      = 50
	ProtoAH       = 51
	ProtoNoNext   = 59
	ProtoDstOpts  = 60
)

// IPv4 flags (the top three bits of the flags/fragment-offset word).
const (
	IPv4DontFragment  = 0x2
	IPv4MoreFragments = 0x1
)

// Packet is a decoded Ethernet/IP/TCP packet: the header fields read out of
// the bytes, and offsets into them. It is meant to be owned by the caller and
// reused: Decode overwrites every field and allocates nothing.
//
// A Packet keeps a reference to the bytes it decoded (for Payload, the header
// accessors and the reply builders); it is valid as long as they are.
type Packet struct {
	b  []byte // the decoded bytes, up to End
	ok bool   // Decode returned nil

	// Link is the link type the bytes were decoded as.
	Link LinkType
	// EthDst and EthSrc are the Ethernet addresses (LinkEthernet only).
	EthDst, EthSrc [6]byte
	// VLANTags is the number of VLAN tags between the addresses and the
	// EtherType (LinkEthernet only).
	VLANTags uint8
	// EtherType is the EtherType after any VLAN tags (LinkEthernet only).
	EtherType uint16

	// Version is the IP version, 4 or 6 (0 if not reached).
	Version uint8
	// Src and Dst are the IP addresses.
	Src, Dst netip.Addr
	// TOS is the IPv4 type-of-service byte or the IPv6 traffic class.
	TOS uint8
	// TTL is the IPv4 time to live or the IPv6 hop limit.
	TTL uint8
	// Protocol is the IPv4 protocol field or, for IPv6, the next header
	// after the extension headers walked.
	Protocol uint8
	// IPv4 only: identification, flags (IPv4DontFragment,
	// IPv4MoreFragments, and the reserved bit 0x4), fragment offset in
	// 8-byte units, header checksum as on the wire.
	ID         uint16
	IPFlags    uint8
	FragOffset uint16
	IPChecksum uint16
	// FlowLabel is the IPv6 flow label.
	FlowLabel uint32
	// ExtHeaders is the number of IPv6 extension headers walked.
	ExtHeaders uint8

	// Offsets into the bytes: the IP header, the TCP header, the TCP
	// payload, and the end of the IP packet (Ethernet padding and trailing
	// bytes after it are not part of the packet). The IPv6 "header" spans
	// its extension headers. Set only when the layer was reached.
	IPOffset, TCPOffset, PayloadOffset, End int

	// TCP header fields.
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	// DataOffset is the TCP header length in 32-bit words.
	DataOffset uint8
	// Reserved holds the four bits between the data offset and the flags
	// (the lowest is the former NS, now AE, bit).
	Reserved    uint8
	Flags       TCPFlags
	Window      uint16
	TCPChecksum uint16
	Urgent      uint16
	// Options are the TCP options, parsed as the kernel's synproxy parses
	// them (see Options).
	Options Options
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// Decode decodes b as a TCP packet behind the given link header into p,
// overwriting all of p. It reads only inside b and never panics.
//
// The error, when not nil, is an *Error wrapping one of ErrTruncated,
// ErrBadHeaderLength, ErrBadLength, ErrBadVersion, ErrNotIP, ErrFragment,
// ErrNotTCP, ErrExtHeader or ErrLinkType. The fields of the layers decoded
// before the error are set (so a fragment or a UDP packet still has its
// addresses); the accessors (Payload and the like) and the reply builders
// need a nil error.
//
// Checksums are not verified; see VerifyChecksums.
func (p *Packet) Decode(b []byte, link LinkType) error {
	*p = Packet{b: b, Link: link}
	off := 0
	switch link {
	case LinkIP:
	case LinkEthernet:
		if len(b) < EthernetHeaderLen {
			return errAt(LayerLink, kTruncated)
		}
		copy(p.EthDst[:], b[0:6])
		copy(p.EthSrc[:], b[6:12])
		et := be16(b[12:])
		off = EthernetHeaderLen
		for et == EtherTypeVLAN || et == EtherTypeQinQ || et == etherTypeQinQ2 {
			if p.VLANTags == maxVLANTags {
				return errAt(LayerLink, kNotIP)
			}
			if len(b) < off+4 {
				return errAt(LayerLink, kTruncated)
			}
			et = be16(b[off+2:])
			off += 4
			p.VLANTags++
		}
		p.EtherType = et
		if et != EtherTypeIPv4 && et != EtherTypeIPv6 {
			return errAt(LayerLink, kNotIP)
		}
	default:
		return errAt(LayerLink, kLinkType)
	}
	p.IPOffset = off
	if len(b) <= off {
		return errAt(LayerLink, kTruncated)
	}
	v := b[off] >> 4
	if link == LinkEthernet && (v == 4) != (p.EtherType == EtherTypeIPv4) {
		return errAt(LayerLink, kBadVersion)
	}
	switch v {
	case 4:
		return p.decode4(off)
	case 6:
		return p.decode6(off)
	}
	return errAt(LayerLink, kBadVersion)
}

func (p *Packet) decode4(off int) error {
	b := p.b
	ip := b[off:]
	if len(ip) < IPv4HeaderLen {
		return errAt(LayerIPv4, kTruncated)
	}
	p.Version = 4
	p.TOS = ip[1]
	p.ID = be16(ip[4:])
	ff := be16(ip[6:])
	p.IPFlags = uint8(ff >> 13)
	p.FragOffset = ff & 0x1fff
	p.TTL = ip[8]
	p.Protocol = ip[9]
	p.IPChecksum = be16(ip[10:])
	p.Src = netip.AddrFrom4([4]byte(ip[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(ip[16:20]))
	ihl := int(ip[0]&0x0f) * 4
	if ihl < IPv4HeaderLen {
		return errAt(LayerIPv4, kBadHeaderLength)
	}
	if len(ip) < ihl {
		return errAt(LayerIPv4, kTruncated)
	}
	tot := int(be16(ip[2:]))
	if tot < ihl {
		return errAt(LayerIPv4, kBadLength)
	}
	if tot > len(ip) {
		return errAt(LayerIPv4, kTruncated)
	}
	p.End = off + tot
	if p.IPFlags&IPv4MoreFragments != 0 || p.FragOffset != 0 {
		return errAt(LayerIPv4, kFragment)
	}
	if p.Protocol != ProtoTCP {
		return errAt(LayerIPv4, kNotTCP)
	}
	return p.decodeTCP(off + ihl)
}

func (p *Packet) decode6(off int) error {
	b := p.b
	ip := b[off:]
	if len(ip) < IPv6HeaderLen {
		return errAt(LayerIPv6, kTruncated)
	}
	p.Version = 6
	w := be32(ip)
	p.TOS = uint8(w >> 20)
	p.FlowLabel = w & 0xfffff
	p.TTL = ip[7]
	p.Src = netip.AddrFrom16([16]byte(ip[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(ip[24:40]))
	pl := int(be16(ip[4:]))
	if IPv6HeaderLen+pl > len(ip) {
		return errAt(LayerIPv6, kTruncated)
	}
	p.End = off + IPv6HeaderLen + pl
	nh := ip[6]
	pos := off + IPv6HeaderLen
	for {
		p.Protocol = nh
		var l int
		switch nh {
		case ProtoTCP:
			return p.decodeTCP(pos)
		case ProtoHopByHop, ProtoRouting, ProtoDstOpts, 135, 139, 140, 253, 254:
			// Hop-by-hop, routing, destination options, mobility, HIP,
			// shim6 and the experimental values share one format
			// (RFC 7045): next header, length in 8-byte units beyond the first.
			if nh == ProtoHopByHop && p.ExtHeaders != 0 {
				return errAt(LayerIPv6, kExtHeader)
			}
			if pos+2 > p.End {
				return errAt(LayerIPv6, kTruncated)
			}
			l = (int(b[pos+1]) + 1) * 8
		case ProtoAH:
			// Authentication header: length in 4-byte units, minus 2.
			if pos+2 > p.End {
				return errAt(LayerIPv6, kTruncated)
			}
			l = (int(b[pos+1]) + 2) * 4
		case ProtoFragment:
			return errAt(LayerIPv6, kFragment)
		case ProtoESP:
			return errAt(LayerIPv6, kExtHeader)
		default:
			return errAt(LayerIPv6, kNotTCP)
		}
		if p.ExtHeaders == MaxExtHeaders {
			return errAt(LayerIPv6, kExtHeader)
		}
		if pos+l > p.End {
			return errAt(LayerIPv6, kTruncated)
		}
		p.ExtHeaders++
		nh = b[pos]
		pos += l
	}
}

func (p *Packet) decodeTCP(pos int) error {
	seg := p.b[pos:p.End]
	p.TCPOffset = pos
	if len(seg) < TCPHeaderLen {
		return errAt(LayerTCP, kTruncated)
	}
	p.SrcPort = be16(seg[0:])
	p.DstPort = be16(seg[2:])
	p.Seq = be32(seg[4:])
	p.Ack = be32(seg[8:])
	p.DataOffset = seg[12] >> 4
	p.Reserved = seg[12] & 0x0f
	p.Flags = TCPFlags(seg[13])
	p.Window = be16(seg[14:])
	p.TCPChecksum = be16(seg[16:])
	p.Urgent = be16(seg[18:])
	hl := int(p.DataOffset) * 4
	if hl < TCPHeaderLen || hl > len(seg) {
		return errAt(LayerTCP, kBadHeaderLength)
	}
	p.PayloadOffset = pos + hl
	p.Options.parse(seg[TCPHeaderLen:hl])
	p.b = p.b[:p.End]
	p.ok = true
	return nil
}

// Valid reports whether the last Decode succeeded.
func (p *Packet) Valid() bool { return p.ok }

// Is6 reports whether the packet is IPv6.
func (p *Packet) Is6() bool { return p.Version == 6 }

// Bytes returns the decoded packet: link header, IP packet, without any
// Ethernet padding that followed it. Nil unless Decode succeeded.
func (p *Packet) Bytes() []byte {
	if !p.ok {
		return nil
	}
	return p.b
}

// LinkHeader returns the link header (empty for LinkIP).
func (p *Packet) LinkHeader() []byte {
	if !p.ok {
		return nil
	}
	return p.b[:p.IPOffset]
}

// IP returns the IP packet (header, extension headers, TCP segment).
func (p *Packet) IP() []byte {
	if !p.ok {
		return nil
	}
	return p.b[p.IPOffset:p.End]
}

// IPHeader returns the IP header with its options or extension headers.
func (p *Packet) IPHeader() []byte {
	if !p.ok {
		return nil
	}
	return p.b[p.IPOffset:p.TCPOffset]
}

// Segment returns the TCP segment: header, options and payload.
func (p *Packet) Segment() []byte {
	if !p.ok {
		return nil
	}
	return p.b[p.TCPOffset:p.End]
}

// TCPHeader returns the TCP header with its options.
func (p *Packet) TCPHeader() []byte {
	if !p.ok {
		return nil
	}
	return p.b[p.TCPOffset:p.PayloadOffset]
}

// Payload returns the TCP payload.
func (p *Packet) Payload() []byte {
	if !p.ok {
		return nil
	}
	return p.b[p.PayloadOffset:p.End]
}

// SrcAddrPort returns the source address and port.
func (p *Packet) SrcAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Src, p.SrcPort) }

// DstAddrPort returns the destination address and port.
func (p *Packet) DstAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Dst, p.DstPort) }

// SegmentLen returns the sequence space the segment occupies: its payload
// length plus one for SYN and one for FIN.
func (p *Packet) SegmentLen() uint32 {
	n := uint32(p.End - p.PayloadOffset)
	if !p.ok {
		n = 0
	}
	if p.Flags&FlagSYN != 0 {
		n++
	}
	if p.Flags&FlagFIN != 0 {
		n++
	}
	return n
}

// IsSYN reports whether the segment is a connection request: SYN without
// ACK, RST or FIN (the iptables SYNPROXY rule's test).
func (p *Packet) IsSYN() bool {
	return p.ok && p.Flags&(FlagSYN|FlagACK|FlagRST|FlagFIN) == FlagSYN
}

// VerifyChecksums checks the IPv4 header checksum and the TCP checksum. It
// returns nil, ErrNotDecoded, or an *Error wrapping ErrChecksum.
func (p *Packet) VerifyChecksums() error {
	if !p.ok {
		return ErrNotDecoded
	}
	if p.Version == 4 && Sum(p.b[p.IPOffset:p.TCPOffset], 0) != 0xffff {
		return errAt(LayerIPv4, kChecksum)
	}
	seg := p.b[p.TCPOffset:p.End]
	if Sum(seg, PseudoHeaderSum(p.Src, p.Dst, ProtoTCP, len(seg))) != 0xffff {
		return errAt(LayerTCP, kChecksum)
	}
	return nil
}

// PartialTCPChecksum reports whether the TCP checksum field holds only the
// pseudo-header sum: the form the kernel leaves for checksum offload
// (CHECKSUM_PARTIAL), which captures on the sending host show.
func (p *Packet) PartialTCPChecksum() bool {
	return p.ok && p.TCPChecksum == PseudoHeaderSum(p.Src, p.Dst, ProtoTCP, p.End-p.TCPOffset)
}
