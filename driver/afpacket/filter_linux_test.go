package afpacket

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/monotonic"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// needBPF skips the test, loudly, unless it can load eBPF programs.
func needBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: needs root (eBPF maps and programs); run as root, CI does")
	}
}

// frame puts an Ethernet header of EtherType et before ip.
func frame(et uint16, ip []byte) []byte {
	f := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, byte(et >> 8), byte(et)}
	return append(f, ip...)
}

// testRunInput is f as BPF_PROG_TEST_RUN hands it to a socket filter: the
// kernel takes an Ethernet header off the input (eth_type_trans), where an
// AF_PACKET socket's filter sees the frame from its Ethernet header on. A
// copy of the header goes first.
func testRunInput(f []byte) []byte {
	return append(append([]byte(nil), f[:packet.EthernetHeaderLen]...), f...)
}

// TestProvenFilter runs the eBPF filters of Config.Proven in the kernel
// (BPF_PROG_TEST_RUN) over frames: the proven socket's accepts the port's
// TCP segments of sources proven less than the timeout ago, the workers'
// accepts the port's other segments, and neither accepts what the classic
// port filter refuses.
func TestProvenFilter(t *testing.T) {
	needBPF(t)
	const timeout = time.Minute
	m, err := newProvenMaps(&driver.Proven{Timeout: timeout, Size: 16}, testPort)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	src4, src6 := netip.MustParseAddr("10.99.54.1"), netip.MustParseAddr("fd00:99:54::1")
	dst4, dst6 := netip.MustParseAddr("10.99.54.2"), netip.MustParseAddr("fd00:99:54::2")
	old4, future4 := netip.MustParseAddr("10.99.55.1"), netip.MustParseAddr("10.99.55.2")
	other4, other6 := netip.MustParseAddr("10.99.55.3"), netip.MustParseAddr("fd00:99:55::3")
	for _, a := range []netip.Addr{src4, src6} {
		if err := m.prove(a); err != nil {
			t.Fatal(err)
		}
	}
	now := uint64(monotonic.NS())
	if err := m.v4.Put(old4.AsSlice(), now-uint64(timeout)-uint64(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := m.v4.Put(future4.AsSlice(), now+uint64(time.Hour)); err != nil {
		t.Fatal(err)
	}

	syn4 := func(src netip.Addr) []byte { return frame(0x0800, synPacket(src, dst4, 30000, 1)) }
	syn6 := func(src netip.Addr) []byte { return frame(0x86dd, synPacket(src, dst6, 30000, 1)) }
	withPort := func(f []byte, port uint16) []byte {
		ip := f[packet.EthernetHeaderLen:]
		tcp := int(ip[0]&0xf) * 4
		if ip[0]>>4 == 6 {
			tcp = 40
		}
		binary.BigEndian.PutUint16(ip[tcp+2:], port)
		return f
	}
	// An IPv4 header with options (IHL 6).
	options := func(src netip.Addr) []byte {
		ip := synPacket(src, dst4, 30000, 1)
		b := append(append(append([]byte(nil), ip[:20]...), 1, 1, 1, 1), ip[20:]...)
		b[0] = 0x46
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		return frame(0x0800, b)
	}
	// An IPv6 SYN behind a destination options header.
	ext := func(src netip.Addr) []byte {
		ip := synPacket(src, dst6, 30000, 1)
		b := append(append(append([]byte(nil), ip[:40]...), packet.ProtoTCP, 0, 1, 4, 0, 0, 0, 0), ip[40:]...)
		b[6] = packet.ProtoDstOpts
		return frame(0x86dd, b)
	}
	fragment := func() []byte {
		f := syn4(src4)
		f[packet.EthernetHeaderLen+6] |= 0x20 // more fragments
		return f
	}
	udp := func() []byte {
		f := syn4(src4)
		f[packet.EthernetHeaderLen+9] = 17
		return f
	}

	type want int
	const (
		none want = iota
		workers
		proven
	)
	for _, tc := range []struct {
		name string
		f    []byte
		want want
	}{
		{"IPv4 proven", syn4(src4), proven},
		{"IPv4 unknown", syn4(other4), workers},
		{"IPv4 proof expired", syn4(old4), workers},
		{"IPv4 proof in the future", syn4(future4), workers},
		{"IPv4 options proven", options(src4), proven},
		{"IPv4 options unknown", options(other4), workers},
		{"IPv6 proven", syn6(src6), proven},
		{"IPv6 unknown", syn6(other6), workers},
		{"IPv6 extension header proven", ext(src6), proven},
		{"IPv6 extension header unknown", ext(other6), workers},
		{"IPv4 other port", withPort(syn4(src4), testPort+1), none},
		{"IPv6 other port", withPort(syn6(other6), testPort+1), none},
		{"IPv4 fragment", fragment(), none},
		{"UDP", udp(), none},
		{"ARP", frame(0x0806, make([]byte, 28)), none},
		{"truncated", syn4(src4)[:packet.EthernetHeaderLen+22], none},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range []struct {
				name   string
				accept bool
				ret    func() (uint32, error)
			}{
				{"workers", tc.want == workers, func() (uint32, error) { r, _, err := m.workers.Test(testRunInput(tc.f)); return r, err }},
				{"proven", tc.want == proven, func() (uint32, error) { r, _, err := m.proven.Test(testRunInput(tc.f)); return r, err }},
			} {
				ret, err := f.ret()
				if err != nil {
					t.Fatalf("%s filter: %v", f.name, err)
				}
				if want := map[bool]uint32{true: acceptSnap, false: 0}[f.accept]; ret != want {
					t.Errorf("%s filter returned %d, want %d", f.name, ret, want)
				}
			}
		})
	}
}

// BenchmarkProvenFilter measures the eBPF filters in the kernel
// (BPF_PROG_TEST_RUN): ns per packet of the port, with its source looked up
// in a map of 65536 entries; and per packet refused before the lookup (not
// TCP), which is most of what the port filter alone costs.
func BenchmarkProvenFilter(b *testing.B) {
	needBPF(b)
	m, err := newProvenMaps(&driver.Proven{}, testPort)
	if err != nil {
		b.Fatal(err)
	}
	defer m.close()
	src := netip.MustParseAddr("10.99.54.1")
	if err := m.prove(src); err != nil {
		b.Fatal(err)
	}
	syn := frame(0x0800, synPacket(src, netip.MustParseAddr("10.99.54.2"), 30000, 1))
	udp := append([]byte(nil), syn...)
	udp[packet.EthernetHeaderLen+9] = 17
	for _, p := range []struct {
		name string
		f    interface {
			Benchmark([]byte, int, func()) (uint32, time.Duration, error)
		}
		in []byte
	}{{"workers", m.workers, syn}, {"proven", m.proven, syn}, {"not TCP", m.workers, udp}} {
		b.Run(p.name, func(b *testing.B) {
			_, d, err := p.f.Benchmark(testRunInput(p.in), max(b.N, 1000), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(d.Nanoseconds()), "ns/packet")
		})
	}
}
