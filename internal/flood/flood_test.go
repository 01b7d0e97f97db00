package flood_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/internal/flood"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

func TestGenerator(t *testing.T) {
	for _, tc := range []struct {
		name   string
		src    string
		dst    string
		cfg    *flood.Config
		length int
		mss    uint16
		window uint16
	}{
		{"v4 defaults", "10.99.202.0/24", "10.99.200.2:8080", nil, 44, 1460, 1024},
		{"v4 /30", "10.99.202.4/30", "10.99.200.2:80", &flood.Config{MSS: 536, Window: 512}, 44, 536, 512},
		{"v6", "fd00:99:202::/64", "[fd00:99:200::2]:8080", nil, 64, 1460, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := netip.MustParsePrefix(tc.src), netip.MustParseAddrPort(tc.dst)
			cfg := tc.cfg
			if cfg == nil {
				cfg = &flood.Config{}
			}
			cfg.Rand = rand.New(rand.NewPCG(1, 2))
			g, err := flood.NewGenerator(src, dst, cfg)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[netip.Addr]bool{}
			var b []byte
			for range 2000 {
				b = g.Append(b[:0])
				var p packet.Packet
				if err := p.Decode(b, packet.LinkIP); err != nil {
					t.Fatalf("decode %x: %v", b, err)
				}
				if err := p.VerifyChecksums(); err != nil {
					t.Fatalf("checksums of %x: %v", b, err)
				}
				if len(b) != tc.length || p.Flags != packet.FlagSYN || p.DstAddrPort() != dst ||
					p.Window != tc.window || !p.Options.HasMSS || p.Options.MSS != tc.mss ||
					p.Options.HasTS || p.Options.HasWScale || p.Options.SACKPermitted {
					t.Fatalf("SYN %x: %+v", b, p)
				}
				if !src.Contains(p.Src) || p.Src == src.Addr() || (p.Src.Is4() && p.Src == lastAddr(src)) {
					t.Fatalf("source %v outside the hosts of %v", p.Src, src)
				}
				if p.SrcPort < 1024 || p.SrcPort == 65535 {
					t.Fatalf("source port %d", p.SrcPort)
				}
				seen[p.Src] = true
			}
			if len(seen) < 2 {
				t.Errorf("%d distinct sources", len(seen))
			}
			if src.Bits() == 30 && len(seen) != 2 {
				t.Errorf("a /30 has 2 hosts, saw %d sources", len(seen))
			}
		})
	}
}

// The IPv4 SYN's header is the demo's: TTL 64, ID 0, no DF, no TOS.
func TestGeneratorIPv4Header(t *testing.T) {
	g, err := flood.NewGenerator(netip.MustParsePrefix("10.99.202.0/24"), netip.MustParseAddrPort("10.99.200.2:8080"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := g.Append(nil)
	if want := []byte{0x45, 0, 0, 44, 0, 0, 0, 0, 64, 6}; !bytes.Equal(b[:10], want) {
		t.Errorf("IPv4 header starts % x, want % x", b[:10], want)
	}
	if want := []byte{0x60, 0x02, 0x04, 0x00}; !bytes.Equal(b[32:36], want) {
		t.Errorf("TCP offset, flags, window % x, want % x", b[32:36], want)
	}
	if want := []byte{2, 4, 0x05, 0xb4}; !bytes.Equal(b[40:], want) {
		t.Errorf("options % x, want % x", b[40:], want)
	}
}

func TestGeneratorBadAddresses(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{
		{"10.99.202.0/31", "10.99.200.2:80"},
		{"10.99.202.0/24", "[fd00:99::2]:80"},
		{"fd00:99::/64", "10.99.200.2:80"},
	} {
		_, err := flood.NewGenerator(netip.MustParsePrefix(tc.src), netip.MustParseAddrPort(tc.dst), nil)
		if !errors.Is(err, flood.ErrAddr) {
			t.Errorf("NewGenerator(%s, %s): %v, want ErrAddr", tc.src, tc.dst, err)
		}
	}
	if _, err := flood.NewGenerator(netip.Prefix{}, netip.MustParseAddrPort("10.99.200.2:80"), nil); !errors.Is(err, flood.ErrAddr) {
		t.Errorf("invalid prefix: %v", err)
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | (1<<host - 1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func BenchmarkGenerator(b *testing.B) {
	g, err := flood.NewGenerator(netip.MustParsePrefix("10.99.202.0/24"), netip.MustParseAddrPort("10.99.200.2:8080"), nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = g.Append(buf[:0])
	}
}
