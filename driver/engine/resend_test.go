package engine_test

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// TestFloodReflectsOneSYNACKPerSYN: a flood of spoofed SYNs (none is ever
// answered with an ACK) gets exactly one SYN-ACK per SYN, however long one
// waits for the re-sends; once the flood is over, a single handshake whose
// ACK is lost gets its SYN-ACK re-sent again.
func TestFloodReflectsOneSYNACKPerSYN(t *testing.T) {
	q, e, _ := startEngine(t, &recorder{})
	var verdicts, sent atomic.Int64
	var last atomic.Pointer[[]byte]
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-q.Verdicts():
				verdicts.Add(1)
			case p := <-q.Sent():
				last.Store(&p)
				sent.Add(1)
			case <-stop:
				return
			}
		}
	}()
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	sv := netip.MustParseAddrPort("10.99.10.2:8080")
	// More SYNs than the pending table holds, from spoofed sources.
	const n = 3000
	for i := range n {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 99, 11 + byte(i>>8), byte(i)}), uint16(1024+i))
		q.Inject(build(t, seg{src: src, dst: sv, seq: uint32(i), syn: true, opts: linuxSYNOpts(1460, 7, uint32(i))}))
	}
	wait("the flood's verdicts", func() bool { return verdicts.Load() == n })
	// The SYN-ACKs of the flood would be re-sent after 1, 3 and 7 s.
	time.Sleep(3500 * time.Millisecond)
	if got := sent.Load(); got != n {
		t.Errorf("%d SYN-ACKs for %d spoofed SYNs, want exactly one each", got, n)
	}
	c := e.Counters()
	if c.SYNACKResent.Load() != 0 || c.SYNACKSent.Load() != n {
		t.Errorf("SYN-ACKs sent %d, re-sent %d; want %d, 0", c.SYNACKSent.Load(), c.SYNACKResent.Load(), n)
	}

	// The flood is over: a lone SYN whose ACK is lost is answered again.
	lost := netip.MustParseAddrPort("10.99.10.1:40100")
	q.Inject(build(t, seg{src: lost, dst: sv, seq: 7, syn: true, opts: linuxSYNOpts(1460, 7, 0x4000)}))
	wait("the lone SYN-ACK", func() bool { return sent.Load() == n+1 })
	first := *last.Load()
	wait("its re-send", func() bool { return c.SYNACKResent.Load() == 1 })
	if again := *last.Load(); string(again) != string(first) {
		t.Errorf("re-sent packet differs from the SYN-ACK:\n% x\n% x", again, first)
	}
	if v := verdicts.Load(); v != n+1 {
		t.Errorf("%d verdicts, want %d", v, n+1)
	}
}
