package handoff

import (
	"encoding/binary"
	"net/netip"
)

// tcpChecksum is the TCP checksum of seg (its checksum field zero) from src
// to dst (RFC 793 and RFC 8200 section 8.1 pseudo-headers).
func tcpChecksum(src, dst netip.Addr, seg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	sum += 6 + uint32(len(seg))
	add(seg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// tsClock returns the value the socket's timestamp clock is set to: the
// kernel's clock now, unless the SYN-ACK's TSval (echoed as tsecr) is ahead
// of it, as the timestamp cookie can be by up to 63 ms (or by any amount
// when another host of a fleet sent the SYN-ACK). Comparison is modulo
// 2^32. The low bit stays clear: TCP_TIMESTAMP reads an odd value as a
// request for microsecond timestamps.
func tsClock(now, tsecr uint32) uint32 {
	v := now
	if int32(tsecr-now) > 0 {
		v = tsecr
	}
	return (v + 1) &^ 1
}

// windowUpdate builds the TCP segment (header and options, with its
// checksum) of the window update.
func windowUpdate(h *Handshake, ack uint32, win uint16, tsval uint32) []byte {
	hl := 20
	if h.Timestamps {
		hl += 12
	}
	b := make([]byte, hl)
	binary.BigEndian.PutUint16(b[0:], h.Tuple.Server.Port())
	binary.BigEndian.PutUint16(b[2:], h.Tuple.Client.Port())
	binary.BigEndian.PutUint32(b[4:], h.ServerISN+1)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12] = byte(hl/4) << 4
	b[13] = 0x10 // ACK
	binary.BigEndian.PutUint16(b[14:], win)
	if h.Timestamps {
		copy(b[20:], []byte{1, 1, 8, 10})
		binary.BigEndian.PutUint32(b[24:], tsval)
		binary.BigEndian.PutUint32(b[28:], h.TSval)
	}
	binary.BigEndian.PutUint16(b[16:], tcpChecksum(h.Tuple.Server.Addr(), h.Tuple.Client.Addr(), b))
	return b
}
