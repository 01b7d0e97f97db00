package packet

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// This file holds the Internet checksum (RFC 1071) and its incremental
// update (RFC 1624). Sums are 16-bit one's complement sums, folded but not
// complemented; a checksum field holds the complement of the sum over the
// data with the field zeroed, and a correct packet sums to 0xffff.

// Sum returns the one's complement sum of b, read as big-endian 16-bit words
// (an odd last byte padded with a zero), added to initial.
func Sum(b []byte, initial uint16) uint16 {
	// 32-bit words summed into 64 bits: no carry is lost below 2^32 words,
	// and 2^32 ≡ 1 (mod 2^16 - 1) lets fold64 bring the carries back in.
	ac := uint64(initial)
	for len(b) >= 32 {
		ac += uint64(binary.BigEndian.Uint32(b[0:])) + uint64(binary.BigEndian.Uint32(b[4:])) +
			uint64(binary.BigEndian.Uint32(b[8:])) + uint64(binary.BigEndian.Uint32(b[12:])) +
			uint64(binary.BigEndian.Uint32(b[16:])) + uint64(binary.BigEndian.Uint32(b[20:])) +
			uint64(binary.BigEndian.Uint32(b[24:])) + uint64(binary.BigEndian.Uint32(b[28:]))
		b = b[32:]
	}
	for len(b) >= 4 {
		ac += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		ac += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		ac += uint64(b[0]) << 8
	}
	return fold64(ac)
}

func fold64(ac uint64) uint16 {
	ac = ac>>32 + ac&0xffffffff
	ac = ac>>32 + ac&0xffffffff
	ac = ac>>16 + ac&0xffff
	ac = ac>>16 + ac&0xffff
	return uint16(ac)
}

// add16 is the one's complement sum of two 16-bit values.
func add16(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s>>16 + s&0xffff)
}

// Checksum returns the Internet checksum of b: the complement of Sum(b, 0).
func Checksum(b []byte) uint16 { return ^Sum(b, 0) }

// PseudoHeaderSum returns the sum of the IPv4 (RFC 793) or IPv6 (RFC 8200)
// pseudo-header for an upper-layer packet of length bytes. src and dst must be
// of the same family; an IPv4-mapped IPv6 address counts as IPv6.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint16 {
	var ac uint64
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		ac = uint64(binary.BigEndian.Uint32(s[:])) + uint64(binary.BigEndian.Uint32(d[:]))
	} else {
		s, d := src.As16(), dst.As16()
		var c uint64
		ac, c = bits.Add64(binary.BigEndian.Uint64(s[:8]), binary.BigEndian.Uint64(s[8:]), 0)
		carry := c
		ac, c = bits.Add64(ac, binary.BigEndian.Uint64(d[:8]), 0)
		carry += c
		ac, c = bits.Add64(ac, binary.BigEndian.Uint64(d[8:]), 0)
		carry += c
		ac, c = bits.Add64(ac, carry, 0)
		ac += c
		ac = uint64(fold64(ac))
	}
	ac += uint64(proto) + uint64(uint32(length))
	return fold64(ac)
}

// TCPChecksum returns the checksum of the TCP segment seg (header with its
// checksum field zeroed, options, payload) between src and dst.
func TCPChecksum(src, dst netip.Addr, seg []byte) uint16 {
	return ^Sum(seg, PseudoHeaderSum(src, dst, ProtoTCP, len(seg)))
}

// IPv4HeaderChecksum returns the checksum of the IPv4 header h (with its
// checksum field zeroed).
func IPv4HeaderChecksum(h []byte) uint16 { return ^Sum(h, 0) }

// UpdateChecksum returns checksum xsum after a 16-bit word it covers changed
// from old to new, by RFC 1624 equation 3: HC' = ~(~HC + ~m + m').
func UpdateChecksum(xsum, old, new uint16) uint16 {
	return ^add16(add16(^xsum, ^old), new)
}

// UpdateChecksum32 is UpdateChecksum for an aligned 32-bit field (a sequence
// number, an IPv4 address).
func UpdateChecksum32(xsum uint16, old, new uint32) uint16 {
	xsum = UpdateChecksum(xsum, uint16(old>>16), uint16(new>>16))
	return UpdateChecksum(xsum, uint16(old), uint16(new))
}

// UpdateChecksumBytes is UpdateChecksum for a field of several words (an
// IPv6 address, say) changing from old to new. The field must start at an
// even offset of the checksummed data and old and new must have the same
// length; an odd last byte is taken as the high byte of a word.
func UpdateChecksumBytes(xsum uint16, old, new []byte) uint16 {
	return ^add16(add16(^xsum, ^Sum(old, 0)), Sum(new, 0))
}
