package packet_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// A SYN proxy's hot path: decode a client's SYN, apply the synproxy rule,
// make the cookie and the timestamp cookie, and build the SYN-ACK into a
// reused buffer, byte for byte as nftables "synproxy mss 1460 wscale 7
// timestamp sack-perm" would.
func ExampleAppendSYNACK() {
	// A Linux client's SYN, as NFQUEUE delivers it (built here for the example).
	in, _ := packet.AppendSegment(nil, nil, &packet.Segment{
		Src: netip.MustParseAddrPort("192.0.2.1:12345"), Dst: netip.MustParseAddrPort("198.51.100.7:80"),
		Seq: 1000, Flags: packet.FlagSYN, Window: 64240, DF: true,
		Options: packet.Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSval: 0xaabbccdd, HasWScale: true, WScale: 7},
	})

	var syn packet.Packet // owned by the caller, reused for every packet
	if err := syn.Decode(in, packet.LinkIP); err != nil || !syn.IsSYN() {
		return
	}
	rule := packet.Rule{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, Timestamp: true, SACKPerm: true}
	offer := rule.Offer(&syn)
	offer.Options.TSval = cookie.TSval(0x12345678, cookie.TSOptions(offer.TS)) // ms clock
	key, _ := cookie.ParseKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	tuple := cookie.Tuple{Client: syn.SrcAddrPort(), Server: syn.DstAddrPort()}
	isn, _ := key.Encode(tuple, syn.Seq, offer.CookieMSS, 5) // time slot 5

	buf := make([]byte, 0, 128)
	out, _ := packet.AppendSYNACK(buf, &syn, isn, &offer)

	var sa packet.Packet
	_ = sa.Decode(out, packet.LinkIP)
	fmt.Printf("%v %v -> %v seq %d ack %d window %d\n", sa.Flags, sa.SrcAddrPort(), sa.DstAddrPort(), sa.Seq, sa.Ack, sa.Window)
	fmt.Printf("IPv4 ID %d DF %v TTL %d, checksums ok: %v\n", sa.ID, sa.IPFlags&packet.IPv4DontFragment != 0, sa.TTL, sa.VerifyChecksums() == nil)
	fmt.Printf("options % x\n", sa.TCPHeader()[20:])
	// Output:
	// SYN|ACK 198.51.100.7:80 -> 192.0.2.1:12345 seq 4185536808 ack 1001 window 0
	// IPv4 ID 0 DF true TTL 64, checksums ok: true
	// options 02 04 05 b4 04 02 08 0a 12 34 56 57 aa bb cc dd 01 03 03 07
}

// Decode reads a frame into a reusable Packet; bad input gives a typed
// error that names the layer.
func ExamplePacket_Decode() {
	frame := []byte{
		0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, // Ethernet
		0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7, // IPv4
		0x30, 0x39, 0, 80, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0, // TCP SYN
	}
	var p packet.Packet
	if err := p.Decode(frame, packet.LinkEthernet); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.SrcAddrPort(), "->", p.DstAddrPort(), p.Flags, "seq", p.Seq, "SYN:", p.IsSYN())

	frame[14+6] |= 0x20 // more fragments
	err := p.Decode(frame, packet.LinkEthernet)
	fmt.Println(err, errors.Is(err, packet.ErrFragment))
	err = p.Decode(frame[:30], packet.LinkEthernet)
	fmt.Println(err, errors.Is(err, packet.ErrTruncated))
	// Output:
	// 192.0.2.1:12345 -> 198.51.100.7:80 SYN seq 1000 SYN: true
	// packet: ipv4: fragment true
	// packet: ipv4: truncated true
}

// An in-place rewrite of a sequence number with an incremental checksum
// update (RFC 1624), as sequence-number translation does.
func ExampleUpdateChecksum32() {
	s := packet.PureACK(netip.MustParseAddrPort("[2001:db8::1]:443"), netip.MustParseAddrPort("[2001:db8::2]:50000"), 5000, 7000, 512)
	b, _ := packet.AppendSegment(nil, nil, &s)
	var p packet.Packet
	_ = p.Decode(b, packet.LinkIP)

	tcp := p.Segment()
	old := binary.BigEndian.Uint32(tcp[4:])
	binary.BigEndian.PutUint32(tcp[4:], old+0x10000000)
	binary.BigEndian.PutUint16(tcp[16:], packet.UpdateChecksum32(p.TCPChecksum, old, old+0x10000000))

	_ = p.Decode(b, packet.LinkIP)
	fmt.Println("seq", p.Seq, "checksum ok:", p.VerifyChecksums() == nil)
	// Output:
	// seq 268440456 checksum ok: true
}
