package engine

import (
	"errors"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// TestRefusedHandoff: a handoff refused at a limit drops the ACK, counts
// it by reason and neither remembers the connection nor counts it as
// failed, so the client's retransmission is checked again and gets in.
func TestRefusedHandoff(t *testing.T) {
	tup := cookie.Tuple{Client: tClient, Server: tServer}
	for _, tc := range []struct {
		name   string
		err    error
		reason func(c *Counters) uint64
	}{
		{"max_conns", handoff.ErrMaxConns, func(c *Counters) uint64 { return c.RefusedMaxConns.Load() }},
		{"per_source", handoff.ErrPerSource, func(c *Counters) uint64 { return c.RefusedPerSource.Load() }},
		{"dials", handoff.ErrMaxDials, func(c *Counters) uint64 { return c.RefusedDials.Load() }},
		{"other", errors.Join(errors.New("wrapped"), handoff.ErrRefused), func(c *Counters) uint64 { return c.RefusedOther.Load() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := testWorker(t)
			refuse := true
			w.e.cfg.Handoff = HandoffFunc(func(*Handshake) error {
				if refuse {
					return tc.err
				}
				return nil
			})
			_, ack := handshake(t, w)
			c := &w.e.ctrs
			for i := 1; i <= 3; i++ {
				if v := w.handle(ack, driver.LinkIP); v != driver.VerdictDrop {
					t.Fatalf("refused ACK: verdict %v, want drop", v)
				}
				if got := c.HandoffRefused.Load(); got != uint64(i) {
					t.Fatalf("HandoffRefused %d, want %d", got, i)
				}
				if got := tc.reason(c); got != uint64(i) {
					t.Fatalf("reason %s counted %d, want %d", tc.name, got, i)
				}
				if c.HandoffFailed.Load() != 0 || c.HandedOver.Load() != 0 || c.CookieRetrans.Load() != 0 {
					t.Fatalf("refusal counted as failed %d, handed over %d, retrans %d",
						c.HandoffFailed.Load(), c.HandedOver.Load(), c.CookieRetrans.Load())
				}
				if w.flows.find(&tup, w.nowMS) != nil {
					t.Fatal("refused connection remembered as handed over")
				}
				if p := &w.pend[w.flows.slot(&tup, len(w.pend))]; p.tuple != tup || p.due == 0 {
					t.Fatal("refused connection's SYN-ACK no longer pending")
				}
			}
			refuse = false
			if v := w.handle(ack, driver.LinkIP); v != driver.VerdictAccept {
				t.Fatalf("retransmitted ACK with room: verdict %v, want accept", v)
			}
			if c.HandedOver.Load() != 1 || c.HandoffRefused.Load() != 3 {
				t.Fatalf("handed over %d, refused %d; want 1, 3", c.HandedOver.Load(), c.HandoffRefused.Load())
			}
		})
	}
}

// TestRefusedNoAllocs pins a refusal at zero allocations: under a flood of
// completed handshakes every ACK may be refused.
func TestRefusedNoAllocs(t *testing.T) {
	w := testWorker(t)
	w.e.cfg.Handoff = HandoffFunc(func(*Handshake) error { return handoff.ErrPerSource })
	_, ack := handshake(t, w)
	w.handle(ack, driver.LinkIP) // logs once
	if n := testing.AllocsPerRun(1000, func() { w.handle(ack, driver.LinkIP) }); n != 0 {
		t.Errorf("refused ACK: %v allocations per packet, want 0", n)
	}
}
