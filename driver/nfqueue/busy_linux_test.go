package nfqueue

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

// TestQueueBusy opens a queue twice in a fresh network namespace: the
// kernel refuses the second bind with EPERM, and the error says the queue
// is bound by another process, names the queue, and says nothing of
// capabilities. A range that overlaps fails on the queue it shares and
// leaves none of its queues bound; once the first holder closes, the queue
// binds again.
func TestQueueBusy(t *testing.T) {
	l := netlabtest.New(t, "spnfqb")
	ns, err := l.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	err = ns.Do(func() error {
		first, err := Open(&Config{QueueNum: 7})
		if err != nil {
			t.Fatalf("first open: %v", err)
		}
		defer func() { first.Close() }()
		for _, c := range []struct {
			name string
			cfg  Config
		}{
			{"same queue", Config{QueueNum: 7}},
			{"overlapping range", Config{QueueNum: 6, Queues: 2}},
		} {
			d, err := Open(&c.cfg)
			if err == nil {
				d.Close()
				t.Errorf("%s: second open succeeded", c.name)
				continue
			}
			var be *QueueBusyError
			if !errors.Is(err, ErrQueueBusy) || !errors.As(err, &be) || be.Queue != 7 || be.PortID == 0 {
				t.Errorf("%s: %v (%#v): not a QueueBusyError for queue 7", c.name, err, be)
			}
			msg := err.Error()
			if !strings.Contains(msg, "queue 7 is bound by another process (another synproxy-lite, or a firewall tool using NFQUEUE)") ||
				strings.Contains(msg, "CAP_") || errors.Is(err, syscall.EPERM) {
				t.Errorf("%s: %q", c.name, msg)
			}
		}
		// The overlapping range released queue 6.
		six, err := Open(&Config{QueueNum: 6})
		if err != nil {
			t.Errorf("queue 6 after the failed range: %v", err)
		} else {
			six.Close()
		}
		first.Close()
		again, err := Open(&Config{QueueNum: 7})
		if err != nil {
			t.Errorf("queue 7 after its holder closed: %v", err)
		} else {
			again.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
