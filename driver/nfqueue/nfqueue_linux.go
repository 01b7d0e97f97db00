package nfqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	nfq "github.com/florianl/go-nfqueue/v2"
	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/rawsock"
)

// Config configures the driver. Nil means the defaults.
type Config struct {
	// QueueNum is the first queue number; Queues queues from it are opened.
	QueueNum uint16
	// Queues is the number of queues (and workers). Zero means 1.
	Queues int
	// BatchSize is the largest burst. Zero means 64.
	BatchSize int
	// MaxQueueLen is the kernel-side length of each queue. Zero means 4096.
	MaxQueueLen uint32
	// FailOpen makes the kernel accept packets that find a queue full
	// instead of dropping them.
	FailOpen bool
	// ReadBuffer is the netlink socket receive buffer in bytes. Zero means
	// 8 MiB.
	ReadBuffer int
}

// Driver is the nfqueue driver.
type Driver struct {
	queues   []*Queue
	overruns atomic.Uint64
	txErrs   atomic.Uint64
}

// Open binds the queues and opens the raw sockets.
func Open(cfg *Config) (*Driver, error) {
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	if c.Queues <= 0 {
		c.Queues = 1
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 64
	}
	if c.MaxQueueLen == 0 {
		c.MaxQueueLen = 4096
	}
	if c.ReadBuffer == 0 {
		c.ReadBuffer = 8 << 20
	}
	d := &Driver{}
	for i := 0; i < c.Queues; i++ {
		q, err := openQueue(d, &c, c.QueueNum+uint16(i))
		if err != nil {
			d.Close()
			return nil, err
		}
		d.queues = append(d.queues, q)
	}
	return d, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return "nfqueue" }

// Queues implements driver.Driver.
func (d *Driver) Queues() []driver.Queue {
	qs := make([]driver.Queue, len(d.queues))
	for i, q := range d.queues {
		qs[i] = q
	}
	return qs
}

// Stats implements driver.Driver.
func (d *Driver) Stats() driver.DriverStats {
	return driver.DriverStats{Overruns: d.overruns.Load(), TxErrors: d.txErrs.Load()}
}

// Close implements driver.Driver.
func (d *Driver) Close() error {
	var errs []error
	for _, q := range d.queues {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}

type rxItem struct {
	id   uint32
	data []byte
}

// Queue is one nfqueue with its raw sockets.
type Queue struct {
	d     *Driver
	num   uint16
	batch int
	nf    *nfq.Nfqueue
	rx    chan rxItem
	done  chan struct{}
	wake  chan struct{}
	once  sync.Once
	ctx   context.Context
	stop  context.CancelFunc
	// io serialises the worker's use of the netlink socket and the raw
	// sockets (Release, WriteBatch) with Close, which may run on another
	// goroutine: a descriptor is never closed under a sendmmsg, nor
	// reused by the process while the worker still holds its number.
	io     sync.Mutex
	closed bool // guarded by io
	// raw are the raw IP sockets new packets leave on, with their
	// transmit scratch (allocated once).
	raw *rawsock.IP
}

func openQueue(d *Driver, c *Config, num uint16) (*Queue, error) {
	q := &Queue{d: d, num: num, batch: c.BatchSize, rx: make(chan rxItem, 4*c.BatchSize),
		done: make(chan struct{}), wake: make(chan struct{}, 1)}
	var err error
	if q.raw, err = rawsock.OpenIP(c.BatchSize, 4<<20); err != nil {
		return nil, err
	}
	var flags uint32
	if c.FailOpen {
		flags |= nfq.NfQaCfgFlagFailOpen
	}
	q.nf, err = nfq.Open(&nfq.Config{NfQueue: num, MaxPacketLen: 0xffff, MaxQueueLen: c.MaxQueueLen,
		Copymode: nfq.NfQnlCopyPacket, AfFamily: unix.AF_INET, Flags: flags})
	if err != nil {
		q.closeSockets()
		return nil, driver.NewOpError(fmt.Sprintf("open nfqueue %d", num), err)
	}
	_ = q.nf.Con.SetReadBuffer(c.ReadBuffer)
	q.ctx, q.stop = context.WithCancel(context.Background())
	err = q.nf.RegisterWithErrorFunc(q.ctx, q.hook, q.onError)
	if err != nil {
		q.nf.Close()
		q.closeSockets()
		return nil, driver.NewOpError(fmt.Sprintf("bind nfqueue %d", num), busy(num, err))
	}
	return q, nil
}

// busy turns the EPERM of a bind into a *QueueBusyError when the queue is
// bound already. The kernel answers EPERM both to a process without
// CAP_NET_ADMIN and to a bind of a queue another netlink socket holds
// (EBUSY only when the same socket binds twice); the kernel's table of
// bound queues, read from the calling thread's network namespace, tells the
// two apart (and the thread's effective capabilities: without
// CAP_NET_ADMIN the error stays the capability's).
func busy(num uint16, err error) error {
	if !errors.Is(err, unix.EPERM) || !netAdmin() {
		return err
	}
	table, rerr := os.ReadFile("/proc/thread-self/net/netfilter/nfnetlink_queue")
	if rerr != nil {
		return err
	}
	if port, ok := queueHolder(table, num); ok {
		return &QueueBusyError{Queue: num, PortID: port}
	}
	return err
}

// netAdmin reports whether the calling thread has CAP_NET_ADMIN in its
// effective set.
func netAdmin() bool {
	h := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var d [2]unix.CapUserData
	if unix.Capget(&h, &d[0]) != nil {
		return false
	}
	return d[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) != 0
}

func (q *Queue) hook(a nfq.Attribute) int {
	if a.PacketID == nil || a.Payload == nil {
		return 0
	}
	select {
	case q.rx <- rxItem{id: *a.PacketID, data: *a.Payload}:
		return 0
	case <-q.done:
		return 1
	}
}

func (q *Queue) onError(err error) int {
	select {
	case <-q.done:
		return 1
	default:
	}
	if errors.Is(err, unix.ENOBUFS) {
		q.d.overruns.Add(1)
		return 0
	}
	if q.ctx.Err() != nil {
		return 1
	}
	// Timeouts and transient errors: keep receiving.
	return 0
}

// ReadBatch implements driver.Queue.
func (q *Queue) ReadBatch(pkts []driver.Packet) (int, error) {
	var it rxItem
	select {
	case it = <-q.rx:
	case <-q.wake:
		return 0, nil
	case <-q.done:
		return 0, driver.ErrClosed
	}
	max := min(len(pkts), q.batch)
	n := 0
	for {
		pkts[n] = driver.Packet{Data: it.data, Link: driver.LinkIP, ID: uint64(it.id)}
		n++
		if n == max {
			return n, nil
		}
		select {
		case it = <-q.rx:
			continue
		default:
		}
		return n, nil
	}
}

// Wake implements driver.Waker.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Release implements driver.Queue: runs of equal verdicts go back as one
// batch verdict.
func (q *Queue) Release(pkts []driver.Packet) error {
	q.io.Lock()
	defer q.io.Unlock()
	if q.closed {
		for i := range pkts {
			pkts[i].Data = nil
		}
		return driver.ErrClosed
	}
	var firstErr error
	for i := 0; i < len(pkts); {
		j := i
		for j+1 < len(pkts) && pkts[j+1].Verdict == pkts[i].Verdict {
			j++
		}
		v := nfq.NfDrop
		if pkts[i].Verdict == driver.VerdictAccept {
			v = nfq.NfAccept
		}
		var err error
		if j > i {
			err = q.nf.SetVerdictBatch(uint32(pkts[j].ID), v)
		} else {
			err = q.nf.SetVerdict(uint32(pkts[i].ID), v)
		}
		if err != nil && firstErr == nil {
			firstErr = driver.NewOpError(fmt.Sprintf("verdict on nfqueue %d", q.num), err)
		}
		i = j + 1
	}
	for i := range pkts {
		pkts[i].Data = nil
	}
	return firstErr
}

// WriteBatch implements driver.Queue. Each buffer is an IPv4 or IPv6 packet
// with a complete header (the queue's link type is LinkIP); it goes out on
// the raw socket of its family.
func (q *Queue) WriteBatch(bufs [][]byte) (int, error) {
	q.io.Lock()
	defer q.io.Unlock()
	if q.closed {
		return 0, driver.ErrClosed
	}
	sent := 0
	for len(bufs) > 0 {
		n := min(len(bufs), q.batch)
		s, err := q.write(bufs[:n])
		sent += s
		if err != nil {
			q.d.txErrs.Add(uint64(n - s))
			return sent, err
		}
		bufs = bufs[n:]
	}
	return sent, nil
}

func (q *Queue) write(bufs [][]byte) (int, error) {
	for _, b := range bufs {
		q.raw.Add(b) // a buffer that is no IP packet is skipped
	}
	sent, failed, err := q.raw.Flush()
	if err != nil {
		// The packets that failed (e.g. no route) were skipped.
		q.d.txErrs.Add(uint64(failed))
		err = driver.NewOpError("sendmmsg on raw socket", err)
	}
	return sent, err
}

// BatchSize implements driver.Queue.
func (q *Queue) BatchSize() int { return q.batch }

// Close implements driver.Queue.
func (q *Queue) Close() error {
	var err error
	q.once.Do(func() {
		close(q.done)
		if q.stop != nil {
			q.stop()
		}
		// The worker, woken by done, finishes the batch it holds (its
		// Release and WriteBatch hold io) before the sockets go.
		q.io.Lock()
		defer q.io.Unlock()
		q.closed = true
		if q.nf != nil {
			err = q.nf.Close()
		}
		q.closeSockets()
	})
	return err
}

func (q *Queue) closeSockets() { q.raw.Close() }
