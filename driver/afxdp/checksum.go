package afxdp

import (
	"encoding/binary"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

const (
	frameSize = 2048 // a UMEM chunk: room for a frame of an MTU 1500 link behind the kernel's 256-byte headroom
	ethLen    = 14
)

// completeChecksum finishes the TCP checksum of frame f in place when it
// holds only the pseudo-header sum: a local sender with checksum offload
// (veth, loopback) leaves the rest to the device, and XDP sees the segment
// before anything completes it. A correct checksum that happens to equal
// the pseudo-header sum is computed again to the same value, so nothing
// valid is changed; the engine verifies what it gets.
func completeChecksum(f []byte) {
	ip := f[ethLen:]
	var src, dst netip.Addr
	var seg []byte
	switch ip[0] >> 4 {
	case 4:
		hl := int(ip[0]&0xf) * 4
		tot := int(binary.BigEndian.Uint16(ip[2:]))
		if hl < 20 || tot < hl+20 || tot > len(ip) || ip[9] != packet.ProtoTCP {
			return
		}
		src, dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		seg = ip[hl:tot]
	case 6:
		pl := int(binary.BigEndian.Uint16(ip[4:]))
		if len(ip) < 40 || pl < 20 || 40+pl > len(ip) || ip[6] != packet.ProtoTCP {
			return
		}
		src, dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		seg = ip[40 : 40+pl]
	default:
		return
	}
	ps := packet.PseudoHeaderSum(src, dst, packet.ProtoTCP, len(seg))
	if binary.BigEndian.Uint16(seg[16:]) != ps {
		return
	}
	seg[16], seg[17] = 0, 0
	binary.BigEndian.PutUint16(seg[16:], packet.TCPChecksum(src, dst, seg))
}
