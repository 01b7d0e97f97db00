package afpacket

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// Addresses of the tests in this file: 10.99.54.0/24 (the pair) and
// 10.99.55.0/24 (spoofed sources), fd00:99:54::/64 and fd00:99:55::/64.

// arrival is a SYN a test read: which queue it came from, its source and
// source port.
type arrival struct {
	queue int
	src   netip.AddrPort
}

// readAll reads every queue of d until it is closed and sends what arrives
// on the returned channel.
func readAll(t *testing.T, d *Driver) <-chan arrival {
	out := make(chan arrival, 1<<16)
	var wg sync.WaitGroup
	for i, q := range d.Queues() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkts := make([]driver.Packet, q.BatchSize())
			for {
				n, err := q.ReadBatch(pkts)
				if err != nil {
					if !errors.Is(err, driver.ErrClosed) {
						t.Errorf("queue %d: ReadBatch: %v", i, err)
					}
					return
				}
				for _, p := range pkts[:n] {
					var pp packet.Packet
					if err := pp.Decode(p.Data, packet.LinkEthernet); err != nil {
						t.Errorf("queue %d: frame does not decode: %v", i, err)
						continue
					}
					out <- arrival{i, netip.AddrPortFrom(pp.Src, pp.SrcPort)}
				}
				q.Release(pkts[:n])
			}
		}()
	}
	t.Cleanup(func() { d.Close(); wg.Wait() })
	return out
}

// sendFrom sends a SYN from src:sport to B on r's raw sockets.
func (r *rig) sendFrom(t *testing.T, src netip.Addr, sport uint16) {
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

// TestProvenQueue: once a source is proven, its SYNs arrive on the proven
// queue (the last) and only there, while other sources' arrive on the
// workers' queues only; once its proof is older than the timeout, its SYNs
// go back to the workers. IPv4 and IPv6.
func TestProvenQueue(t *testing.T) {
	r := newRig(t, 54, Config{Workers: 2, Proven: &driver.Proven{Timeout: time.Second}})
	qs := r.d.Queues()
	if len(qs) != 3 {
		t.Fatalf("%d queues, want 2 workers and the proven queue", len(qs))
	}
	provenQ := len(qs) - 1
	other4, other6 := netip.MustParseAddr("10.99.55.7"), netip.MustParseAddr("fd00:99:55::7")
	got := readAll(t, r.d)

	const n = 20
	sources := []netip.Addr{r.p.A4, r.p.A6, other4, other6}
	for i := range n {
		for _, src := range sources {
			if src == r.p.A4 || src == r.p.A6 {
				// Proven again, a moment before: the proof
				// is younger than the timeout however slowly
				// the test runs.
				r.d.Prove(src)
			}
			r.sendFrom(t, src, uint16(20000+i))
		}
	}
	count := map[netip.Addr]int{}
	for range n * len(sources) {
		a := <-got // the rig's watchdog ends a hung test
		proven := a.src.Addr() == r.p.A4 || a.src.Addr() == r.p.A6
		if proven != (a.queue == provenQ) {
			t.Errorf("SYN from %v on queue %d (the proven queue is %d)", a.src, a.queue, provenQ)
		}
		count[a.src.Addr()]++
	}
	for _, src := range sources {
		if count[src] != n {
			t.Errorf("%d SYNs from %v, want %d", count[src], src, n)
		}
	}
	c := r.d.Counters()
	if c.ProvenPackets != 2*n || c.ProveErrors != 0 {
		t.Errorf("counters %+v, want %d proven packets and no prove error", c, 2*n)
	}

	// After the timeout, the proven sources are served by the workers
	// again. (A SYN sent at the instant the proof expires may land in
	// neither ring; the loop does not count on any one.)
	for _, src := range []netip.Addr{r.p.A4, r.p.A6} {
		eventually(t, "SYNs from "+src.String()+" back on the workers' queues", got, func(send int) {
			r.sendFrom(t, src, uint16(30000+send))
		}, func(a arrival) bool { return a.src.Addr() == src && a.queue != provenQ })
	}
	// Proven again.
	r.d.Prove(r.p.A4)
	eventually(t, "SYNs from "+r.p.A4.String()+" on the proven queue again", got, func(send int) {
		r.sendFrom(t, r.p.A4, uint16(40000+send))
	}, func(a arrival) bool { return a.src.Addr() == r.p.A4 && a.queue == provenQ })
}

// eventually calls send every 50 ms (with a count) until an arrival
// satisfies done. The rig's watchdog ends it if it never does.
func eventually(t *testing.T, what string, got <-chan arrival, send func(int), done func(arrival) bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; {
		select {
		case a, ok := <-got:
			if !ok {
				t.Fatalf("waiting for %s: closed", what)
			}
			if done(a) {
				return
			}
		case <-tick.C:
			send(i)
			i++
		}
	}
}

// TestProvenUnderFlood: a flood from spoofed sources overruns the workers'
// ring (which nobody reads: every flood SYN is in it or dropped), and every
// SYN a proven source sends during it arrives on the proven queue, whose
// ring drops nothing.
func TestProvenUnderFlood(t *testing.T) {
	// Small worker rings: at most 2 × 128 KiB / 64 bytes a frame. A long
	// block timeout: the proven ring hands a block over when it is full
	// or a second after its first packet, so that a reader slowed down
	// by a loaded machine still finds room for every proven SYN.
	cfg := Config{Workers: 1, Blocks: 2, BlockSize: 128 << 10, BlockTimeout: time.Second,
		Proven: &driver.Proven{Timeout: time.Hour}}
	r := newRig(t, 54, cfg)
	const ringMax = 2 * (128 << 10) / 64
	r.d.Prove(r.p.A4)
	r.d.Prove(r.p.A6)
	qs := r.d.Queues()
	pq := qs[len(qs)-1]
	got := make(chan netip.AddrPort, 1<<12)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pkts := make([]driver.Packet, pq.BatchSize())
		for {
			n, err := pq.ReadBatch(pkts)
			if err != nil {
				return
			}
			for _, p := range pkts[:n] {
				var pp packet.Packet
				if err := pp.Decode(p.Data, packet.LinkEthernet); err != nil {
					t.Errorf("frame does not decode: %v", err)
					continue
				}
				got <- netip.AddrPortFrom(pp.Src, pp.SrcPort)
			}
			pq.Release(pkts[:n])
		}
	}()
	t.Cleanup(func() { r.d.Close(); <-done })

	spoof := func(i int) netip.Addr {
		if i%2 == 0 {
			return netip.AddrFrom4([4]byte{10, 99, 55, byte(i >> 1)})
		}
		a := netip.MustParseAddr("fd00:99:55::").As16()
		a[14], a[15] = byte(i>>9), byte(i>>1)
		return netip.AddrFrom16(a)
	}
	// The workers' ring is never read, and its kernel counts are read
	// here only: every flood SYN is in it or one of its overruns.
	wq := qs[0].(*Queue)
	var wPackets, wDrops uint64
	readWorkers := func() {
		st, err := unix.GetsockoptTpacketStatsV3(wq.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err != nil {
			t.Fatal(err)
		}
		wPackets += uint64(st.Packets) // received or dropped
		wDrops += uint64(st.Drops)
	}
	flood := 0
	// floodN sends n flood SYNs, then waits until the workers' socket has
	// taken them all (into its ring or as overruns): a sender that ran
	// ahead of the receiving softirq by more than the backlog
	// (net.core.netdev_max_backlog, 1000) would lose SYNs before the taps.
	floodN := func(n int) {
		for range n {
			r.sendFrom(t, spoof(flood), uint16(10000+flood%50000))
			flood++
		}
		for readWorkers(); wPackets < uint64(flood); readWorkers() {
			time.Sleep(time.Millisecond) // the rig's watchdog ends a hung test
		}
	}
	// Flood until the workers' ring overruns: it holds at most ringMax
	// SYNs.
	for wDrops == 0 {
		floodN(500)
	}
	// The proven sources' SYNs, in the middle of more flood.
	const proven = 200
	for i := range proven {
		src := r.p.A4
		if i%2 == 1 {
			src = r.p.A6
		}
		r.sendFrom(t, src, uint16(20000+i))
		floodN(50)
	}
	seen := map[netip.AddrPort]bool{}
	for len(seen) < proven {
		a := <-got // the rig's watchdog ends a hung test
		if a.Addr() != r.p.A4 && a.Addr() != r.p.A6 {
			t.Fatalf("a SYN from %v on the proven queue", a)
		}
		if seen[a] {
			t.Errorf("SYN from %v twice", a)
		}
		seen[a] = true
	}
	c := r.d.Counters()
	t.Logf("%d flood SYNs: %d overruns in the workers' ring; %d proven SYNs on their queue, %d overruns there",
		flood, wDrops, c.ProvenPackets, c.ProvenOverruns)
	if c.ProvenOverruns != 0 {
		t.Errorf("the proven ring overran %d times", c.ProvenOverruns)
	}
	if c.ProvenPackets != proven {
		t.Errorf("%d packets on the proven queue, want %d", c.ProvenPackets, proven)
	}
	if wPackets != uint64(flood) || wDrops < uint64(flood-ringMax) {
		t.Errorf("the workers' socket took %d SYNs and dropped %d, want the %d flood SYNs, all but at most %d dropped",
			wPackets, wDrops, flood, ringMax)
	}
}
