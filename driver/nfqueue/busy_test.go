package nfqueue

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

func TestQueueHolder(t *testing.T) {
	// Two queues as Linux 6.18 lists them: queue_num peer_portid
	// queue_total copy_mode copy_range queue_dropped queue_user_dropped
	// id_sequence 1.
	table := []byte("    7  26982     0 2 65531     0     0        0  1\n" +
		"  100 -4097     3 2 65531     0     0       12  1\n" +
		"65535 4294963199 0 2 65531     0     0        0  1\n")
	for _, c := range []struct {
		name string
		data []byte
		num  uint16
		port uint32
		ok   bool
	}{
		{"first", table, 7, 26982, true},
		{"last", table, 65535, 4294963199, true},
		{"absent", table, 8, 0, false},
		{"number that is a prefix", table, 10, 0, false},
		{"unparsable port", table, 100, 0, false},
		{"empty", nil, 7, 0, false},
		{"short line", []byte("7\n"), 7, 0, false},
		{"no newline at the end", []byte("    9  41     0 2 65531     0     0        0  1"), 9, 41, true},
	} {
		port, ok := queueHolder(c.data, c.num)
		if port != c.port || ok != c.ok {
			t.Errorf("%s: queue %d: got %d, %v; want %d, %v", c.name, c.num, port, ok, c.port, c.ok)
		}
	}
}

// TestQueueBusyError: the error names the queue and what may hold it, is
// errors.Is-able through the driver's OpError, and says nothing of
// capabilities.
func TestQueueBusyError(t *testing.T) {
	err := driver.NewOpError("bind nfqueue 100", &QueueBusyError{Queue: 100, PortID: 4242})
	var be *QueueBusyError
	if !errors.Is(err, ErrQueueBusy) || !errors.As(err, &be) || be.Queue != 100 || be.PortID != 4242 {
		t.Fatalf("%v: not a QueueBusyError for queue 100", err)
	}
	if errors.Is(err, syscall.EPERM) {
		t.Error("a busy queue unwraps to EPERM, which reads as a missing capability")
	}
	want := "driver: bind nfqueue 100: nfqueue: queue 100 is bound by another process (another synproxy-lite, or a firewall tool using NFQUEUE): netlink port 4242 holds it (ss -f netlink -p names the process)"
	if err.Error() != want {
		t.Errorf("got  %q\nwant %q", err, want)
	}
	if strings.Contains(err.Error(), "CAP_") {
		t.Errorf("%v names capabilities", err)
	}
}
