package handoff

import (
	"encoding/binary"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

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
	binary.BigEndian.PutUint16(b[16:], packet.TCPChecksum(h.Tuple.Server.Addr(), h.Tuple.Client.Addr(), b))
	return b
}
