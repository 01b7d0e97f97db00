package packet_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// gopacket is the referee: whatever we build it decodes to the same fields,
// with checksums it agrees with; whatever it builds we decode to the fields
// it decodes.

// compareWithGopacket decodes b with both decoders and requires the same
// fields, options (as the kernel's parser reads gopacket's option list) and
// checksum verdicts.
func compareWithGopacket(t *testing.T, g *gp, b []byte, link packet.LinkType) *packet.Packet {
	t.Helper()
	var p packet.Packet
	if err := p.Decode(b, link); err != nil {
		t.Fatalf("Decode: %v\n%x", err, b)
	}
	if err := g.decode(b, link); err != nil {
		t.Fatalf("gopacket: %v\n%x", err, b)
	}
	if !g.has(layers.LayerTypeTCP) {
		t.Fatalf("gopacket found no TCP layer in %x (layers %v)", b, g.types)
	}
	if link == packet.LinkEthernet {
		et := g.eth.EthernetType
		if g.has(layers.LayerTypeDot1Q) {
			et = g.dot1q.Type
		}
		if !bytes.Equal(g.eth.DstMAC, p.EthDst[:]) || !bytes.Equal(g.eth.SrcMAC, p.EthSrc[:]) || uint16(et) != p.EtherType {
			t.Errorf("ethernet: gopacket %v %v %v, ours %x %x %#x", g.eth.DstMAC, g.eth.SrcMAC, et, p.EthDst, p.EthSrc, p.EtherType)
		}
	}
	var nl gopacket.NetworkLayer
	var csumOK bool
	if p.Version == 4 {
		ip := &g.ip4
		nl = ip
		if ip.Version != 4 || int(ip.IHL)*4 != p.TCPOffset-p.IPOffset || ip.TOS != p.TOS || int(ip.Length) != p.End-p.IPOffset ||
			ip.Id != p.ID || uint8(ip.Flags) != p.IPFlags || ip.FragOffset != p.FragOffset || ip.TTL != p.TTL ||
			uint8(ip.Protocol) != p.Protocol || ip.Checksum != p.IPChecksum ||
			addrOf(t, ip.SrcIP) != p.Src || addrOf(t, ip.DstIP) != p.Dst {
			t.Errorf("ipv4: gopacket %+v\nours %+v", ip, p)
		}
		csumOK = refSum(b[p.IPOffset:p.TCPOffset], 0) == 0xffff
	} else {
		ip := &g.ip6
		nl = ip
		if ip.Version != 6 || ip.TrafficClass != p.TOS || ip.FlowLabel != p.FlowLabel || int(ip.Length) != p.End-p.IPOffset-40 ||
			ip.HopLimit != p.TTL || addrOf(t, ip.SrcIP) != p.Src || addrOf(t, ip.DstIP) != p.Dst {
			t.Errorf("ipv6: gopacket %+v\nours %+v", ip, p)
		}
		if (ip.NextHeader == layers.IPProtocolIPv6HopByHop) != (p.ExtHeaders > 0) {
			t.Errorf("ipv6 next header %v, ours walked %d extension headers", ip.NextHeader, p.ExtHeaders)
		}
		csumOK = true
	}
	tcp := &g.tcp
	if err := tcp.SetNetworkLayerForChecksum(nl); err != nil {
		t.Fatal(err)
	}
	if tcp.SrcPort != layers.TCPPort(p.SrcPort) || tcp.DstPort != layers.TCPPort(p.DstPort) || tcp.Seq != p.Seq || tcp.Ack != p.Ack ||
		tcp.DataOffset != p.DataOffset || tcp.Window != p.Window || tcp.Checksum != p.TCPChecksum || tcp.Urgent != p.Urgent ||
		tcp.NS != (p.Reserved&1 == 1) || gpFlags(tcp) != p.Flags {
		t.Errorf("tcp: gopacket %+v\nours %+v", tcp, p)
	}
	if o := gpOptions(tcp.Options); o != withoutMalformed(p.Options) {
		t.Errorf("options: gopacket %+v\nours %+v", o, p.Options)
	}
	if !bytes.Equal(tcp.Payload, p.Payload()) {
		t.Errorf("payload: gopacket %x, ours %x", tcp.Payload, p.Payload())
	}
	gc, err := tcp.ComputeChecksum()
	if err != nil {
		t.Fatal(err)
	}
	csumOK = csumOK && gc == 0
	if ours := p.VerifyChecksums() == nil; ours != csumOK {
		t.Errorf("checksums: gopacket says valid=%v, ours %v", csumOK, ours)
	}
	return &p
}

func withoutMalformed(o packet.Options) packet.Options { o.Malformed = false; return o }

func gpFlags(t *layers.TCP) packet.TCPFlags {
	var f packet.TCPFlags
	for _, x := range []struct {
		set  bool
		flag packet.TCPFlags
	}{{t.FIN, packet.FlagFIN}, {t.SYN, packet.FlagSYN}, {t.RST, packet.FlagRST}, {t.PSH, packet.FlagPSH},
		{t.ACK, packet.FlagACK}, {t.URG, packet.FlagURG}, {t.ECE, packet.FlagECE}, {t.CWR, packet.FlagCWR}} {
		if x.set {
			f |= x.flag
		}
	}
	return f
}

// reserialize serialises what gopacket decoded, with lengths and checksums
// recomputed by gopacket.
func (g *gp) reserialize(t *testing.T) []byte {
	t.Helper()
	var ls []gopacket.SerializableLayer
	for _, lt := range g.types {
		switch lt {
		case layers.LayerTypeEthernet:
			ls = append(ls, &g.eth)
		case layers.LayerTypeDot1Q:
			ls = append(ls, &g.dot1q)
		case layers.LayerTypeIPv4:
			ls = append(ls, &g.ip4)
		case layers.LayerTypeIPv6:
			ls = append(ls, &g.ip6)
		case layers.LayerTypeTCP:
			ls = append(ls, &g.tcp)
		}
	}
	ls = append(ls, gopacket.Payload(g.tcp.Payload))
	return serialize(t, ls...)
}

// Every packet the builders make, gopacket decodes to the fields asked for,
// and serialises back (computing lengths and both checksums itself) to the
// same bytes.
func TestGopacketDecodesOurs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	g := newGP()
	n := 4000
	if testing.Short() {
		n = 400
	}
	for i := range n {
		v6, withEth := i%2 == 1, i%4 >= 2
		s := randSegment(r, v6)
		var eth *packet.Ethernet
		link := packet.LinkIP
		if withEth {
			eth = &packet.Ethernet{Dst: randMAC(r), Src: randMAC(r)}
			link = packet.LinkEthernet
		}
		b, err := packet.AppendSegment(nil, eth, &s)
		if err != nil {
			t.Fatal(err)
		}
		p := compareWithGopacket(t, g, b, link)
		if p.VerifyChecksums() != nil {
			t.Fatalf("our own checksum does not verify: %x", b)
		}
		checkRoundTrip(t, p, eth, &s)
		again := g.reserialize(t)
		// gopacket pads Ethernet frames to the 60-byte minimum.
		if withEth && len(b) < 60 {
			b = append(b, make([]byte, 60-len(b))...)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("gopacket re-serialised our packet differently\nours     %x\ngopacket %x", b, again)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
}

// checkRoundTrip requires that decoding what s built gives s back.
func checkRoundTrip(t testing.TB, p *packet.Packet, eth *packet.Ethernet, s *packet.Segment) {
	t.Helper()
	ttl := s.TTL
	if ttl == 0 {
		ttl = packet.DefaultTTL
	}
	var ipFlags uint8
	if s.DF {
		ipFlags = packet.IPv4DontFragment
	}
	ok := p.SrcAddrPort() == s.Src && p.DstAddrPort() == s.Dst && p.Seq == s.Seq && p.Ack == s.Ack && p.Flags == s.Flags &&
		p.Window == s.Window && p.Urgent == s.Urgent && p.Options == wantOptions(s.Options) && bytes.Equal(p.Payload(), s.Payload) &&
		p.TTL == ttl && p.TOS == s.TOS && p.Reserved == 0 && p.Protocol == packet.ProtoTCP
	if s.Src.Addr().Is4() {
		ok = ok && p.Version == 4 && p.ID == s.ID && p.IPFlags == ipFlags && p.FragOffset == 0
	} else {
		ok = ok && p.Version == 6 && p.FlowLabel == s.FlowLabel&0xfffff && p.ExtHeaders == 0
	}
	if eth != nil {
		ok = ok && p.Link == packet.LinkEthernet && p.EthDst == eth.Dst && p.EthSrc == eth.Src
	}
	if !ok {
		t.Fatalf("round trip\nbuilt   %+v\ndecoded %+v", s, p)
	}
}

// randGopacketFrame serialises a random TCP packet with gopacket: IPv4 with
// random IP options or IPv6 with or without a hop-by-hop header, random TCP
// options (unknown kinds, option lengths synproxy skips, window scales above
// 14, SACK blocks, EOL and padding), behind Ethernet (maybe VLAN-tagged) or
// bare.
func randGopacketFrame(t testing.TB, r *rand.Rand, withEth bool) []byte {
	v6 := r.IntN(2) == 0
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(r.Uint32()), DstPort: layers.TCPPort(r.Uint32()), Seq: r.Uint32(), Ack: r.Uint32(),
		Window: uint16(r.Uint32()), Urgent: uint16(r.Uint32()),
		FIN: r.IntN(2) == 0, SYN: r.IntN(2) == 0, RST: r.IntN(2) == 0, PSH: r.IntN(2) == 0,
		ACK: r.IntN(2) == 0, URG: r.IntN(2) == 0, ECE: r.IntN(2) == 0, CWR: r.IntN(2) == 0, NS: r.IntN(2) == 0,
		Options: randGopacketOptions(r),
	}
	var ls []gopacket.SerializableLayer
	if withEth {
		eth := &layers.Ethernet{SrcMAC: mac(randMAC(r)), DstMAC: mac(randMAC(r)), EthernetType: layers.EthernetTypeIPv4}
		if v6 {
			eth.EthernetType = layers.EthernetTypeIPv6
		}
		ls = append(ls, eth)
		if r.IntN(3) == 0 {
			q := &layers.Dot1Q{VLANIdentifier: uint16(r.IntN(4095)), Type: eth.EthernetType}
			eth.EthernetType = layers.EthernetTypeDot1Q
			ls = append(ls, q)
		}
	}
	if v6 {
		ip := &layers.IPv6{Version: 6, TrafficClass: uint8(r.Uint32()), FlowLabel: r.Uint32() & 0xfffff, NextHeader: layers.IPProtocolTCP,
			HopLimit: uint8(r.Uint32()), SrcIP: ipOf(randAddrPort(r, true).Addr()), DstIP: ipOf(randAddrPort(r, true).Addr())}
		if r.IntN(2) == 0 {
			hbh := &layers.IPv6HopByHop{}
			hbh.NextHeader = layers.IPProtocolTCP
			// Option sizes that fill a multiple of 8 bytes: gopacket does
			// not pad the header itself.
			switch r.IntN(3) {
			case 0:
				hbh.Options = append(hbh.Options, &layers.IPv6HopByHopOption{OptionType: 5, OptionData: []byte{0, 0}}, // router alert
					&layers.IPv6HopByHopOption{OptionType: 0x1e, OptionData: []byte{}})
			case 1:
				hbh.Options = append(hbh.Options, &layers.IPv6HopByHopOption{OptionType: 0x1e, OptionData: make([]byte, 4)})
			default:
				a := r.IntN(11)
				hbh.Options = append(hbh.Options, &layers.IPv6HopByHopOption{OptionType: 0x1e, OptionData: make([]byte, a)},
					&layers.IPv6HopByHopOption{OptionType: 0x3e, OptionData: make([]byte, 10-a)})
			}
			ip.HopByHop = hbh
			ip.NextHeader = layers.IPProtocolIPv6HopByHop
		}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip)
	} else {
		ip := &layers.IPv4{Version: 4, TOS: uint8(r.Uint32()), Id: uint16(r.Uint32()), TTL: uint8(r.Uint32()), Protocol: layers.IPProtocolTCP,
			SrcIP: ipOf(randAddrPort(r, false).Addr()), DstIP: ipOf(randAddrPort(r, false).Addr())}
		if r.IntN(2) == 0 {
			ip.Flags = layers.IPv4DontFragment
		}
		if r.IntN(8) == 0 {
			ip.Flags |= layers.IPv4EvilBit
		}
		for range r.IntN(4) {
			if r.IntN(2) == 0 {
				ip.Options = append(ip.Options, layers.IPv4Option{OptionType: 1, OptionLength: 1})
			} else {
				ip.Options = append(ip.Options, layers.IPv4Option{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}})
			}
		}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip)
	}
	ls = append(ls, tcp)
	if r.IntN(2) == 0 {
		payload := make([]byte, r.IntN(200))
		for i := range payload {
			payload[i] = byte(r.Uint32())
		}
		ls = append(ls, gopacket.Payload(payload))
	}
	return serialize(t, ls...)
}

func mac(m [6]byte) []byte { return m[:] }

func randGopacketOptions(r *rand.Rand) []layers.TCPOption {
	for {
		var opts []layers.TCPOption
		n := 0
		for range r.IntN(8) {
			var o layers.TCPOption
			switch r.IntN(10) {
			case 0:
				o = layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1}
			case 1:
				o = layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: be16b(uint16(r.Uint32()))}
			case 2:
				o = layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionData: []byte{byte(r.IntN(20))}}
			case 3:
				o = layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted}
			case 4:
				d := make([]byte, 8)
				binary.BigEndian.PutUint64(d, r.Uint64())
				o = layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionData: d}
			case 5:
				d := make([]byte, 8*(1+r.IntN(3)))
				for i := range d {
					d[i] = byte(r.Uint32())
				}
				o = layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionData: d}
			case 6: // unknown kind
				o = layers.TCPOption{OptionType: layers.TCPOptionKind(30 + r.IntN(200)), OptionData: make([]byte, r.IntN(8))}
			case 7: // known kind, wrong length: skipped
				k := []layers.TCPOptionKind{2, 3, 4, 8}[r.IntN(4)]
				o = layers.TCPOption{OptionType: k, OptionData: make([]byte, []int{1, 3, 5, 9}[r.IntN(4)])}
			case 8:
				o = layers.TCPOption{OptionType: layers.TCPOptionKindEndList, OptionLength: 1}
			default:
				o = layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1}
			}
			if o.OptionType > 1 {
				o.OptionLength = uint8(2 + len(o.OptionData))
				n += int(o.OptionLength)
			} else {
				n++
			}
			opts = append(opts, o)
			if o.OptionType == layers.TCPOptionKindEndList {
				break
			}
		}
		if n <= 40 {
			return opts
		}
	}
}

func be16b(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// Packets gopacket builds, we decode to the fields gopacket decodes.
func TestOursDecodesGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	g := newGP()
	n := 4000
	if testing.Short() {
		n = 400
	}
	for i := range n {
		withEth := i%2 == 0
		link := packet.LinkIP
		if withEth {
			link = packet.LinkEthernet
		}
		b := randGopacketFrame(t, r, withEth)
		p := compareWithGopacket(t, g, b, link)
		if p.VerifyChecksums() != nil {
			t.Fatalf("gopacket's checksums do not verify: %x", b)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
}

// The committed fixture of gopacket-serialised frames decodes as gopacket
// decodes it.
func TestGopacketFixture(t *testing.T) {
	const name = "gopacket.pcap"
	if *update {
		r := rand.New(rand.NewPCG(11, 12))
		var frames [][]byte
		for range 300 {
			frames = append(frames, randGopacketFrame(t, r, true))
		}
		writePcap(t, name, layers.LinkTypeEthernet, frames)
	}
	lt, frames := readPcap(t, name)
	if lt != layers.LinkTypeEthernet || len(frames) != 300 {
		t.Fatalf("link type %v, %d frames", lt, len(frames))
	}
	g := newGP()
	for _, f := range frames {
		compareWithGopacket(t, g, f.data, packet.LinkEthernet)
	}
}

// handshakeFrames is a complete synproxy exchange for both families, built
// with our builders and a known key: client SYN, our SYN-ACK, the client's
// ACK, the SYN to the backend, the backend's SYN-ACK, our ACK to it, and a
// RST answering a stray ACK.
func handshakeFrames(t testing.TB) [][]byte {
	key, err := cookie.ParseKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	if err != nil {
		t.Fatal(err)
	}
	clientMAC, proxyMAC := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
	var frames [][]byte
	add := func(eth *packet.Ethernet, s *packet.Segment) []byte {
		b, err := packet.AppendSegment(nil, eth, s)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, b)
		return b
	}
	for _, pair := range [][2]string{{"192.0.2.1:12345", "198.51.100.7:80"}, {"[2001:db8::1]:40000", "[2001:db8::2]:443"}} {
		client, server := netip.MustParseAddrPort(pair[0]), netip.MustParseAddrPort(pair[1])
		toProxy := &packet.Ethernet{Dst: proxyMAC, Src: clientMAC}
		synOpts := packet.Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSval: 0xaabbccdd, HasWScale: true, WScale: 7}
		synSeg := packet.Segment{Src: client, Dst: server, Seq: 1000, Flags: packet.FlagSYN, Window: 64240, Options: synOpts, DF: true, ID: 0x4242}
		var syn packet.Packet
		if err := syn.Decode(add(toProxy, &synSeg), packet.LinkEthernet); err != nil {
			t.Fatal(err)
		}
		o := fullRule.Offer(&syn)
		o.Options.TSval = cookie.TSval(0x12345678, cookie.TSOptions(o.TS))
		isn, err := key.Encode(cookie.Tuple{Client: client, Server: server}, syn.Seq, o.CookieMSS, 5)
		if err != nil {
			t.Fatal(err)
		}
		sa, err := packet.AppendSYNACK(nil, &syn, isn, &o)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, sa)
		ackSeg := packet.PureACK(client, server, 1001, isn+1, 502)
		ackSeg.Options = packet.Options{HasTS: true, TSval: 0xaabbccde, TSecr: o.Options.TSval}
		var ack packet.Packet
		if err := ack.Decode(add(toProxy, &ackSeg), packet.LinkEthernet); err != nil {
			t.Fatal(err)
		}
		bs := packet.BackendSYN(&ack, 1460)
		add(nil, &bs)
		bsa := packet.Segment{Src: server, Dst: client, Seq: 777, Ack: 1001, Flags: packet.FlagSYN | packet.FlagACK, Window: 65160, DF: true,
			Options: packet.Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSval: 5555, TSecr: 0xaabbccde, HasWScale: true, WScale: 7}}
		add(nil, &bsa)
		ba := packet.PureACK(client, server, 1001, 778, 502)
		ba.Options = packet.Options{HasTS: true, TSval: 0xaabbccde, TSecr: 5555}
		add(nil, &ba)
		var stray packet.Packet
		if err := stray.Decode(frames[len(frames)-1], packet.LinkIP); err != nil {
			t.Fatal(err)
		}
		rst := packet.RST(&stray)
		add(&packet.Ethernet{Dst: clientMAC, Src: proxyMAC}, &rst)
	}
	return frames
}

// The committed handshake fixture is what the builders make today (so a
// change in their output is seen), and gopacket decodes every frame of it.
func TestHandshakeFixture(t *testing.T) {
	const name = "handshakes.pcap"
	frames := handshakeFrames(t)
	// The fixture stores every frame behind Ethernet; bare IP packets get
	// a placeholder header.
	var eth [][]byte
	for _, f := range frames {
		if f[0]>>4 == 4 || f[0]>>4 == 6 {
			h := []byte{2, 0, 0, 0, 0, 3, 2, 0, 0, 0, 0, 2, 0x08, 0x00}
			if f[0]>>4 == 6 {
				h[12], h[13] = 0x86, 0xdd
			}
			f = append(h, f...)
		}
		eth = append(eth, f)
	}
	if *update {
		writePcap(t, name, layers.LinkTypeEthernet, eth)
	}
	lt, got := readPcap(t, name)
	if lt != layers.LinkTypeEthernet || len(got) != len(eth) {
		t.Fatalf("link type %v, %d frames, want %d", lt, len(got), len(eth))
	}
	g := newGP()
	for i, f := range got {
		if !bytes.Equal(f.data, eth[i]) {
			t.Errorf("frame %d differs from what the builders make now\nfixture %x\nnow     %x", i, f.data, eth[i])
		}
		p := compareWithGopacket(t, g, f.data, packet.LinkEthernet)
		if err := p.VerifyChecksums(); err != nil {
			t.Errorf("frame %d: %v", i, err)
		}
	}
}
