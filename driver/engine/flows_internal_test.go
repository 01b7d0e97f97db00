package engine

import (
	"encoding/binary"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// TestOneConnectionPerHandshake: segments of a handed-over connection
// whose numbers pass the cookie check (the client sent as many bytes as it
// received) never make a second connection, also after the first seconds
// in which they count as queued before the socket existed; a FIN never
// makes one; a handoff that finds the socket (ErrExists) gives the segment
// to it and fails nothing; a new SYN on the tuple makes the next handshake
// count again.
func TestOneConnectionPerHandshake(t *testing.T) {
	w := testWorker(t)
	var handoffs int
	var result error
	w.e.cfg.Handoff = HandoffFunc(func(*Handshake) error { handoffs++; return result })
	c := &w.e.ctrs
	tup := cookie.Tuple{Client: tClient, Server: tServer}
	_, ack := handshake(t, w)
	isn := binary.BigEndian.Uint32(ack[20+8:]) - 1
	// balanced is a segment after n bytes each way, with flags.
	balanced := func(n uint32, flags uint8) []byte { return ipv4TCP(1001+n, isn+1+n, flags, nil, nil) }

	step := func(name string, pkt []byte, want driver.Verdict, wantHandoffs int) {
		t.Helper()
		w.tx, w.acks = w.tx[:0], w.acks[:0]
		if v := w.handle(pkt, driver.LinkIP); v != want {
			t.Errorf("%s: verdict %v, want %v", name, v, want)
		}
		if handoffs != wantHandoffs {
			t.Errorf("%s: %d handoffs, want %d", name, handoffs, wantHandoffs)
		}
	}
	step("handshake ACK", ack, driver.VerdictAccept, 1)
	step("echoed data within the first seconds", balanced(100, flagACK|0x08), driver.VerdictAccept, 1)
	w.nowMS += recentTTL + 1000
	step("echoed data later", balanced(200, flagACK|0x08), driver.VerdictDrop, 1)
	step("its FIN", balanced(200, flagACK|flagFIN), driver.VerdictAccept, 1)
	if c.Established.Load() != 2 || c.CookieRetrans.Load() != 1 {
		t.Errorf("established %d, retransmitted %d; want 2, 1", c.Established.Load(), c.CookieRetrans.Load())
	}

	// Forgotten (a full table reused its slot): a FIN still makes nothing,
	// and a handoff that finds the socket is no failure.
	forget(w, tup)
	step("FIN of a forgotten connection", balanced(300, flagACK|flagFIN), driver.VerdictDrop, 1)
	if c.Strays.Load() != 1 {
		t.Errorf("strays %d, want 1", c.Strays.Load())
	}
	result = handoff.ErrExists
	step("ACK of a forgotten connection with its socket", balanced(301, flagACK), driver.VerdictAccept, 2)
	step("next segment, remembered again", balanced(302, flagACK), driver.VerdictDrop, 2)
	if c.HandoffFailed.Load() != 0 || c.HandedOver.Load() != 1 || c.CookieRetrans.Load() != 2 || c.Established.Load() != 3 {
		t.Errorf("failed %d, handed over %d, retransmitted %d, established %d; want 0, 1, 2, 3",
			c.HandoffFailed.Load(), c.HandedOver.Load(), c.CookieRetrans.Load(), c.Established.Load())
	}
	if c.CookieInvalid.Load() != 0 {
		t.Errorf("%d segments of the connection counted as invalid cookies", c.CookieInvalid.Load())
	}

	// A new connection on the same tuple is checked and handed over.
	result = nil
	_, ack = handshake(t, w)
	if c.ConnReopened.Load() != 1 {
		t.Errorf("reopened %d, want 1", c.ConnReopened.Load())
	}
	step("handshake ACK of the new connection", ack, driver.VerdictAccept, 3)
}
