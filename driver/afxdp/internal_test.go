package afxdp

import (
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// synPacket builds an IPv4 or IPv6 TCP SYN from src to dst:testPort with a
// correct checksum.
func synPacket(src, dst netip.Addr, sport uint16, seq uint32) []byte {
	seg := packet.Segment{Src: netip.AddrPortFrom(src, sport), Dst: netip.AddrPortFrom(dst, testPort),
		Seq: seq, Flags: packet.FlagSYN, Window: 64240, Options: packet.Options{HasMSS: true, MSS: 1460}}
	b, err := packet.AppendSegment(nil, nil, &seg)
	if err != nil {
		panic(err)
	}
	return b
}

func checksumOK(f []byte) bool {
	var p packet.Packet
	return p.Decode(f, packet.LinkEthernet) == nil && p.VerifyChecksums() == nil
}

const testPort = 9000

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func pseudoSum(src, dst netip.Addr, n int) uint16 {
	return packet.PseudoHeaderSum(src, dst, packet.ProtoTCP, n)
}
