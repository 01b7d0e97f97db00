package packet_test

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// rawV4 writes an IPv4/TCP packet by hand (no builder): 20-byte IP header,
// 20-byte TCP header, the given options (padded with EOL to 4 bytes) and
// payload. Checksums are left zero.
func rawV4(opts []byte, payload []byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	tcpLen := 20 + len(opts) + len(payload)
	b := make([]byte, 20+tcpLen)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[6:], 0x4000)
	b[8], b[9] = 64, 6
	copy(b[12:], []byte{192, 0, 2, 1})
	copy(b[16:], []byte{198, 51, 100, 7})
	t := b[20:]
	binary.BigEndian.PutUint16(t[0:], 12345)
	binary.BigEndian.PutUint16(t[2:], 80)
	binary.BigEndian.PutUint32(t[4:], 1000)
	t[12] = byte((20+len(opts))/4) << 4
	t[13] = 0x02
	binary.BigEndian.PutUint16(t[14:], 64240)
	copy(t[20:], opts)
	copy(t[20+len(opts):], payload)
	return b
}

// rawV6 writes an IPv6 packet with the given extension header bytes (their
// next-header fields already chained; first is the fixed header's next
// header) and a 20-byte TCP header.
func rawV6(first byte, ext []byte) []byte {
	b := make([]byte, 40+len(ext)+20)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(ext)+20))
	b[6], b[7] = first, 64
	a := netip.MustParseAddr("2001:db8::1").As16()
	copy(b[8:], a[:])
	a = netip.MustParseAddr("2001:db8::2").As16()
	copy(b[24:], a[:])
	copy(b[40:], ext)
	t := b[40+len(ext):]
	binary.BigEndian.PutUint16(t[0:], 40000)
	binary.BigEndian.PutUint16(t[2:], 443)
	binary.BigEndian.PutUint32(t[4:], 123456789)
	t[12] = 5 << 4
	t[13] = 0x02
	return b
}

func ethFrame(etherType uint16, tags int, payload []byte) []byte {
	b := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	for range tags {
		b = append(b, 0x81, 0x00, 0x00, 0x2a)
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

func mod(b []byte, f func(b []byte)) []byte {
	b = append([]byte(nil), b...)
	f(b)
	return b
}

func TestDecodeErrors(t *testing.T) {
	v4 := rawV4([]byte{2, 4, 5, 180}, nil)
	v6 := rawV6(6, nil)
	hbh := func(next byte) []byte { return []byte{next, 0, 1, 4, 0, 0, 0, 0} } // PadN
	for _, c := range []struct {
		name  string
		b     []byte
		link  packet.LinkType
		want  error
		layer packet.Layer
	}{
		{"empty", nil, packet.LinkIP, packet.ErrTruncated, packet.LayerLink},
		{"version 5", mod(v4, func(b []byte) { b[0] = 0x55 }), packet.LinkIP, packet.ErrBadVersion, packet.LayerLink},
		{"version 0", []byte{0x00}, packet.LinkIP, packet.ErrBadVersion, packet.LayerLink},
		{"link type", v4, packet.LinkType(9), packet.ErrLinkType, packet.LayerLink},
		{"v4 19 bytes", v4[:19], packet.LinkIP, packet.ErrTruncated, packet.LayerIPv4},
		{"v4 IHL 4", mod(v4, func(b []byte) { b[0] = 0x44 }), packet.LinkIP, packet.ErrBadHeaderLength, packet.LayerIPv4},
		{"v4 IHL 0", mod(v4, func(b []byte) { b[0] = 0x40 }), packet.LinkIP, packet.ErrBadHeaderLength, packet.LayerIPv4},
		{"v4 IHL 15 beyond bytes", mod(v4[:44], func(b []byte) { b[0] = 0x4f }), packet.LinkIP, packet.ErrTruncated, packet.LayerIPv4},
		{"v4 total length below IHL", mod(v4, func(b []byte) { b[2], b[3] = 0, 19 }), packet.LinkIP, packet.ErrBadLength, packet.LayerIPv4},
		{"v4 total length zero", mod(v4, func(b []byte) { b[2], b[3] = 0, 0 }), packet.LinkIP, packet.ErrBadLength, packet.LayerIPv4},
		{"v4 total length beyond bytes", v4[:len(v4)-1], packet.LinkIP, packet.ErrTruncated, packet.LayerIPv4},
		{"v4 more fragments", mod(v4, func(b []byte) { b[6] = 0x20 }), packet.LinkIP, packet.ErrFragment, packet.LayerIPv4},
		{"v4 first fragment with DF|MF", mod(v4, func(b []byte) { b[6] = 0x60 }), packet.LinkIP, packet.ErrFragment, packet.LayerIPv4},
		{"v4 fragment offset", mod(v4, func(b []byte) { b[7] = 1 }), packet.LinkIP, packet.ErrFragment, packet.LayerIPv4},
		{"v4 fragment offset high bits", mod(v4, func(b []byte) { b[6] = 0x1f }), packet.LinkIP, packet.ErrFragment, packet.LayerIPv4},
		{"v4 UDP", mod(v4, func(b []byte) { b[9] = 17 }), packet.LinkIP, packet.ErrNotTCP, packet.LayerIPv4},
		{"v4 TCP 19 bytes", mod(v4[:39], func(b []byte) { b[3] = 39 }), packet.LinkIP, packet.ErrTruncated, packet.LayerTCP},
		{"v4 TCP data offset 4", mod(v4, func(b []byte) { b[32] = 0x40 }), packet.LinkIP, packet.ErrBadHeaderLength, packet.LayerTCP},
		{"v4 TCP data offset beyond segment", mod(v4, func(b []byte) { b[32] = 0x70 }), packet.LinkIP, packet.ErrBadHeaderLength, packet.LayerTCP},
		{"v4 TCP data offset beyond total length", mod(append(v4, make([]byte, 8)...), func(b []byte) { b[32] = 0x70 }), packet.LinkIP, packet.ErrBadHeaderLength, packet.LayerTCP},
		{"eth 13 bytes", make([]byte, 13), packet.LinkEthernet, packet.ErrTruncated, packet.LayerLink},
		{"eth ARP", ethFrame(0x0806, 0, make([]byte, 28)), packet.LinkEthernet, packet.ErrNotIP, packet.LayerLink},
		{"eth no payload", ethFrame(0x0800, 0, nil), packet.LinkEthernet, packet.ErrTruncated, packet.LayerLink},
		{"eth VLAN truncated", ethFrame(0x8100, 0, []byte{0, 1}), packet.LinkEthernet, packet.ErrTruncated, packet.LayerLink},
		{"eth three VLAN tags", ethFrame(0x0800, 3, v4), packet.LinkEthernet, packet.ErrNotIP, packet.LayerLink},
		{"eth v4 type, v6 packet", ethFrame(0x0800, 0, v6), packet.LinkEthernet, packet.ErrBadVersion, packet.LayerLink},
		{"eth v6 type, v4 packet", ethFrame(0x86dd, 1, v4), packet.LinkEthernet, packet.ErrBadVersion, packet.LayerLink},
		{"v6 39 bytes", v6[:39], packet.LinkIP, packet.ErrTruncated, packet.LayerIPv6},
		{"v6 payload length beyond bytes", v6[:59], packet.LinkIP, packet.ErrTruncated, packet.LayerIPv6},
		{"v6 TCP truncated by payload length", mod(v6, func(b []byte) { b[5] = 19 }), packet.LinkIP, packet.ErrTruncated, packet.LayerTCP},
		{"v6 UDP", mod(v6, func(b []byte) { b[6] = 17 }), packet.LinkIP, packet.ErrNotTCP, packet.LayerIPv6},
		{"v6 no next header", mod(v6, func(b []byte) { b[6] = 59 }), packet.LinkIP, packet.ErrNotTCP, packet.LayerIPv6},
		{"v6 fragment", rawV6(44, []byte{6, 0, 0, 0, 0, 0, 0, 1}), packet.LinkIP, packet.ErrFragment, packet.LayerIPv6},
		{"v6 atomic fragment after HBH", rawV6(0, append(hbh(44), 6, 0, 0, 0, 0, 0, 0, 0)), packet.LinkIP, packet.ErrFragment, packet.LayerIPv6},
		{"v6 ESP", rawV6(50, make([]byte, 8)), packet.LinkIP, packet.ErrExtHeader, packet.LayerIPv6},
		{"v6 second hop-by-hop", rawV6(0, append(hbh(0), hbh(6)...)), packet.LinkIP, packet.ErrExtHeader, packet.LayerIPv6},
		{"v6 hop-by-hop after dstopts", rawV6(60, append(hbh(0), hbh(6)...)), packet.LinkIP, packet.ErrExtHeader, packet.LayerIPv6},
		{"v6 eight extension headers, then UDP", rawV6(60, []byte(strings.Repeat(string(hbh(60)), 7)+string(hbh(17)))), packet.LinkIP, packet.ErrNotTCP, packet.LayerIPv6},
		{"v6 nine extension headers", rawV6(60, []byte(strings.Repeat(string(hbh(60)), 8)+string(hbh(6)))), packet.LinkIP, packet.ErrExtHeader, packet.LayerIPv6},
		{"v6 extension header past payload", rawV6(60, []byte{6, 3, 0, 0, 0, 0, 0, 0}), packet.LinkIP, packet.ErrTruncated, packet.LayerIPv6},
		{"v6 extension header, one byte left", mod(rawV6(60, nil), func(b []byte) { b[5] = 1 }), packet.LinkIP, packet.ErrTruncated, packet.LayerIPv6},
		{"v6 AH past payload", rawV6(51, []byte{6, 9, 0, 0, 0, 0, 0, 0}), packet.LinkIP, packet.ErrTruncated, packet.LayerIPv6},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p packet.Packet
			err := p.Decode(c.b, c.link)
			if !errors.Is(err, c.want) {
				t.Fatalf("Decode = %v, want %v", err, c.want)
			}
			var pe *packet.Error
			if !errors.As(err, &pe) || pe.Layer != c.layer {
				t.Fatalf("Decode = %v, want layer %v", err, c.layer)
			}
			if !strings.HasPrefix(err.Error(), "packet: "+c.layer.String()+": ") {
				t.Errorf("message %q", err)
			}
			if p.Valid() || p.Bytes() != nil || p.Payload() != nil || p.Segment() != nil || p.IsSYN() {
				t.Error("a failed Decode left the packet usable")
			}
			if _, err := packet.AppendSYNACK(nil, &p, 1, &packet.Offer{}); !errors.Is(err, packet.ErrNotDecoded) {
				t.Errorf("AppendSYNACK after a failed Decode: %v", err)
			}
		})
	}
}

// A fragment or a UDP packet still has its addresses filled in.
func TestDecodeErrorKeepsEarlierLayers(t *testing.T) {
	v4 := rawV4(nil, nil)
	v4[6] = 0x20
	var p packet.Packet
	if err := p.Decode(v4, packet.LinkIP); !errors.Is(err, packet.ErrFragment) {
		t.Fatal(err)
	}
	if p.Version != 4 || p.Src != netip.MustParseAddr("192.0.2.1") || p.Dst != netip.MustParseAddr("198.51.100.7") || p.IPFlags != packet.IPv4MoreFragments {
		t.Fatalf("fields: %+v", p)
	}
	if p.SrcPort != 0 || p.Seq != 0 {
		t.Fatal("TCP fields of a fragment were read")
	}
}

func TestDecodeV4(t *testing.T) {
	payload := []byte("hello")
	b := rawV4([]byte{2, 4, 5, 180, 1, 3, 3, 7}, payload)
	b[1] = 0xb8
	binary.BigEndian.PutUint16(b[4:], 0xbeef)
	padded := ethFrame(0x0800, 0, append(b, make([]byte, 6)...)) // Ethernet padding
	var p packet.Packet
	if err := p.Decode(padded, packet.LinkEthernet); err != nil {
		t.Fatal(err)
	}
	if p.Link != packet.LinkEthernet || p.EthDst != [6]byte{0, 1, 2, 3, 4, 5} || p.EthSrc != [6]byte{6, 7, 8, 9, 10, 11} || p.EtherType != 0x0800 {
		t.Errorf("ethernet: %v %v %#x", p.EthDst, p.EthSrc, p.EtherType)
	}
	if p.Version != 4 || p.TOS != 0xb8 || p.ID != 0xbeef || p.IPFlags != packet.IPv4DontFragment || p.TTL != 64 || p.Protocol != 6 {
		t.Errorf("ipv4: %+v", p)
	}
	if p.SrcAddrPort() != netip.MustParseAddrPort("192.0.2.1:12345") || p.DstAddrPort() != netip.MustParseAddrPort("198.51.100.7:80") {
		t.Errorf("endpoints %v %v", p.SrcAddrPort(), p.DstAddrPort())
	}
	if p.Seq != 1000 || p.Flags != packet.FlagSYN || p.Window != 64240 || p.DataOffset != 7 || !p.IsSYN() || p.SegmentLen() != 1+5 {
		t.Errorf("tcp: %+v", p)
	}
	if p.IPOffset != 14 || p.TCPOffset != 34 || p.PayloadOffset != 34+28 || p.End != 14+len(b) {
		t.Errorf("offsets %d %d %d %d", p.IPOffset, p.TCPOffset, p.PayloadOffset, p.End)
	}
	if string(p.Payload()) != "hello" || len(p.Bytes()) != 14+len(b) || len(p.LinkHeader()) != 14 || len(p.IPHeader()) != 20 ||
		len(p.TCPHeader()) != 28 || len(p.IP()) != len(b) || len(p.Segment()) != 28+5 {
		t.Error("accessors")
	}
	want := packet.Options{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, WScaleRaw: 7}
	if p.Options != want {
		t.Errorf("options %+v", p.Options)
	}
}

func TestDecodeV4WithOptionsAndVLAN(t *testing.T) {
	b := rawV4(nil, nil)
	// IHL 7: an 8-byte IP option block (NOP NOP, a router-alert, EOL).
	ip := append(append([]byte{}, b[:20]...), 1, 1, 0x94, 4, 0, 0, 0, 0)
	ip = append(ip, b[20:]...)
	ip[0] = 0x47
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	var p packet.Packet
	if err := p.Decode(ethFrame(0x0800, 2, ip), packet.LinkEthernet); err != nil {
		t.Fatal(err)
	}
	if p.VLANTags != 2 || p.IPOffset != 22 || p.TCPOffset != 22+28 || len(p.IPHeader()) != 28 || p.DstPort != 80 {
		t.Fatalf("%+v", p)
	}
}

func TestDecodeV6ExtensionHeaders(t *testing.T) {
	ext := []byte{
		43, 0, 1, 4, 0, 0, 0, 0, // hop-by-hop -> routing, PadN
		60, 0, 4, 0, 0, 0, 0, 0, // routing (type 4, segments left 0) -> dstopts
		51, 1, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // dstopts (16 bytes) -> AH
		6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, // AH: length 1 -> (1+2)*4 = 12 bytes -> TCP
	}
	ext[17] = 1 // dstopts length 1: 16 bytes
	ext[18], ext[19] = 1, 12
	b := rawV6(0, ext)
	b[1] = 0x2a // traffic class 0x02, flow label 0xa....
	b[2], b[3] = 0xbc, 0xde
	var p packet.Packet
	if err := p.Decode(b, packet.LinkIP); err != nil {
		t.Fatal(err)
	}
	if p.ExtHeaders != 4 || p.TCPOffset != 40+len(ext) || p.Protocol != 6 || p.SrcPort != 40000 || p.Seq != 123456789 {
		t.Fatalf("%+v", p)
	}
	if p.TOS != 0x02 || p.FlowLabel != 0xabcde || p.TTL != 64 || !p.Is6() {
		t.Fatalf("tc %#x flow %#x", p.TOS, p.FlowLabel)
	}
	if p.Src != netip.MustParseAddr("2001:db8::1") || len(p.IPHeader()) != 40+len(ext) {
		t.Fatal(p.Src)
	}
}

func TestOptionsParser(t *testing.T) {
	ts := "080a0102030405060708"
	for _, c := range []struct {
		name string
		opts string // hex
		want packet.Options
	}{
		{"none", "", packet.Options{}},
		{"linux SYN", "020405b4" + "0402" + ts + "01030307",
			packet.Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSval: 0x01020304, TSecr: 0x05060708, HasWScale: true, WScale: 7, WScaleRaw: 7}},
		{"nops only", "01010101", packet.Options{}},
		{"EOL stops", "00" + "020405b4", packet.Options{}},
		{"EOL after MSS", "020405b4" + "00" + "030307", packet.Options{HasMSS: true, MSS: 1460}},
		{"MSS length 3 skipped", "020305" + "020405b4", packet.Options{HasMSS: true, MSS: 1460}},
		{"MSS length 5 skipped", "0205050505" + "01030308", packet.Options{HasWScale: true, WScale: 8, WScaleRaw: 8}},
		{"MSS zero", "02040000", packet.Options{HasMSS: true}},
		{"wscale 14", "0103030e", packet.Options{HasWScale: true, WScale: 14, WScaleRaw: 14}},
		{"wscale 15 clamped", "0103030f", packet.Options{HasWScale: true, WScale: 14, WScaleRaw: 15}},
		{"wscale 255 clamped", "0303ff", packet.Options{HasWScale: true, WScale: 14, WScaleRaw: 255}},
		{"wscale length 4 skipped", "03040700", packet.Options{}},
		{"timestamp length 8 skipped", "0808010203040506", packet.Options{}},
		{"sack-perm length 3 skipped", "040300" + "0402", packet.Options{SACKPermitted: true}},
		{"later MSS wins", "02040400" + "020405b4", packet.Options{HasMSS: true, MSS: 1460}},
		{"unknown skipped by length", "1e06aabbccdd" + "020405b4", packet.Options{HasMSS: true, MSS: 1460}},
		{"length 0 stops", "020405b4" + "1e00" + "01030307", packet.Options{HasMSS: true, MSS: 1460, Malformed: true}},
		{"length 1 stops", "1e01" + "020405b4", packet.Options{Malformed: true}},
		{"length past end stops", "020405b4" + "1e09" + "01030307", packet.Options{HasMSS: true, MSS: 1460, Malformed: true}},
		{"MSS past end stops", "0101" + "0209", packet.Options{Malformed: true}},
		{"lone trailing byte", "020405b4" + "010101" + "1e", packet.Options{HasMSS: true, MSS: 1460, Malformed: true}},
		{"trailing NOP fine", "020405b4" + "01", packet.Options{HasMSS: true, MSS: 1460}},
		{"one SACK block", "0101050a" + "0000000100000002",
			packet.Options{NumSACK: 1, SACK: [4]packet.SACKBlock{{1, 2}}}},
		{"four SACK blocks", "0101" + "0522" + "00000001000000020000000300000004000000050000000600000007" + "00000008",
			packet.Options{NumSACK: 4, SACK: [4]packet.SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}}},
		{"SACK bad length ignored", "050c" + "000000010000000200000003", packet.Options{}},
		{"SACK empty ignored", "0502" + "020405b4", packet.Options{HasMSS: true, MSS: 1460}},
		{"40 bytes", "020405b4" + "0101" + ts + "0402" + "01030307" + "1e0a0000000000000000" + "0101",
			packet.Options{HasMSS: true, MSS: 1460, HasTS: true, TSval: 0x01020304, TSecr: 0x05060708, SACKPermitted: true, HasWScale: true, WScale: 7, WScaleRaw: 7}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := hex.DecodeString(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(o) > 40 {
				t.Fatalf("%d option bytes", len(o))
			}
			b := rawV4(o, nil) // padded with EOL
			var p packet.Packet
			if err := p.Decode(b, packet.LinkIP); err != nil {
				t.Fatal(err)
			}
			if p.Options != c.want {
				t.Fatalf("options\n got %+v\nwant %+v", p.Options, c.want)
			}
		})
	}
}

func TestVerifyChecksums(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		src, dst := "192.0.2.1:1", "192.0.2.2:2"
		if v6 {
			src, dst = "[2001:db8::1]:1", "[2001:db8::2]:2"
		}
		s := packet.Segment{Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), Flags: packet.FlagSYN, Payload: []byte{1, 2, 3}}
		b, err := packet.AppendSegment(nil, nil, &s)
		if err != nil {
			t.Fatal(err)
		}
		var p packet.Packet
		if err := p.Decode(b, packet.LinkIP); err != nil {
			t.Fatal(err)
		}
		if err := p.VerifyChecksums(); err != nil {
			t.Fatalf("v6=%v: %v", v6, err)
		}
		for i := range b {
			if !v6 && (i == 8) { // TTL flips are caught by the IPv4 header checksum
				continue
			}
			if v6 && (i < 4 || i == 7) { // not covered by any checksum
				continue
			}
			c := mod(b, func(b []byte) { b[i] ^= 0x10 })
			if err := p.Decode(c, packet.LinkIP); err != nil {
				continue // a length or version field
			}
			err := p.VerifyChecksums()
			if !errors.Is(err, packet.ErrChecksum) {
				t.Errorf("v6=%v byte %d flipped: VerifyChecksums = %v", v6, i, err)
			}
		}
	}
	var p packet.Packet
	if err := p.VerifyChecksums(); !errors.Is(err, packet.ErrNotDecoded) {
		t.Fatal(err)
	}
}

func TestFlagsString(t *testing.T) {
	for f, want := range map[packet.TCPFlags]string{
		0: "none", packet.FlagSYN | packet.FlagACK: "SYN|ACK", packet.FlagRST: "RST",
		0xff: "SYN|ACK|FIN|RST|PSH|URG|ECE|CWR", packet.FlagSYN | packet.FlagECE | packet.FlagCWR: "SYN|ECE|CWR",
	} {
		if got := f.String(); got != want {
			t.Errorf("%#x: %q, want %q", uint8(f), got, want)
		}
	}
}
