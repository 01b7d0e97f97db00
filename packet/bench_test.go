package packet_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// The benchmarks do one job two ways: parse a Linux-like client SYN (MSS,
// SACK-permitted, timestamps, window scale; bare IP as NFQUEUE delivers it),
// apply the synproxy rule "mss 1460 wscale 7 timestamp sack-perm", and build
// the SYN-ACK with a given ISN and TSval into a reused buffer — with this
// package, and with gopacket's DecodingLayerParser and SerializeLayers.
// TestBaselineSameBytes checks both produce the same bytes.

const (
	benchISN   = 0xf97a3928
	benchTSval = 0x12345657
)

var benchRule = packet.Rule{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, Timestamp: true, SACKPerm: true}

func benchSYN(tb testing.TB, v6 bool) []byte {
	s := packet.Segment{Src: netip.MustParseAddrPort("192.0.2.1:12345"), Dst: netip.MustParseAddrPort("198.51.100.7:80"),
		Seq: 1000, Flags: packet.FlagSYN, Window: 64240, DF: true, ID: 0x4242,
		Options: packet.Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSval: 0xaabbccdd, HasWScale: true, WScale: 7}}
	if v6 {
		s.Src = netip.MustParseAddrPort("[2001:db8::1]:40000")
		s.Dst = netip.MustParseAddrPort("[2001:db8::2]:443")
		s.ID, s.DF = 0, false
	}
	b, err := packet.AppendSegment(nil, nil, &s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// synToSynAck is the job done with this package.
func synToSynAck(p *packet.Packet, syn, buf []byte) ([]byte, error) {
	if err := p.Decode(syn, packet.LinkIP); err != nil {
		return nil, err
	}
	o := benchRule.Offer(p)
	o.Options.TSval = benchTSval
	return packet.AppendSYNACK(buf[:0], p, benchISN, &o)
}

// gopacketJob is the same job done with gopacket, reusing everything it can.
type gopacketJob struct {
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	decoded []gopacket.LayerType
	out4    layers.IPv4
	out6    layers.IPv6
	outTCP  layers.TCP
	opts    []layers.TCPOption
	mss, ts []byte
	ws      []byte
	buf     gopacket.SerializeBuffer
	serOpts gopacket.SerializeOptions
	parsed4 *gopacket.DecodingLayerParser
	parsed6 *gopacket.DecodingLayerParser
}

func newGopacketJob() *gopacketJob {
	j := &gopacketJob{decoded: make([]gopacket.LayerType, 0, 4), opts: make([]layers.TCPOption, 0, 8),
		mss: make([]byte, 2), ts: make([]byte, 8), ws: make([]byte, 1),
		buf: gopacket.NewSerializeBuffer(), serOpts: gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}}
	j.parsed4 = gopacket.NewDecodingLayerParser(layers.LayerTypeIPv4, &j.ip4, &j.tcp)
	j.parsed6 = gopacket.NewDecodingLayerParser(layers.LayerTypeIPv6, &j.ip6, &j.tcp)
	j.parsed4.IgnoreUnsupported = true
	j.parsed6.IgnoreUnsupported = true
	return j
}

func (j *gopacketJob) run(syn []byte) ([]byte, error) {
	v6 := len(syn) > 0 && syn[0]>>4 == 6
	dlp := j.parsed4
	if v6 {
		dlp = j.parsed6
	}
	if err := dlp.DecodeLayers(syn, &j.decoded); err != nil {
		return nil, err
	}
	var hasMSS, hasWS, sack, hasTS bool
	var tsval uint32
	for _, o := range j.tcp.Options {
		switch o.OptionType {
		case layers.TCPOptionKindMSS:
			hasMSS = o.OptionLength == 4
		case layers.TCPOptionKindWindowScale:
			hasWS = o.OptionLength == 3
		case layers.TCPOptionKindSACKPermitted:
			sack = o.OptionLength == 2
		case layers.TCPOptionKindTimestamps:
			if o.OptionLength == 10 {
				hasTS, tsval = true, binary.BigEndian.Uint32(o.OptionData)
			}
		}
	}
	t := &j.outTCP
	*t = layers.TCP{SrcPort: j.tcp.DstPort, DstPort: j.tcp.SrcPort, Seq: benchISN, Ack: j.tcp.Seq + 1, SYN: true, ACK: true}
	j.opts = j.opts[:0]
	if hasMSS {
		binary.BigEndian.PutUint16(j.mss, benchRule.MSS)
		j.opts = append(j.opts, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: j.mss})
	}
	if hasTS {
		if sack {
			j.opts = append(j.opts, layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2})
		} else {
			j.opts = append(j.opts, layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
				layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1})
		}
		binary.BigEndian.PutUint32(j.ts, benchTSval)
		binary.BigEndian.PutUint32(j.ts[4:], tsval)
		j.opts = append(j.opts, layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: j.ts})
		if hasWS {
			j.ws[0] = benchRule.WScale
			j.opts = append(j.opts, layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
				layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: j.ws})
		}
	}
	t.Options = j.opts
	var err error
	if v6 {
		j.out6 = layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64, SrcIP: j.ip6.DstIP, DstIP: j.ip6.SrcIP}
		t.SetNetworkLayerForChecksum(&j.out6)
		err = gopacket.SerializeLayers(j.buf, j.serOpts, &j.out6, t)
	} else {
		j.out4 = layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
			SrcIP: j.ip4.DstIP, DstIP: j.ip4.SrcIP}
		t.SetNetworkLayerForChecksum(&j.out4)
		err = gopacket.SerializeLayers(j.buf, j.serOpts, &j.out4, t)
	}
	return j.buf.Bytes(), err
}

// Both benchmark paths build the same SYN-ACK.
func TestBaselineSameBytes(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		syn := benchSYN(t, v6)
		var p packet.Packet
		ours, err := synToSynAck(&p, syn, make([]byte, 0, 128))
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := newGopacketJob().run(syn)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := gopacketNewPacketJob(syn)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) || !bytes.Equal(ours, plain) {
			t.Fatalf("v6=%v\nours     %x\ngopacket %x\nNewPacket %x", v6, ours, theirs, plain)
		}
	}
}

var sink []byte

func benchOurs(b *testing.B, v6 bool) {
	syn := benchSYN(b, v6)
	var p packet.Packet
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		out, err := synToSynAck(&p, syn, buf)
		if err != nil {
			b.Fatal(err)
		}
		sink = out
	}
}

func benchGopacket(b *testing.B, v6 bool) {
	syn := benchSYN(b, v6)
	j := newGopacketJob()
	b.ReportAllocs()
	for b.Loop() {
		out, err := j.run(syn)
		if err != nil {
			b.Fatal(err)
		}
		sink = out
	}
}

func BenchmarkSynToSynAckV4(b *testing.B)         { benchOurs(b, false) }
func BenchmarkSynToSynAckV6(b *testing.B)         { benchOurs(b, true) }
func BenchmarkSynToSynAckGopacketV4(b *testing.B) { benchGopacket(b, false) }
func BenchmarkSynToSynAckGopacketV6(b *testing.B) { benchGopacket(b, true) }

// The same job with gopacket's convenience API, as much code uses it: a
// gopacket.NewPacket per SYN and a fresh SerializeBuffer per SYN-ACK. Not the
// baseline of the ratio (the DecodingLayerParser path above is); it shows
// what the reuse buys.
func benchGopacketNewPacket(b *testing.B, v6 bool) {
	syn := benchSYN(b, v6)
	b.ReportAllocs()
	for b.Loop() {
		out, err := gopacketNewPacketJob(syn)
		if err != nil {
			b.Fatal(err)
		}
		sink = out
	}
}

func gopacketNewPacketJob(syn []byte) ([]byte, error) {
	first := layers.LayerTypeIPv4
	if syn[0]>>4 == 6 {
		first = layers.LayerTypeIPv6
	}
	pk := gopacket.NewPacket(syn, first, gopacket.NoCopy)
	in, _ := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if in == nil {
		return nil, errors.New("no TCP layer")
	}
	t := &layers.TCP{SrcPort: in.DstPort, DstPort: in.SrcPort, Seq: benchISN, Ack: in.Seq + 1, SYN: true, ACK: true}
	var tsval uint32
	var hasMSS, hasTS, hasWS, sack bool
	for _, o := range in.Options {
		switch o.OptionType {
		case layers.TCPOptionKindMSS:
			hasMSS = o.OptionLength == 4
		case layers.TCPOptionKindWindowScale:
			hasWS = o.OptionLength == 3
		case layers.TCPOptionKindSACKPermitted:
			sack = o.OptionLength == 2
		case layers.TCPOptionKindTimestamps:
			if o.OptionLength == 10 {
				hasTS, tsval = true, binary.BigEndian.Uint32(o.OptionData)
			}
		}
	}
	if hasMSS {
		t.Options = append(t.Options, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: be16b(benchRule.MSS)})
	}
	if hasTS {
		if sack {
			t.Options = append(t.Options, layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2})
		} else {
			t.Options = append(t.Options, layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
				layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1})
		}
		ts := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, benchTSval), tsval)
		t.Options = append(t.Options, layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: ts})
		if hasWS {
			t.Options = append(t.Options, layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
				layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{benchRule.WScale}})
		}
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	var err error
	if ip, ok := pk.NetworkLayer().(*layers.IPv4); ok {
		out := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP, SrcIP: ip.DstIP, DstIP: ip.SrcIP}
		t.SetNetworkLayerForChecksum(out)
		err = gopacket.SerializeLayers(buf, opts, out, t)
	} else {
		ip := pk.NetworkLayer().(*layers.IPv6)
		out := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64, SrcIP: ip.DstIP, DstIP: ip.SrcIP}
		t.SetNetworkLayerForChecksum(out)
		err = gopacket.SerializeLayers(buf, opts, out, t)
	}
	return buf.Bytes(), err
}

func BenchmarkSynToSynAckGopacketNewPacketV4(b *testing.B) { benchGopacketNewPacket(b, false) }
func BenchmarkSynToSynAckGopacketNewPacketV6(b *testing.B) { benchGopacketNewPacket(b, true) }

func BenchmarkDecode(b *testing.B) {
	for _, c := range []struct {
		name string
		v6   bool
	}{{"v4", false}, {"v6", true}} {
		b.Run(c.name, func(b *testing.B) {
			syn := benchSYN(b, c.v6)
			var p packet.Packet
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Decode(syn, packet.LinkIP); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeVerify(b *testing.B) {
	syn := benchSYN(b, false)
	var p packet.Packet
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Decode(syn, packet.LinkIP); err != nil {
			b.Fatal(err)
		}
		if err := p.VerifyChecksums(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSum(b *testing.B) {
	for _, n := range []int{20, 60, 1500, 9000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			buf := make([]byte, n)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			var s uint16
			for b.Loop() {
				s = packet.Sum(buf, s)
			}
		})
	}
}
