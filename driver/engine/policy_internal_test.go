package engine

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

func policyWorker(tb testing.TB, p *Policy, tap bool) *worker {
	tb.Helper()
	ring, err := cookie.NewRing(nil)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := New(nopDriver{}, &Config{Port: 8080, Ring: ring, Policy: p, Tap: tap,
		Handoff: HandoffFunc(func(*Handshake) error { return nil }),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	w := newWorker(e, nopQueue{}, 0)
	w.process(0)
	return w
}

// synFrom is a SYN from src (IPv4 tClient's port) to tServer.
func synFrom(src netip.Addr, port uint16) []byte {
	b := ipv4TCP(1000, 0, flagSYN, linuxOpts, nil)
	a := src.As4()
	copy(b[12:], a[:])
	b[20], b[21] = byte(port>>8), byte(port)
	fixChecksums(b, src)
	return b
}

// fixChecksums recomputes the checksums of an IPv4 segment from src to
// tServer.
func fixChecksums(b []byte, src netip.Addr) {
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint16(b[10:], packet.Checksum(b[:20]))
	t := b[20:]
	t[16], t[17] = 0, 0
	binary.BigEndian.PutUint16(t[16:], packet.TCPChecksum(src, tServer.Addr(), t))
}

// TestSYNLimit: the SYNs of one source prefix beyond the burst within one
// instant are dropped and counted; another prefix keeps its own tokens; a
// source's tokens come back with time.
func TestSYNLimit(t *testing.T) {
	w := policyWorker(t, &Policy{SYNRate: 10, SYNBurst: 5, Prefix4: 24}, false)
	pc := w.e.PolicyCounters()
	a := netip.MustParseAddr("10.99.20.1")
	b := netip.MustParseAddr("10.99.20.77") // same /24
	other := netip.MustParseAddr("10.99.21.1")
	answered := func(src netip.Addr) bool {
		w.tx = w.tx[:0]
		w.handle(synFrom(src, 40000), driver.LinkIP)
		return len(w.tx) == 1
	}
	n := 0
	for i := range 20 {
		src := a
		if i%2 == 1 {
			src = b
		}
		if answered(src) {
			n++
		}
	}
	if n != 5 || pc.SYNLimited.Load() != 15 {
		t.Errorf("%d of 20 SYNs of one /24 answered, %d limited; want 5, 15", n, pc.SYNLimited.Load())
	}
	if !answered(other) {
		t.Error("another /24 was limited")
	}
	w.nowUS += int64(time.Second / time.Microsecond / 10) // one token back
	if !answered(a) || answered(a) {
		t.Error("after 100 ms the /24 did not get exactly one token back")
	}
}

// TestReflectionBudget: SYN-ACKs towards one address stop at the budget,
// re-sends included, while another address is answered.
func TestReflectionBudget(t *testing.T) {
	w := policyWorker(t, &Policy{ReflectRate: 100, ReflectBurst: 10}, false)
	pc := w.e.PolicyCounters()
	victim := netip.MustParseAddr("10.99.22.1")
	sent := 0
	for i := range 1000 {
		w.tx = w.tx[:0]
		w.handle(synFrom(victim, uint16(10000+i)), driver.LinkIP)
		sent += len(w.tx)
	}
	if sent != 10 || pc.ReflectLimited.Load() != 990 {
		t.Errorf("%d SYN-ACKs to one address within an instant, %d withheld; want 10, 990", sent, pc.ReflectLimited.Load())
	}
	w.tx = w.tx[:0]
	w.handle(synFrom(netip.MustParseAddr("10.99.22.2"), 40000), driver.LinkIP)
	if len(w.tx) != 1 {
		t.Error("another address got no SYN-ACK")
	}
	// The pending SYN-ACKs fall due; the budget holds for re-sends too.
	w.tx = w.tx[:0]
	w.nowMS += 1000
	w.nextScan = 0
	w.resend()
	if len(w.tx) != 0 {
		t.Errorf("%d SYN-ACKs re-sent to an address over its budget", len(w.tx))
	}
}

// TestMonitorMode: every packet is given back, nothing is sent, and the
// counts say what the engine would have done.
func TestMonitorMode(t *testing.T) {
	w := policyWorker(t, &Policy{Mode: ModeMonitor}, false)
	pc, c := w.e.PolicyCounters(), w.e.Counters()
	w.tx = w.tx[:0]
	syn := ipv4TCP(1000, 0, flagSYN, linuxOpts, nil)
	if v := w.handle(syn, driver.LinkIP); v != driver.VerdictAccept || len(w.tx) != 0 {
		t.Fatalf("SYN: verdict %v, %d packets sent; want accept, none", v, len(w.tx))
	}
	ack := ipv4TCP(1001, 55555, flagACK, nil, nil) // answers the service's SYN-ACK
	for range 3 {
		if v := w.handle(ack, driver.LinkIP); v != driver.VerdictAccept {
			t.Fatalf("ACK: verdict %v, want accept", v)
		}
	}
	forged := ipv4TCP(1001, 12345, flagACK, nil, nil)
	forged[21]++ // another client port: no SYN seen
	fixChecksums(forged, tClient.Addr())
	w.handle(forged, driver.LinkIP)
	// A new SYN on the tuple (the connection is forgotten), then an ACK
	// of that tuple but not of its next sequence number.
	w.handle(ipv4TCP(2000, 0, flagSYN, linuxOpts, nil), driver.LinkIP)
	w.tx = w.tx[:0]
	w.handle(ipv4TCP(5000, 12345, flagACK, nil, nil), driver.LinkIP)
	w.process(0)
	if len(w.tx) != 0 {
		t.Errorf("%d packets sent in monitor mode", len(w.tx))
	}
	if pc.MonitorSYNACKs.Load() != 2 || pc.MonitorValid.Load() != 1 || pc.MonitorHandoffs.Load() != 1 ||
		pc.MonitorInvalid.Load() != 2 || c.Established.Load() != 2 || c.HandedOver.Load() != 0 {
		t.Errorf("would-send %d, would-accept %d, would-hand-over %d, would-refuse %d, established %d, handed over %d; want 2 1 1 2 2 0",
			pc.MonitorSYNACKs.Load(), pc.MonitorValid.Load(), pc.MonitorHandoffs.Load(), pc.MonitorInvalid.Load(),
			c.Established.Load(), c.HandedOver.Load())
	}
	tw := policyWorker(t, &Policy{Mode: ModeMonitor}, true)
	if v := tw.handle(syn, driver.LinkIP); v != driver.VerdictDrop {
		t.Errorf("monitor on a tap driver: verdict %v, want drop (the kernel has its copy)", v)
	}
}

// TestOnDemand: SYNs pass until EngageRate of them were observed within
// a second, then cookies answer; after Hold below ReleaseRate they pass
// again. The clock is the test's: the switch follows packet counts.
func TestOnDemand(t *testing.T) {
	w := policyWorker(t, &Policy{Mode: ModeOnDemand, EngageRate: 50, ReleaseRate: 10, Hold: 2 * time.Second}, false)
	pol, pc := w.e.pol, w.e.PolicyCounters()
	start := w.nowMS
	syn := func(i int) (driver.Verdict, int) {
		w.tx = w.tx[:0]
		v := w.handle(synFrom(netip.MustParseAddr("10.99.23.1"), uint16(20000+i)), driver.LinkIP)
		return v, len(w.tx)
	}
	for i := range 49 {
		if pol.observe(start, 1) {
			t.Fatalf("engaged at %d SYNs", i+1)
		}
		if v, n := syn(i); v != driver.VerdictAccept || n != 0 {
			t.Fatalf("SYN %d below the threshold: verdict %v, %d sent; want accept, none", i, v, n)
		}
	}
	if !pol.observe(start+999, 1) || pc.Engagements.Load() != 1 {
		t.Fatal("not engaged at the 50th SYN within a second")
	}
	if v, n := syn(49); v != driver.VerdictDrop || n != 1 {
		t.Fatalf("engaged: verdict %v, %d sent; want drop, a cookie SYN-ACK", v, n)
	}
	// 5 SYNs a second (below ReleaseRate) for Hold, then the release.
	for sec := int64(1); sec <= 3; sec++ {
		if sec < 3 && !pol.observe(start+sec*1000, 5) {
			t.Fatalf("released after %d s, before Hold", sec)
		}
	}
	if pol.observe(start+3000, 0) {
		t.Fatal("still engaged after Hold below ReleaseRate")
	}
	if v, n := syn(999); v != driver.VerdictAccept || n != 0 {
		t.Errorf("after release: verdict %v, %d sent; want accept, none", v, n)
	}
	if pc.SYNPassed.Load() != 50 || pc.Engagements.Load() != 1 {
		t.Errorf("passed %d, engagements %d; want 50, 1", pc.SYNPassed.Load(), pc.Engagements.Load())
	}
	// A second that reaches ReleaseRate holds the cookies engaged.
	w2 := policyWorker(t, &Policy{Mode: ModeOnDemand, EngageRate: 50, Hold: time.Second}, false)
	p2 := w2.e.pol
	p2.observe(start, 50)
	for sec := int64(1); sec <= 5; sec++ {
		if !p2.observe(start+sec*1000, 30) {
			t.Fatalf("released at second %d with 30 SYNs a second (ReleaseRate 25)", sec)
		}
	}
}

// TestTapLists: on a tap driver the engine leaves listed sources alone.
func TestTapLists(t *testing.T) {
	w := policyWorker(t, &Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.99.24.0/24")},
		Deny: []netip.Prefix{netip.MustParsePrefix("10.99.25.0/24"), netip.MustParsePrefix("fd00:99::/48")}}, true)
	pc := w.e.PolicyCounters()
	for _, tc := range []struct {
		src  string
		sent int
	}{{"10.99.24.9", 0}, {"10.99.25.200", 0}, {"10.99.26.1", 1}} {
		w.tx = w.tx[:0]
		if v := w.handle(synFrom(netip.MustParseAddr(tc.src), 40000), driver.LinkIP); v != driver.VerdictDrop || len(w.tx) != tc.sent {
			t.Errorf("SYN from %s: verdict %v, %d sent; want drop, %d", tc.src, v, len(w.tx), tc.sent)
		}
	}
	if pc.ListAllowed.Load() != 1 || pc.ListDenied.Load() != 1 {
		t.Errorf("allowed %d, denied %d; want 1, 1", pc.ListAllowed.Load(), pc.ListDenied.Load())
	}
	w.e.SetLists(nil, nil)
	w.tx = w.tx[:0]
	w.handle(synFrom(netip.MustParseAddr("10.99.24.9"), 40001), driver.LinkIP)
	if len(w.tx) != 1 {
		t.Error("a source no longer listed got no SYN-ACK")
	}
}

func TestPrefixRanges(t *testing.T) {
	rs := toRanges([]netip.Prefix{netip.MustParsePrefix("10.99.1.0/24"), netip.MustParsePrefix("10.99.1.128/25"),
		netip.MustParsePrefix("fd00:99::/48"), netip.MustParsePrefix("10.99.3.3/32")})
	for _, tc := range []struct {
		a  string
		in bool
	}{{"10.99.1.0", true}, {"10.99.1.255", true}, {"10.99.2.0", false}, {"10.99.3.3", true}, {"10.99.3.4", false},
		{"fd00:99::1", true}, {"fd00:99:1::", false}, {"10.99.0.255", false}, {"::", false}} {
		a := netip.MustParseAddr(tc.a).As16()
		if got := inRanges(rs, &a); got != tc.in {
			t.Errorf("%s in the lists: %v, want %v", tc.a, got, tc.in)
		}
	}
}

// TestPolicyNoAllocs pins the policy's per-packet path at zero allocations.
func TestPolicyNoAllocs(t *testing.T) {
	lim := policyWorker(t, &Policy{SYNRate: 1, ReflectRate: 1, Allow: []netip.Prefix{netip.MustParsePrefix("10.99.27.0/24")}}, true)
	mon := policyWorker(t, &Policy{Mode: ModeMonitor}, false)
	od := policyWorker(t, &Policy{Mode: ModeOnDemand, EngageRate: 1 << 30}, false)
	syn := synFrom(netip.MustParseAddr("10.99.28.1"), 40000)
	allowed := synFrom(netip.MustParseAddr("10.99.27.1"), 40000)
	ack := ipv4TCP(1001, 55555, flagACK, nil, nil)
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"SYN over the limits", func() { lim.tx = lim.tx[:0]; lim.handle(syn, driver.LinkIP) }},
		{"SYN of an allowed source on a tap driver", func() { lim.handle(allowed, driver.LinkIP) }},
		{"monitor SYN and ACK", func() { mon.handle(syn, driver.LinkIP); mon.handle(ack, driver.LinkIP) }},
		{"on-demand SYN passed", func() { od.handle(syn, driver.LinkIP) }},
		{"on-demand observation", func() { od.e.ObserveSYNs(1) }},
	} {
		if n := testing.AllocsPerRun(1000, tc.fn); n != 0 {
			t.Errorf("%s: %v allocations per packet, want 0", tc.name, n)
		}
	}
}

func BenchmarkEngineSYNLimited(b *testing.B) {
	w := policyWorker(b, &Policy{SYNRate: 1000, ReflectRate: 1000}, false)
	syn := synFrom(netip.MustParseAddr("10.99.28.1"), 40000)
	b.ReportAllocs()
	for b.Loop() {
		w.tx = w.tx[:0]
		w.handle(syn, driver.LinkIP)
	}
}
