package flood_test

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/internal/flood"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// The sender in one namespace floods a service address of the other at a
// bounded rate; every SYN it counts arrives. Addresses: 10.99.210.0/24,
// spoofed sources in 10.99.211.0/24.
func TestSender(t *testing.T) {
	p := netlabtest.NewPair(t, "splfl", netip.MustParsePrefix("10.99.210.0/24"), netip.MustParsePrefix("fd00:99:210::/64"))
	spoof := netip.MustParsePrefix("10.99.211.0/24")
	dst := netip.AddrPortFrom(p.B4, 8080)
	rx, err := p.B.OpenPacket("veth0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	g, err := flood.NewGenerator(spoof, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	var s *flood.Sender
	if err := p.A.Do(func() (err error) { s, err = flood.NewSender(g); return }); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const rate, count = 2000, 300
	var sent atomic.Uint64
	t0 := time.Now()
	s.Run(context.Background(), rate, count, &sent)
	if took := time.Since(t0); took < count*time.Second/rate-20*time.Millisecond {
		t.Errorf("%d SYNs at %d/s took %v", count, rate, took)
	}
	if sent.Load() != count {
		t.Fatalf("sent %d, want %d", sent.Load(), count)
	}
	got := 0
	buf := make([]byte, 2048)
	for got < count {
		n, err := rx.Recv(buf, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		var pk packet.Packet
		if pk.Decode(buf[:n], packet.LinkEthernet) == nil && pk.IsSYN() && pk.DstAddrPort() == dst && spoof.Contains(pk.Src) {
			got++
		}
	}
	if got != count {
		t.Errorf("captured %d of %d SYNs", got, count)
	}

	// A cancelled context stops the flood.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sent.Store(0)
	s.Run(ctx, rate, count, &sent)
	if sent.Load() != 0 {
		t.Errorf("sent %d after cancel", sent.Load())
	}
	if _, err := flood.NewSender(mustGen(t, "fd00:99:211::/64", "[fd00:99:210::2]:8080")); err == nil {
		t.Error("NewSender accepted an IPv6 generator")
	}
}

func mustGen(t *testing.T, src, dst string) *flood.Generator {
	g, err := flood.NewGenerator(netip.MustParsePrefix(src), netip.MustParseAddrPort(dst), nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
