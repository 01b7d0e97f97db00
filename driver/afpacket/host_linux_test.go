package afpacket

import (
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// Addresses of the tests in this file: 10.99.50.0/24 .. 10.99.51.0/24,
// fd00:99:50::/64 .. fd00:99:51::/64.

// TestLinkFlap: after the interface goes down and up again, the receive
// socket's error (ENETDOWN) is read once and the worker sleeps in poll(2)
// instead of waking up for it again and again; the next SYN is received.
func TestLinkFlap(t *testing.T) {
	r := newRig(t, 50, Config{})
	q := r.d.Queues()[0]
	pkts := make([]driver.Packet, q.BatchSize())
	got := make(chan int, 16)
	go func() {
		for {
			n, err := q.ReadBatch(pkts)
			if err != nil {
				close(got)
				return
			}
			q.Release(pkts[:n])
			if n > 0 {
				got <- n
			}
		}
	}()
	r.send(t, 1, false)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no SYN before the flap")
	}
	for _, cmd := range []string{"down", "up"} {
		if out, err := r.p.B.CombinedOutput(t.Context(), "ip", "link", "set", "veth0", cmd); err != nil {
			t.Fatalf("ip link set veth0 %s: %v %s", cmd, err, out)
		}
	}
	before := r.d.Counters().IdleWakeups
	time.Sleep(time.Second)
	c := r.d.Counters()
	// A spinning worker wakes up hundreds of thousands of times a second,
	// however loaded the machine; a sleeping one a handful of times.
	if idle := c.IdleWakeups - before; idle > 20 {
		t.Errorf("%d idle wake-ups in the second after a link flap (%d socket errors read)", idle, c.RxErrors)
	}
	t.Logf("after the flap: %d idle wake-ups in 1 s, %d socket errors read", c.IdleWakeups-before, c.RxErrors)
	if c.RxErrors == 0 {
		t.Errorf("the socket error of the flap was not read")
	}
	// The peer's end needs a moment to carry traffic again.
	deadline := time.After(10 * time.Second)
	for tick := time.Tick(200 * time.Millisecond); ; {
		r.send(t, 1, false)
		select {
		case <-got:
			return
		case <-tick:
		case <-deadline:
			t.Fatal("no SYN received after the flap")
		}
	}
}
