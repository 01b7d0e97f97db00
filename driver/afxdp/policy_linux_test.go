package afxdp

import (
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

func TestListEntries(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		name        string
		allow, deny []netip.Prefix
		want        map[netip.Prefix]uint8
	}{
		{"none", nil, nil, map[netip.Prefix]uint8{}},
		{"disjoint", []netip.Prefix{p("10.99.1.0/24")}, []netip.Prefix{p("fd00:99::/48")},
			map[netip.Prefix]uint8{p("10.99.1.0/24"): listAllow, p("fd00:99::/48"): listDeny}},
		{"allowed inside denied", []netip.Prefix{p("10.99.1.7/32")}, []netip.Prefix{p("10.99.0.0/16")},
			map[netip.Prefix]uint8{p("10.99.1.7/32"): listDeny, p("10.99.0.0/16"): listDeny}},
		{"denied inside allowed", []netip.Prefix{p("10.99.0.0/16")}, []netip.Prefix{p("10.99.1.0/24")},
			map[netip.Prefix]uint8{p("10.99.0.0/16"): listAllow, p("10.99.1.0/24"): listDeny}},
		{"both", []netip.Prefix{p("10.99.1.1/24")}, []netip.Prefix{p("10.99.1.0/24")},
			map[netip.Prefix]uint8{p("10.99.1.0/24"): listDeny}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := listEntries(tc.allow, tc.deny)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%v: got %d, want %d", k, got[k], v)
				}
			}
		})
	}
}

// xdpRun runs the program once on frame (BPF_PROG_TEST_RUN) and returns
// its verdict.
func xdpRun(t *testing.T, p *program, frame []byte) uint32 {
	t.Helper()
	ret, err := p.objs.SynproxyLite.Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		t.Fatal(err)
	}
	return ret
}

const (
	xdpDrop = 1
	xdpPass = 2
)

// synFrame and ackFrame are a SYN and an ACK from src to dst:testPort in
// Ethernet frames.
func synFrame(src, dst netip.Addr, sport uint16) []byte {
	return frame(&packet.Segment{Src: netip.AddrPortFrom(src, sport), Dst: netip.AddrPortFrom(dst, testPort),
		Seq: 1, Flags: packet.FlagSYN, Window: 64240})
}

func ackFrame(src, dst netip.Addr, sport uint16) []byte {
	return frame(&packet.Segment{Src: netip.AddrPortFrom(src, sport), Dst: netip.AddrPortFrom(dst, testPort),
		Seq: 2, Ack: 1, Flags: packet.FlagACK, Window: 64240})
}

func frame(seg *packet.Segment) []byte {
	b, err := packet.AppendSegment(nil, &packet.Ethernet{}, seg)
	if err != nil {
		panic(err)
	}
	return b
}

// TestProgramPolicy runs the program on frames in the kernel: the lists
// decide before anything else and switch at once; on demand, SYNs pass
// until engaged and their connections keep passing.
func TestProgramPolicy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: running an XDP program needs root")
	}
	p, err := loadProgram(testPort, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	local4, local6 := mustAddr("10.99.0.1"), mustAddr("fd00:99::1")
	if err := p.objs.Local4.Put(lpm4(netip.PrefixFrom(local4, 32)), uint8(1)); err != nil {
		t.Fatal(err)
	}
	if err := p.objs.Local6.Put(lpm6(netip.PrefixFrom(local6, 128)), uint8(1)); err != nil {
		t.Fatal(err)
	}
	pf := netip.MustParsePrefix
	if err := p.setLists([]netip.Prefix{pf("10.99.5.0/24"), pf("fd00:99:5::/48")},
		[]netip.Prefix{pf("10.99.6.0/24"), pf("fd00:99:6::/48"), pf("10.99.5.9/32")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src  string
		want uint32
	}{
		{"10.99.5.1", xdpPass}, {"10.99.5.9", xdpDrop}, {"10.99.6.1", xdpDrop},
		{"fd00:99:5::1", xdpPass}, {"fd00:99:6::1", xdpDrop},
	} {
		dst := local4
		if mustAddr(tc.src).Is6() {
			dst = local6
		}
		for _, f := range [][]byte{synFrame(mustAddr(tc.src), dst, 40000), ackFrame(mustAddr(tc.src), dst, 40000)} {
			if got := xdpRun(t, p, f); got != tc.want {
				t.Errorf("%s: verdict %d, want %d", tc.src, got, tc.want)
			}
		}
	}
	c := p.counts()
	if c.Allowed != 4 || c.Denied != 6 || c.SYNs != 0 {
		t.Errorf("counters %+v: want 4 allowed, 6 denied, no SYN", c)
	}
	// The new lists replace the old at once.
	if err := p.setLists(nil, []netip.Prefix{pf("10.99.5.0/24")}); err != nil {
		t.Fatal(err)
	}
	if got := xdpRun(t, p, synFrame(mustAddr("10.99.5.1"), local4, 40000)); got != xdpDrop {
		t.Errorf("after the reload: verdict %d, want drop", got)
	}
	if got := xdpRun(t, p, synFrame(mustAddr("10.99.6.1"), local4, 40000)); got == xdpDrop {
		t.Errorf("after the reload, a source no longer denied is dropped")
	}

	// On demand.
	d := &Driver{cfg: Config{OnDemand: true}, prog: p}
	if err := d.SetEngaged(false); err != nil {
		t.Fatal(err)
	}
	src := mustAddr("10.99.7.1")
	before := p.counts()
	if got := xdpRun(t, p, synFrame(src, local4, 40001)); got != xdpPass {
		t.Errorf("on demand, not engaged: SYN verdict %d, want pass", got)
	}
	if err := d.SetEngaged(true); err != nil {
		t.Fatal(err)
	}
	if got := xdpRun(t, p, ackFrame(src, local4, 40001)); got != xdpPass {
		t.Errorf("engaged: the ACK of a connection passed before: verdict %d, want pass", got)
	}
	xdpRun(t, p, synFrame(src, local4, 40002))
	xdpRun(t, p, ackFrame(src, local4, 40002))
	after := p.counts()
	if n := after.SYNsPassed - before.SYNsPassed; n != 1 {
		t.Errorf("%d SYNs passed, want 1", n)
	}
	if n := after.FlowPassed - before.FlowPassed; n != 1 {
		t.Errorf("%d segments of passed connections, want 1", n)
	}
	if n := after.SYNs - before.SYNs; n != 2 {
		t.Errorf("%d SYNs counted, want 2", n)
	}
	if n := after.Redirected - before.Redirected; n != 2 {
		t.Errorf("%d redirected, want 2 (the engaged SYN and its ACK)", n)
	}
}

// BenchmarkProgramPolicy times the program in the kernel (BPF_PROG_TEST_RUN,
// generic XDP's path) on a SYN of a source not listed (redirected), of a
// denied source and of an allowed one, with 10,000 prefixes in each list.
func BenchmarkProgramPolicy(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("SKIPPED LOUDLY: running an XDP program needs root")
	}
	p, err := loadProgram(testPort, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.close()
	local := mustAddr("10.99.0.1")
	if err := p.objs.Local4.Put(lpm4(netip.PrefixFrom(local, 32)), uint8(1)); err != nil {
		b.Fatal(err)
	}
	var allow, deny []netip.Prefix
	for i := range 10000 {
		allow = append(allow, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 100 + byte(i>>8&1), byte(i), 0}), 24))
		deny = append(deny, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16 + byte(i>>8&3), byte(i), 0}), 24))
	}
	if err := p.setLists(allow, deny); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, src string }{
		{"unlisted", "10.99.7.1"}, {"denied", "172.16.5.1"}, {"allowed", "10.100.5.1"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := synFrame(mustAddr(bc.src), local, 40000)
			_, d, err := p.objs.SynproxyLite.Benchmark(f, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(d.Nanoseconds()), "ns/packet")
		})
	}
}
