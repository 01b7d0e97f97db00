package packet_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

var update = flag.Bool("update", false, "rewrite the fixtures in testdata/")

// refSum is the reference one's complement sum: 16-bit words, one at a time.
func refSum(b []byte, initial uint16) uint16 {
	s := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// gp bundles a gopacket DecodingLayerParser with its layers.
type gp struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	ip4     layers.IPv4
	ip6     layers.IPv6
	tcp     layers.TCP
	payload gopacket.Payload
	types   []gopacket.LayerType
	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
}

func newGP() *gp {
	g := &gp{parsers: map[gopacket.LayerType]*gopacket.DecodingLayerParser{}}
	for _, first := range []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeIPv4, layers.LayerTypeIPv6} {
		p := gopacket.NewDecodingLayerParser(first, &g.eth, &g.dot1q, &g.ip4, &g.ip6, &g.tcp, &g.payload)
		p.IgnoreUnsupported = true
		g.parsers[first] = p
	}
	return g
}

// decode decodes b with gopacket; link selects the first layer.
func (g *gp) decode(b []byte, link packet.LinkType) error {
	first := layers.LayerTypeEthernet
	if link == packet.LinkIP {
		first = layers.LayerTypeIPv4
		if len(b) > 0 && b[0]>>4 == 6 {
			first = layers.LayerTypeIPv6
		}
	}
	g.payload = nil
	return g.parsers[first].DecodeLayers(b, &g.types)
}

func (g *gp) has(t gopacket.LayerType) bool {
	for _, x := range g.types {
		if x == t {
			return true
		}
	}
	return false
}

// gpOptions interprets gopacket's TCP option list as the kernel's synproxy
// parser would (the lists compared here are well formed).
func gpOptions(opts []layers.TCPOption) packet.Options {
	var o packet.Options
	for _, x := range opts {
		d := x.OptionData
		switch x.OptionType {
		case layers.TCPOptionKindEndList:
			return o
		case layers.TCPOptionKindMSS:
			if x.OptionLength == 4 {
				o.HasMSS, o.MSS = true, binary.BigEndian.Uint16(d)
			}
		case layers.TCPOptionKindWindowScale:
			if x.OptionLength == 3 {
				o.HasWScale, o.WScaleRaw, o.WScale = true, d[0], min(d[0], 14)
			}
		case layers.TCPOptionKindSACKPermitted:
			if x.OptionLength == 2 {
				o.SACKPermitted = true
			}
		case layers.TCPOptionKindTimestamps:
			if x.OptionLength == 10 {
				o.HasTS, o.TSval, o.TSecr = true, binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:])
			}
		case layers.TCPOptionKindSACK:
			if x.OptionLength >= 10 && (x.OptionLength-2)%8 == 0 {
				n := int(x.OptionLength-2) / 8
				for i := range n {
					o.SACK[i] = packet.SACKBlock{Left: binary.BigEndian.Uint32(d[8*i:]), Right: binary.BigEndian.Uint32(d[8*i+4:])}
				}
				o.NumSACK = uint8(n)
			}
		}
	}
	return o
}

// wantOptions is what decoding returns for options a Segment was built with.
func wantOptions(o packet.Options) packet.Options {
	o.Malformed = false
	if o.HasWScale {
		o.WScaleRaw = o.WScale
		o.WScale = min(o.WScale, 14)
	} else {
		o.WScale, o.WScaleRaw = 0, 0
	}
	if !o.HasMSS {
		o.MSS = 0
	}
	if !o.HasTS {
		o.TSval, o.TSecr = 0, 0
	}
	for i := int(o.NumSACK); i < len(o.SACK); i++ {
		o.SACK[i] = packet.SACKBlock{}
	}
	return o
}

func randAddrPort(r *rand.Rand, v6 bool) netip.AddrPort {
	port := uint16(r.Uint32())
	if v6 {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:], r.Uint64())
		binary.BigEndian.PutUint64(a[8:], r.Uint64())
		if a[0] == 0 { // keep clear of IPv4-mapped and other special forms
			a[0] = 0x20
		}
		return netip.AddrPortFrom(netip.AddrFrom16(a), port)
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], r.Uint32())
	return netip.AddrPortFrom(netip.AddrFrom4(a), port)
}

// randOptions returns random options that fit a TCP header.
func randOptions(r *rand.Rand) packet.Options {
	for {
		var o packet.Options
		if r.IntN(2) == 0 {
			o.HasMSS, o.MSS = true, uint16(r.Uint32())
		}
		if r.IntN(2) == 0 {
			o.HasWScale, o.WScale = true, uint8(r.IntN(15))
		}
		o.SACKPermitted = r.IntN(2) == 0
		if r.IntN(2) == 0 {
			o.HasTS, o.TSval, o.TSecr = true, r.Uint32(), r.Uint32()
		}
		if r.IntN(4) == 0 {
			o.NumSACK = uint8(1 + r.IntN(4))
			for i := range o.NumSACK {
				o.SACK[i] = packet.SACKBlock{Left: r.Uint32(), Right: r.Uint32()}
			}
		}
		if o.Len() >= 0 {
			return o
		}
	}
}

// randSegment returns a random segment of the given family.
func randSegment(r *rand.Rand, v6 bool) packet.Segment {
	s := packet.Segment{
		Src: randAddrPort(r, v6), Dst: randAddrPort(r, v6),
		Seq: r.Uint32(), Ack: r.Uint32(), Flags: packet.TCPFlags(r.Uint32()),
		Window: uint16(r.Uint32()), Urgent: uint16(r.Uint32()),
		Options: randOptions(r),
		TTL:     uint8(r.Uint32()), TOS: uint8(r.Uint32()), ID: uint16(r.Uint32()), DF: r.IntN(2) == 0,
	}
	if v6 {
		s.FlowLabel = r.Uint32() & 0xfffff
		s.ID, s.DF = 0, false
	}
	if r.IntN(3) == 0 {
		s.Payload = make([]byte, r.IntN(300))
		for i := range s.Payload {
			s.Payload[i] = byte(r.Uint32())
		}
	}
	return s
}

func randMAC(r *rand.Rand) [6]byte {
	var m [6]byte
	for i := range m {
		m[i] = byte(r.Uint32())
	}
	return m
}

// serialize serialises gopacket layers with FixLengths and ComputeChecksums.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("gopacket serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ipOf(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

func addrOf(t testing.TB, ip net.IP) netip.Addr {
	t.Helper()
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		t.Fatalf("bad address %v", ip)
	}
	return a
}

// pcap fixtures

var fixtureTime = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type frame struct {
	data []byte
	ci   gopacket.CaptureInfo
}

func readPcap(t testing.TB, name string) (layers.LinkType, []frame) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("fixture %s: %v (run go test ./packet -run %s -update to make it)", name, err, t.Name())
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []frame
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		out = append(out, frame{append([]byte(nil), data...), ci})
	}
	return r.LinkType(), out
}

func writePcap(t testing.TB, name string, lt layers.LinkType, frames [][]byte) {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, lt); err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: fixtureTime.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(f), Length: len(f)}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote testdata/%s: %d frames", name, len(frames))
}
