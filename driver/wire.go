package driver

import (
	"encoding/binary"
	"net/netip"
)

// This file holds the engine's view of the wire: a parse of the IP and TCP
// headers into a reusable struct and the SYN-ACK builder. It is kept narrow
// so that it can sit on top of packet/ (views, option parser, builders,
// checksums) as one unit.

const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagPSH = 0x08
	flagACK = 0x10
	flagECE = 0x40
	flagCWR = 0x80
)

// segment is a parsed TCP segment; the engine keeps one per worker.
type segment struct {
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

func (s *segment) parse(b []byte) parseErr {
	*s = segment{}
	if len(b) < 1 {
		return parseTruncated
	}
	var tcp []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return parseTruncated
		}
		ihl := int(b[0]&0xf) * 4
		tot := int(binary.BigEndian.Uint16(b[2:]))
		if ihl < 20 || tot < ihl || tot > len(b) {
			return parseBadHeader
		}
		if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 {
			return parseFragment
		}
		if b[9] != 6 {
			return parseNotTCP
		}
		if checksum(b[:ihl], 0) != 0 {
			return parseChecksum
		}
		s.src = netip.AddrFrom4([4]byte(b[12:16]))
		s.dst = netip.AddrFrom4([4]byte(b[16:20]))
		tcp = b[ihl:tot]
	case 6:
		if len(b) < 40 {
			return parseTruncated
		}
		pl := int(binary.BigEndian.Uint16(b[4:]))
		if 40+pl > len(b) {
			return parseBadHeader
		}
		if b[6] != 6 {
			// Extension headers are not followed: a SYN proxy has no use
			// for them and the kernel's synproxy does not see past them
			// either for a TCP match.
			return parseNotTCP
		}
		s.v6 = true
		s.src = netip.AddrFrom16([16]byte(b[8:24]))
		s.dst = netip.AddrFrom16([16]byte(b[24:40]))
		tcp = b[40 : 40+pl]
	default:
		return parseBadHeader
	}
	if len(tcp) < 20 {
		return parseTruncated
	}
	doff := int(tcp[12]>>4) * 4
	if doff < 20 || doff > len(tcp) {
		return parseBadHeader
	}
	if checksum(tcp, pseudo(s.v6, s.src, s.dst, len(tcp))) != 0 {
		return parseChecksum
	}
	s.sport = binary.BigEndian.Uint16(tcp[0:])
	s.dport = binary.BigEndian.Uint16(tcp[2:])
	s.seq = binary.BigEndian.Uint32(tcp[4:])
	s.ack = binary.BigEndian.Uint32(tcp[8:])
	s.flags = tcp[13]
	s.window = binary.BigEndian.Uint16(tcp[14:])
	s.payload = tcp[doff:]
	return s.parseOptions(tcp[20:doff])
}

// parseOptions follows the kernel's synproxy option parser: it stops at EOL,
// at a malformed length or when fewer than 2 bytes remain, and takes each
// option only with its exact length.
func (s *segment) parseOptions(o []byte) parseErr {
	for len(o) > 0 {
		switch o[0] {
		case 0: // EOL
			return parseOK
		case 1: // NOP
			o = o[1:]
			continue
		}
		if len(o) < 2 {
			return parseOK
		}
		l := int(o[1])
		if l < 2 || l > len(o) {
			return parseBadOptions
		}
		switch {
		case o[0] == 2 && l == 4:
			s.hasMSS, s.mss = true, binary.BigEndian.Uint16(o[2:])
		case o[0] == 3 && l == 3:
			s.hasWS, s.wscale = true, min(o[2], 14)
		case o[0] == 4 && l == 2:
			s.sackOK = true
		case o[0] == 8 && l == 10:
			s.hasTS = true
			s.tsval = binary.BigEndian.Uint32(o[2:])
			s.tsecr = binary.BigEndian.Uint32(o[6:])
		}
		o = o[l:]
	}
	return parseOK
}

// synackOpts says what the SYN-ACK carries.
type synackOpts struct {
	mss          uint16 // 0: no MSS option
	ts           bool
	tsval, tsecr uint32
	sack         bool
	ws           bool
	wscale       uint8
}

// appendSYNACK builds the SYN-ACK answering syn into dst[:0] and returns it.
// Headers as the kernel's synproxy builds them: IPv4 ID 0, DF, TTL ttl; IPv6
// traffic class and flow label 0, hop limit ttl; window 0.
func appendSYNACK(dst []byte, syn *segment, isn uint32, o *synackOpts, ttl uint8) []byte {
	var opt [24]byte
	n := 0
	if o.mss != 0 {
		opt[0], opt[1] = 2, 4
		binary.BigEndian.PutUint16(opt[2:], o.mss)
		n = 4
	}
	if o.ts {
		if o.sack {
			opt[n], opt[n+1] = 4, 2
		} else {
			opt[n], opt[n+1] = 1, 1
		}
		opt[n+2], opt[n+3] = 8, 10
		binary.BigEndian.PutUint32(opt[n+4:], o.tsval)
		binary.BigEndian.PutUint32(opt[n+8:], o.tsecr)
		n += 12
	}
	if o.ws {
		opt[n], opt[n+1], opt[n+2], opt[n+3] = 1, 3, 3, o.wscale
		n += 4
	}
	tcpLen := 20 + n
	ipLen := 20
	if syn.v6 {
		ipLen = 40
	}
	b := dst[:ipLen+tcpLen]
	clear(b)
	if syn.v6 {
		b[0] = 0x60
		binary.BigEndian.PutUint16(b[4:], uint16(tcpLen))
		b[6] = 6
		b[7] = ttl
		a, c := syn.dst.As16(), syn.src.As16()
		copy(b[8:24], a[:])
		copy(b[24:40], c[:])
	} else {
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(ipLen+tcpLen))
		binary.BigEndian.PutUint16(b[6:], 0x4000)
		b[8] = ttl
		b[9] = 6
		a, c := syn.dst.As4(), syn.src.As4()
		copy(b[12:16], a[:])
		copy(b[16:20], c[:])
		binary.BigEndian.PutUint16(b[10:], checksum(b[:20], 0))
	}
	t := b[ipLen:]
	binary.BigEndian.PutUint16(t[0:], syn.dport)
	binary.BigEndian.PutUint16(t[2:], syn.sport)
	binary.BigEndian.PutUint32(t[4:], isn)
	binary.BigEndian.PutUint32(t[8:], syn.seq+1)
	t[12] = byte(tcpLen/4) << 4
	t[13] = flagSYN | flagACK
	copy(t[20:], opt[:n])
	binary.BigEndian.PutUint16(t[16:], checksum(t, pseudo(syn.v6, syn.dst, syn.src, tcpLen)))
	return b
}

// pseudo returns the unfolded sum of the TCP pseudo-header.
func pseudo(v6 bool, src, dst netip.Addr, l int) uint32 {
	var s uint32
	if v6 {
		a, b := src.As16(), dst.As16()
		for i := 0; i < 16; i += 2 {
			s += uint32(a[i])<<8 | uint32(a[i+1])
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
	} else {
		a, b := src.As4(), dst.As4()
		for i := 0; i < 4; i += 2 {
			s += uint32(a[i])<<8 | uint32(a[i+1])
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	return s + 6 + uint32(l)
}

// checksum returns the Internet checksum of b with initial sum s (zero when
// b already holds a correct checksum field).
func checksum(b []byte, s uint32) uint16 {
	sum := uint64(s)
	for len(b) >= 2 {
		sum += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// ackOpts says what a window-update ACK carries.
type ackOpts struct {
	window       uint16
	ts           bool
	tsval, tsecr uint32
}

// appendACK builds into dst[:0] an ACK from the server to the client of the
// segment s (which came from the client): seq and ack as given, no data.
// Options: NOP, NOP, timestamp when o.ts.
func appendACK(dst []byte, s *segment, seq, ack uint32, o *ackOpts, ttl uint8) []byte {
	n := 0
	if o.ts {
		n = 12
	}
	tcpLen := 20 + n
	ipLen := 20
	if s.v6 {
		ipLen = 40
	}
	b := dst[:ipLen+tcpLen]
	clear(b)
	writeIPHeader(b, s, tcpLen, ttl)
	t := b[ipLen:]
	binary.BigEndian.PutUint16(t[0:], s.dport)
	binary.BigEndian.PutUint16(t[2:], s.sport)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12] = byte(tcpLen/4) << 4
	t[13] = flagACK
	binary.BigEndian.PutUint16(t[14:], o.window)
	if o.ts {
		t[20], t[21], t[22], t[23] = 1, 1, 8, 10
		binary.BigEndian.PutUint32(t[24:], o.tsval)
		binary.BigEndian.PutUint32(t[28:], o.tsecr)
	}
	binary.BigEndian.PutUint16(t[16:], checksum(t, pseudo(s.v6, s.dst, s.src, tcpLen)))
	return b
}

// writeIPHeader writes the IP header of a packet from s's destination to
// s's source into b: as the kernel's synproxy writes it.
func writeIPHeader(b []byte, s *segment, tcpLen int, ttl uint8) {
	if s.v6 {
		b[0] = 0x60
		binary.BigEndian.PutUint16(b[4:], uint16(tcpLen))
		b[6] = 6
		b[7] = ttl
		a, c := s.dst.As16(), s.src.As16()
		copy(b[8:24], a[:])
		copy(b[24:40], c[:])
		return
	}
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+tcpLen))
	binary.BigEndian.PutUint16(b[6:], 0x4000)
	b[8] = ttl
	b[9] = 6
	a, c := s.dst.As4(), s.src.As4()
	copy(b[12:16], a[:])
	copy(b[16:20], c[:])
	binary.BigEndian.PutUint16(b[10:], checksum(b[:20], 0))
}
