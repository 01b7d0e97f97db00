// Package drivertest is an in-memory driver for engine tests: packets are
// injected with Inject (bare IP packets) or InjectLink (behind a link
// header), transmitted packets and verdicts are read back with Sent and
// Verdicts.
package drivertest

import (
	"slices"
	"sync"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// Driver is a fake driver.Driver with in-memory queues.
type Driver struct {
	queues []*Queue
}

// New returns a fake driver with n queues of batch size batch.
func New(n, batch int) *Driver {
	d := &Driver{}
	for i := 0; i < n; i++ {
		d.queues = append(d.queues, &Queue{
			batch: batch,
			rx:    make(chan frame, 1024),
			done:  make(chan struct{}),
			wake:  make(chan struct{}, 1),
			sent:  make(chan []byte, 1024),
			verd:  make(chan Verdict, 1024),
		})
	}
	return d
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return "fake" }

// Queues implements driver.Driver.
func (d *Driver) Queues() []driver.Queue {
	qs := make([]driver.Queue, len(d.queues))
	for i, q := range d.queues {
		qs[i] = q
	}
	return qs
}

// Queue returns queue i.
func (d *Driver) Queue(i int) *Queue { return d.queues[i] }

// Stats implements driver.Driver.
func (d *Driver) Stats() driver.DriverStats { return driver.DriverStats{} }

// Close implements driver.Driver.
func (d *Driver) Close() error {
	for _, q := range d.queues {
		q.Close()
	}
	return nil
}

// Verdict is a released packet with its verdict.
type Verdict struct {
	Data    []byte
	Verdict driver.Verdict
}

// Queue is a fake driver.Queue.
type Queue struct {
	batch     int
	rx        chan frame
	done      chan struct{}
	wake      chan struct{}
	closeOnce sync.Once
	sent      chan []byte
	verd      chan Verdict
	held      []frame
}

type frame struct {
	data []byte
	link driver.Link
}

// Inject queues a copy of the IP packet pkt for the engine.
func (q *Queue) Inject(pkt []byte) { q.InjectLink(pkt, driver.LinkIP) }

// InjectLink queues a copy of pkt, behind a link header of type link, for
// the engine.
func (q *Queue) InjectLink(pkt []byte, link driver.Link) {
	q.rx <- frame{data: slices.Clone(pkt), link: link}
}

// Sent returns the channel of transmitted packets (copies).
func (q *Queue) Sent() <-chan []byte { return q.sent }

// Verdicts returns the channel of released packets and their verdicts.
func (q *Queue) Verdicts() <-chan Verdict { return q.verd }

// ReadBatch implements driver.Queue.
func (q *Queue) ReadBatch(pkts []driver.Packet) (int, error) {
	q.held = q.held[:0]
	select {
	case p := <-q.rx:
		q.held = append(q.held, p)
	case <-q.wake:
		return 0, nil
	case <-q.done:
		return 0, driver.ErrClosed
	}
	for len(q.held) < len(pkts) && len(q.held) < q.batch {
		select {
		case p := <-q.rx:
			q.held = append(q.held, p)
			continue
		default:
		}
		break
	}
	for i, p := range q.held {
		pkts[i] = driver.Packet{Data: p.data, Link: p.link, ID: uint64(i)}
	}
	return len(q.held), nil
}

// Wake implements driver.Waker.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Release implements driver.Queue.
func (q *Queue) Release(pkts []driver.Packet) error {
	for _, p := range pkts {
		q.verd <- Verdict{Data: p.Data, Verdict: p.Verdict}
	}
	return nil
}

// WriteBatch implements driver.Queue.
func (q *Queue) WriteBatch(bufs [][]byte) (int, error) {
	for _, b := range bufs {
		q.sent <- slices.Clone(b)
	}
	return len(bufs), nil
}

// BatchSize implements driver.Queue.
func (q *Queue) BatchSize() int { return q.batch }

// Close implements driver.Queue.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() { close(q.done) })
	return nil
}
