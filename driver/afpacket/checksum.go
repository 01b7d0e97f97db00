package afpacket

import "encoding/binary"

// sum adds b to the one's complement accumulator s (RFC 1071), eight bytes
// at a time.
func sum(b []byte, s uint64) uint64 {
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		s += v >> 32
		s += v & 0xffffffff
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

func fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// completeChecksum computes the TCP checksum of an IPv4 or IPv6 packet in
// place. A local sender with checksum offload leaves only the pseudo-header
// sum in the field; the engine verifies checksums, so the driver finishes
// the job. Packets it cannot parse are left alone (the engine drops them).
func completeChecksum(p []byte) {
	var s uint64
	var tcp []byte
	switch p[0] >> 4 {
	case 4:
		ihl := int(p[0]&0xf) * 4
		tot := int(binary.BigEndian.Uint16(p[2:]))
		if ihl < 20 || tot < ihl+20 || tot > len(p) || p[9] != 6 {
			return
		}
		tcp = p[ihl:tot]
		s = sum(p[12:20], 0)
	case 6:
		if len(p) < 60 || p[6] != 6 {
			return
		}
		pl := int(binary.BigEndian.Uint16(p[4:]))
		if pl < 20 || 40+pl > len(p) {
			return
		}
		tcp = p[40 : 40+pl]
		s = sum(p[8:40], 0)
	default:
		return
	}
	s += 6 + uint64(len(tcp))
	tcp[16], tcp[17] = 0, 0
	c := ^fold(sum(tcp, s))
	binary.BigEndian.PutUint16(tcp[16:], c)
}
