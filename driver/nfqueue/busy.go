package nfqueue

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// ErrQueueBusy matches (errors.Is) a *QueueBusyError: a queue that another
// netlink socket, in practice another process, has bound.
var ErrQueueBusy = errors.New("nfqueue: queue bound by another process")

// QueueBusyError reports a queue bound by another process. The kernel
// answers the bind with EPERM, which would otherwise read as a missing
// capability; this error does not unwrap to it.
type QueueBusyError struct {
	// Queue is the queue number.
	Queue uint16
	// PortID is the netlink port ID of the socket holding the queue, as
	// /proc/net/netfilter/nfnetlink_queue lists it (`ss -f netlink -p`
	// names its process).
	PortID uint32
}

func (e *QueueBusyError) Error() string {
	return fmt.Sprintf("nfqueue: queue %d is bound by another process (another synproxy-lite, or a firewall tool using NFQUEUE): netlink port %d holds it (ss -f netlink -p names the process)",
		e.Queue, e.PortID)
}

// Is makes errors.Is(err, ErrQueueBusy) true.
func (e *QueueBusyError) Is(target error) bool { return target == ErrQueueBusy }

// queueHolder finds queue num in the kernel's table of bound queues (the
// text of /proc/net/netfilter/nfnetlink_queue: one line per queue, the
// queue number then the netlink port ID holding it, then counters) and
// returns the holder's port ID.
func queueHolder(table []byte, num uint16) (portID uint32, ok bool) {
	for line := range bytes.Lines(table) {
		f := bytes.Fields(line)
		if len(f) < 2 {
			continue
		}
		q, err := strconv.ParseUint(string(f[0]), 10, 16)
		if err != nil || uint16(q) != num {
			continue
		}
		p, err := strconv.ParseUint(string(f[1]), 10, 32)
		if err != nil {
			return 0, false
		}
		return uint32(p), true
	}
	return 0, false
}
