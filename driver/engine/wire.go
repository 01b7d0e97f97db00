package engine

import (
	"errors"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// This file is the engine's view of the wire, on top of package packet: the
// decode of a received packet into the fields the engine uses, and the
// window update it sends (the cookie SYN-ACK is packet.AppendReply's).

const (
	flagFIN = uint8(packet.FlagFIN)
	flagSYN = uint8(packet.FlagSYN)
	flagRST = uint8(packet.FlagRST)
	flagACK = uint8(packet.FlagACK)
)

// segment is a decoded TCP segment; the engine keeps one per worker.
type segment struct {
	pkt      packet.Packet
	v6       bool
	src, dst netip.Addr
	sport    uint16
	dport    uint16
	seq, ack uint32
	flags    uint8
	window   uint16
	payload  []byte

	hasMSS, hasWS, sackOK, hasTS bool
	mss                          uint16
	wscale                       uint8
	tsval, tsecr                 uint32
}

// malformed reasons
type parseErr uint8

const (
	parseOK parseErr = iota
	parseTruncated
	parseBadHeader
	parseNotTCP
	parseFragment
	parseChecksum
	parseBadOptions
)

// parse decodes a packet behind a link header of type link (IPv4 or IPv6,
// extension headers walked to TCP), verifies its checksums and refuses
// options with a bad length, as the kernel's synproxy parser stops at them.
// The driver's link types are packet's, value for value.
func (s *segment) parse(b []byte, link driver.Link) parseErr {
	p := &s.pkt
	if err := p.Decode(b, packet.LinkType(link)); err != nil {
		return decodeReason(err)
	}
	if p.VerifyChecksums() != nil {
		return parseChecksum
	}
	if p.Options.Malformed {
		return parseBadOptions
	}
	o := &p.Options
	s.v6, s.src, s.dst, s.sport, s.dport = p.Is6(), p.Src, p.Dst, p.SrcPort, p.DstPort
	s.seq, s.ack, s.flags, s.window, s.payload = p.Seq, p.Ack, uint8(p.Flags), p.Window, p.Payload()
	s.hasMSS, s.mss, s.hasWS, s.wscale, s.sackOK = o.HasMSS, o.MSS, o.HasWScale, o.WScale, o.SACKPermitted
	s.hasTS, s.tsval, s.tsecr = o.HasTS, o.TSval, o.TSecr
	return parseOK
}

func decodeReason(err error) parseErr {
	switch {
	case errors.Is(err, packet.ErrTruncated):
		return parseTruncated
	case errors.Is(err, packet.ErrFragment):
		return parseFragment
	case errors.Is(err, packet.ErrNotTCP), errors.Is(err, packet.ErrExtHeader):
		return parseNotTCP
	}
	return parseBadHeader
}

// appendACK builds into dst (its capacity is the slot) the window update:
// an ACK from the server to the client of s, seq and ack as given, no
// data, the timestamp option when ts, behind the link header of the packet
// s answers with its Ethernet addresses swapped (a whole frame on an
// Ethernet queue).
func appendACK(dst []byte, s *segment, seq, ack uint32, window uint16, ts bool, tsval, tsecr uint32, ttl uint8) []byte {
	seg := packet.PureACK(netip.AddrPortFrom(s.dst, s.dport), netip.AddrPortFrom(s.src, s.sport), seq, ack, window)
	seg.TTL = ttl
	if ts {
		seg.Options.HasTS, seg.Options.TSval, seg.Options.TSecr = true, tsval, tsecr
	}
	b, err := packet.AppendReply(dst[:0], &s.pkt, &seg)
	if err != nil {
		return nil
	}
	return b
}
