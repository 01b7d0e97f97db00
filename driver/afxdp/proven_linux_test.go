package afxdp

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// Addresses of the proven clients' tests: 10.99.159.0/24, 10.99.163.0/24
// and 10.99.167.0/24 .. 10.99.169.0/24; fd00:99:159::/64 and so on.

// eventually polls cond every 50 ms until it holds; it fails the test
// after a minute, which no working driver comes near.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("never: %s", what)
		}
	}
}

// sendSYN sends a SYN from src (spoofed or A's own) to B's port from A.
func (r *rig) sendSYN(t *testing.T, src netip.Addr, sport uint16) {
	t.Helper()
	var err error
	if src.Is4() {
		err = unix.Sendto(r.raw, synPacket(src, r.p.B4, sport, 1), 0, &unix.SockaddrInet4{Addr: r.p.B4.As4()})
	} else {
		err = unix.Sendto(r.r6, synPacket(src, r.p.B6, sport, 1), 0, &unix.SockaddrInet6{Addr: r.p.B6.As16()})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// drain reads the n packets the program redirected to q, in the order
// ReadBatch gives them, and returns their sources.
func drain(t *testing.T, q driver.Queue, n int) []netip.Addr {
	t.Helper()
	pkts := make([]driver.Packet, q.BatchSize())
	var srcs []netip.Addr
	for len(srcs) < n {
		k := readBatch(t, q, pkts)
		for i := range pkts[:k] {
			var p packet.Packet
			if err := p.Decode(pkts[i].Data, packet.LinkEthernet); err != nil {
				t.Fatalf("packet %d: %v", len(srcs), err)
			}
			srcs = append(srcs, p.Src)
			pkts[i].Verdict = driver.VerdictDrop
		}
		q.Release(pkts[:k])
	}
	return srcs
}

// TestProvenClients: the SYNs of a proven source reach the queue on its
// proven socket, and ReadBatch gives them before the flood's that arrived
// first; the flood's spoofed sources never enter the proven maps; a proof
// expires after the timeout, and a new one counts again. In native and
// generic mode.
func TestProvenClients(t *testing.T) {
	for _, m := range []modeCase{{ModeNative, 167, false}, {ModeGeneric, 163, false}} {
		t.Run(m.name(), func(t *testing.T) {
			testProvenClients(t, newRig(t, m.sub, Config{Mode: m.mode, Proven: &driver.Proven{Timeout: time.Hour}}))
		})
	}
}

func testProvenClients(t *testing.T, r *rig) {
	q := r.d.Queues()[0]
	r.d.Prove(r.p.A4)
	r.d.Prove(r.p.A6)
	// The flood first: 1,000 SYNs spoofed from as many sources, IPv4 and
	// IPv6; then 10 SYNs from each of A's addresses.
	const flood, proven = 1000, 20
	for i := 0; i < flood; i++ {
		b4 := r.p.A4.As4()
		b4[3] = byte(10 + i%200) // not A4
		src := netip.AddrFrom4(b4)
		if i%2 == 1 {
			b := r.p.A6.As16()
			b[13], b[14], b[15] = 0xee, byte(i>>8), byte(i) // not A6
			src = netip.AddrFrom16(b)
		}
		r.sendSYN(t, src, uint16(20000+i))
	}
	for i := 0; i < proven; i++ {
		src := r.p.A4
		if i%2 == 1 {
			src = r.p.A6
		}
		r.sendSYN(t, src, uint16(40000+i))
	}
	eventually(t, "every SYN redirected", func() bool { return r.d.Counters().Program.Redirected == flood+proven })
	srcs := drain(t, q, flood+proven)
	for i, s := range srcs {
		isProven := s == r.p.A4 || s == r.p.A6
		if isProven != (i < proven) {
			t.Fatalf("packet %d from %v: the %d proven SYNs do not come first", i, s, proven)
		}
	}
	c := r.d.Counters()
	if c.ProvenPackets != proven || r.d.ProvenPackets() != proven || c.ProvenOverruns != 0 || c.ProveErrors != 0 {
		t.Errorf("counters %+v: want %d proven packets, no overrun, no error", c, proven)
	}
	if n := mapLen[uint32](t, r.d.prog.objs.Proven4) + mapLen[xdpSrc6](t, r.d.prog.objs.Proven6); n != 2 {
		t.Errorf("%d proven sources, want 2: the flood's entered", n)
	}

	// Expiry: with a timeout of 1 s, A4's SYNs go to the flood's socket
	// once a second has passed since the proof.
	if err := r.d.prog.objs.Config.Put(uint32(configProven), uint32(1000)); err != nil {
		t.Fatal(err)
	}
	sport := uint16(50000)
	eventually(t, "the proof expires", func() bool {
		before := r.d.Counters()
		sport++
		r.sendSYN(t, r.p.A4, sport)
		eventually(t, "the SYN redirected", func() bool { return r.d.Counters().Program.Redirected > before.Program.Redirected })
		drain(t, q, 1)
		return r.d.Counters().ProvenPackets == before.ProvenPackets
	})
	// A new proof counts again.
	if err := r.d.prog.objs.Config.Put(uint32(configProven), uint32(3600_000)); err != nil {
		t.Fatal(err)
	}
	before := r.d.Counters().ProvenPackets
	r.d.Prove(r.p.A4)
	r.sendSYN(t, r.p.A4, sport+1)
	eventually(t, "the proven SYN redirected", func() bool { return r.d.Counters().ProvenPackets == before+1 })
	if got := drain(t, q, 1); got[0] != r.p.A4 {
		t.Errorf("got a SYN from %v, want %v", got[0], r.p.A4)
	}
}

// TestProvenRingUnderOverrun: a flood that overruns the first socket's RX
// ring leaves the proven socket's ring, and receive buffers for it: with
// 512 frames the flood's ring holds 256 of 1,000 SYNs and overruns by the
// rest, and the 20 proven SYNs sent after them all arrive, first.
func TestProvenRingUnderOverrun(t *testing.T) {
	r := newRig(t, 159, Config{Frames: 512, Proven: &driver.Proven{Timeout: time.Hour}})
	q := r.d.Queues()[0]
	r.d.Prove(r.p.A4)
	const flood, ring, proven = 1000, 256, 20
	for i := 0; i < flood; i++ {
		b := r.p.A4.As4()
		b[3] = byte(10 + i%200)
		r.sendSYN(t, netip.AddrFrom4(b), uint16(20000+i))
	}
	for i := 0; i < proven; i++ {
		r.sendSYN(t, r.p.A4, uint16(40000+i))
	}
	eventually(t, "every SYN redirected", func() bool { return r.d.Counters().Program.Redirected == flood+proven })
	eventually(t, "the flood's overruns counted", func() bool { return r.d.Stats().Overruns == flood-ring })
	srcs := drain(t, q, ring+proven)
	for i, s := range srcs {
		if (s == r.p.A4) != (i < proven) {
			t.Fatalf("packet %d from %v: the %d proven SYNs do not come first", i, s, proven)
		}
	}
	c := r.d.Counters()
	if c.ProvenPackets != proven || c.ProvenOverruns != 0 {
		t.Errorf("counters %+v: want %d proven packets, none lost", c, proven)
	}
}

// mapLen returns the number of entries of a proven map.
func mapLen[K any](t *testing.T, m *ebpf.Map) int {
	t.Helper()
	var k K
	var v uint64
	n := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestProvenRefresh: the segments of a proven source's live connection
// refresh its proof. The SYN of a connection from A to a listener in B
// reaches the queue on the proven socket and is given back to the stack;
// the rest of the connection passes to the stack and writes the time in
// the map over a proof made old on purpose.
func TestProvenRefresh(t *testing.T) {
	r := newRig(t, 168, Config{Proven: &driver.Proven{Timeout: time.Hour}})
	go serve(r.d.Queues()[0])
	ln, err := r.p.B.Listen("tcp", "[::]:9000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	b := r.p.A4.As4()
	key := binary.NativeEndian.Uint32(b[:])
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	old := uint64(ts.Nano()) - uint64(5*time.Second) // proven 5 s ago: older than the refresh interval (1 s)
	if err := r.d.prog.objs.Proven4.Put(key, old); err != nil {
		t.Fatal(err)
	}
	var c net.Conn
	if err := r.p.A.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(r.p.B4, testPort).String(), 20*time.Second)
		return
	}); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := r.d.ProvenPackets(); n == 0 {
		t.Errorf("the SYN did not take the proven socket: %+v", r.d.Counters())
	}
	var seen uint64
	if err := r.d.prog.objs.Proven4.Lookup(key, &seen); err != nil {
		t.Fatal(err)
	}
	if seen <= old {
		t.Errorf("the proof was not refreshed by the connection's segments: %d, was %d (%+v)", seen, old, r.d.Counters().Program)
	}
}
