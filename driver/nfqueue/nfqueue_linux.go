package nfqueue

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

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
	// BatchSize is the largest burst: the datagrams one recvmmsg(2) takes
	// and the verdicts one write sends. Zero means 64.
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

// copyRange is the most of a packet the kernel copies to the queue: all of
// it. The engine needs the headers of every packet and the data that rides
// on a handshake ACK (it goes into the new socket's receive queue), and a
// flood's SYNs are headers only, so a shorter range would save nothing on
// them and lose data on the rest. Packets are segmented by the kernel
// before queueing (no NFQA_CFG_F_GSO), so none is longer.
const copyRange = 0xffff - 256

// slotSize is one receive slot: a packet of copyRange bytes and its
// netlink headers and attributes.
const slotSize = 0xffff + 1024

// Driver is the nfqueue driver.
type Driver struct {
	queues    []*Queue
	overruns  atomic.Uint64
	txErrs    atomic.Uint64
	rxErrs    atomic.Uint64
	idle      atomic.Uint64
	truncated atomic.Uint64
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
	return driver.DriverStats{Overruns: d.overruns.Load(), TxErrors: d.txErrs.Load(),
		RxErrors: d.rxErrs.Load(), IdleWakeups: d.idle.Load(),
		Skipped: driver.SkipStats{Truncated: d.truncated.Load()}}
}

// Close implements driver.Driver.
func (d *Driver) Close() error {
	var errs []error
	for _, q := range d.queues {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}

// mmsghdr is struct mmsghdr of recvmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// Queue is one nfqueue: its netlink socket, read with recvmmsg(2) into
// slots allocated once, and its raw sockets.
type Queue struct {
	d     *Driver
	num   uint16
	batch int
	// fd is the netlink socket, efd the eventfd Wake and Close write.
	fd, efd int
	// buf holds batch receive slots of slotSize bytes; msgs and iovs point
	// into it.
	buf  []byte
	msgs []mmsghdr
	iovs []unix.Iovec
	pfds []unix.PollFd
	// verdicts is the scratch of Release: the verdict messages of a batch,
	// sent in one write.
	verdicts []byte
	efdBuf   [8]byte
	one      [8]byte

	// mu serialises the use of the descriptors with Close, which may run
	// on another goroutine: a descriptor is never closed under a system
	// call, nor reused by the process while the worker still holds its
	// number. A ReadBatch blocked in poll(2) holds reading instead of mu;
	// Close wakes it and leaves the descriptors to it.
	mu      sync.Mutex
	closed  bool // guarded by mu
	reading bool // guarded by mu
	gone    bool // the descriptors are closed; guarded by mu
	// raw are the raw IP sockets new packets leave on, with their
	// transmit scratch (allocated once).
	raw *rawsock.IP
}

func openQueue(d *Driver, c *Config, num uint16) (_ *Queue, err error) {
	q := &Queue{d: d, num: num, batch: c.BatchSize, fd: -1, efd: -1}
	defer func() {
		if err != nil {
			q.closeFDs()
		}
	}()
	if q.raw, err = rawsock.OpenIP(c.BatchSize, 4<<20); err != nil {
		return nil, err
	}
	if q.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return nil, driver.NewOpError("eventfd", err)
	}
	q.fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, driver.NewOpError(fmt.Sprintf("open nfqueue %d", num), err)
	}
	if unix.SetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, c.ReadBuffer) != nil {
		_ = unix.SetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, c.ReadBuffer)
	}
	if err = unix.Bind(q.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, driver.NewOpError(fmt.Sprintf("open nfqueue %d", num), err)
	}
	if err = q.config(configMsg(num, cmdAttr(cfgCmdBind))); err != nil {
		return nil, driver.NewOpError(fmt.Sprintf("bind nfqueue %d", num), busy(num, err))
	}
	var flags uint32
	if c.FailOpen {
		flags |= cfgFFailOpen
	}
	err = q.config(configMsg(num, paramsAttr(copyRange), be32Attr(attrCfgMaxLen, c.MaxQueueLen),
		be32Attr(attrCfgMask, cfgFFailOpen), be32Attr(attrCfgFlags, flags)))
	if err != nil {
		return nil, driver.NewOpError(fmt.Sprintf("configure nfqueue %d", num), err)
	}
	q.buf = make([]byte, c.BatchSize*slotSize)
	q.msgs = make([]mmsghdr, c.BatchSize)
	q.iovs = make([]unix.Iovec, c.BatchSize)
	for i := range q.msgs {
		q.iovs[i].Base = &q.buf[i*slotSize]
		q.iovs[i].SetLen(slotSize)
		q.msgs[i].hdr.Iov = &q.iovs[i]
		q.msgs[i].hdr.SetIovlen(1)
	}
	q.pfds = []unix.PollFd{{Fd: int32(q.fd), Events: unix.POLLIN}, {Fd: int32(q.efd), Events: unix.POLLIN}}
	q.verdicts = make([]byte, 0, c.BatchSize*verdictMsgLen)
	q.one[0] = 1 // host byte order on little-endian machines; any nonzero count wakes
	return q, nil
}

// config sends a configuration message and waits for its acknowledgement.
func (q *Queue) config(msg []byte) error {
	if _, err := unix.Write(q.fd, msg); err != nil {
		return err
	}
	b := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(q.fd, b, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for rest := b[:n]; ; {
			typ, body, r, ok := nextMsg(rest)
			if !ok {
				break
			}
			rest = r
			if typ == msgPacket {
				// Queued between the bind and its configuration.
				if id, _, err := parsePacket(body); err != errNoPacket {
					q.accept(id)
				}
				continue
			}
			if typ == nlmsgError {
				if e, ok := msgErrno(body); ok {
					if e != 0 {
						return syscall.Errno(e)
					}
					return nil
				}
			}
		}
	}
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

// ReadBatch implements driver.Queue. One recvmmsg(2) takes up to a batch of
// the kernel's packet messages into the queue's slots; the packets are
// parsed in place. When none is waiting it blocks in poll(2) on the socket
// and the eventfd of Wake and Close.
func (q *Queue) ReadBatch(pkts []driver.Packet) (int, error) {
	max := min(len(pkts), q.batch)
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return 0, driver.ErrClosed
		}
		n, err := q.recv(pkts[:max])
		if n > 0 || (err != nil && err != unix.EAGAIN) {
			q.mu.Unlock()
			if err == unix.EAGAIN {
				err = nil
			}
			return n, err
		}
		if err == nil {
			// Datagrams and no packet among them (error messages).
			q.mu.Unlock()
			continue
		}
		q.reading = true
		q.mu.Unlock()
		woke, perr := q.poll()
		q.mu.Lock()
		q.reading = false
		if q.closed {
			q.closeFDs()
			q.mu.Unlock()
			return 0, driver.ErrClosed
		}
		q.mu.Unlock()
		if woke {
			return 0, nil
		}
		if perr != nil {
			return 0, driver.NewOpError(fmt.Sprintf("poll nfqueue %d", q.num), perr)
		}
	}
}

// poll waits for the socket or the eventfd. woke reports the eventfd's
// (which it drains).
func (q *Queue) poll() (woke bool, err error) {
	for {
		q.pfds[0].Revents, q.pfds[1].Revents = 0, 0
		_, err := unix.Poll(q.pfds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, err
		}
		if q.pfds[1].Revents != 0 {
			_, _ = unix.Read(q.efd, q.efdBuf[:])
			return true, nil
		}
		if q.pfds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 && q.pfds[0].Revents&unix.POLLIN == 0 {
			q.d.idle.Add(1)
		}
		return false, nil
	}
}

// recv runs one non-blocking recvmmsg(2) and parses what it got into pkts.
// It returns unix.EAGAIN when nothing was waiting. Called with mu held.
func (q *Queue) recv(pkts []driver.Packet) (int, error) {
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(q.fd), uintptr(unsafe.Pointer(&q.msgs[0])),
		uintptr(len(pkts)), unix.MSG_DONTWAIT, 0, 0)
	switch errno {
	case 0:
	case unix.EAGAIN, unix.EINTR:
		return 0, unix.EAGAIN
	case unix.ENOBUFS:
		// The kernel could not deliver packets to the socket (they were
		// dropped, or accepted when failing open): counted, survived.
		q.d.overruns.Add(1)
		return 0, nil
	default:
		q.d.rxErrs.Add(1)
		return 0, driver.NewOpError(fmt.Sprintf("recvmmsg on nfqueue %d", q.num), errno)
	}
	n := 0
	for i := 0; i < int(r); i++ {
		m := &q.msgs[i]
		if m.hdr.Flags&unix.MSG_TRUNC != 0 {
			q.d.truncated.Add(1)
		}
		b := q.buf[i*slotSize : i*slotSize+int(min(m.len, slotSize))]
		for {
			typ, body, rest, ok := nextMsg(b)
			if !ok {
				break
			}
			b = rest
			if typ != msgPacket {
				continue // an error message about a verdict (an id gone)
			}
			id, data, err := parsePacket(body)
			if err == errCut || err == errNoPayload {
				// Longer than the copy range, or queued before the
				// copy mode was set: the stack gets it.
				q.d.truncated.Add(1)
				q.accept(id)
				continue
			}
			if err != nil {
				q.d.rxErrs.Add(1)
				continue
			}
			pkts[n] = driver.Packet{Data: data, Link: driver.LinkIP, ID: uint64(id)}
			n++
		}
	}
	return n, nil
}

// accept gives packet id back to the stack at once.
func (q *Queue) accept(id uint32) {
	var b [verdictMsgLen]byte
	_, _ = unix.Write(q.fd, appendVerdict(b[:0], q.num, id, true, false))
}

// Wake implements driver.Waker.
func (q *Queue) Wake() {
	q.mu.Lock()
	if !q.gone {
		_, _ = unix.Write(q.efd, q.one[:])
	}
	q.mu.Unlock()
}

// Release implements driver.Queue: the verdicts of a batch leave in one
// write of concatenated netlink messages, a run of equal verdicts on
// increasing ids as one NFQNL_MSG_VERDICT_BATCH (every packet of the queue
// up to the run's last id: the earlier ones have their verdicts already,
// the later ones are not read yet).
func (q *Queue) Release(pkts []driver.Packet) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		for i := range pkts {
			pkts[i].Data = nil
		}
		return driver.ErrClosed
	}
	v := q.verdicts[:0]
	for i := 0; i < len(pkts); {
		j := i
		for j+1 < len(pkts) && pkts[j+1].Verdict == pkts[i].Verdict && pkts[j+1].ID > pkts[j].ID {
			j++
		}
		v = appendVerdict(v, q.num, uint32(pkts[j].ID), pkts[i].Verdict == driver.VerdictAccept, j > i)
		i = j + 1
	}
	q.verdicts = v
	var err error
	if len(v) > 0 {
		_, err = unix.Write(q.fd, v)
	}
	for i := range pkts {
		pkts[i].Data = nil
	}
	if err != nil {
		return driver.NewOpError(fmt.Sprintf("verdict on nfqueue %d", q.num), err)
	}
	return nil
}

// WriteBatch implements driver.Queue. Each buffer is an IPv4 or IPv6 packet
// with a complete header (the queue's link type is LinkIP); it goes out on
// the raw socket of its family.
func (q *Queue) WriteBatch(bufs [][]byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
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

// Close implements driver.Queue. Closing the netlink socket unbinds the
// queue; the kernel drops the packets still waiting for a verdict.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	if q.reading {
		// Woken, the reader closes the descriptors when it leaves poll.
		_, _ = unix.Write(q.efd, q.one[:])
		return nil
	}
	q.closeFDs()
	return nil
}

// closeFDs closes the descriptors, once. Called with mu held (or before the
// queue is shared).
func (q *Queue) closeFDs() {
	if q.gone {
		return
	}
	q.gone = true
	if q.fd >= 0 {
		unix.Close(q.fd)
	}
	if q.efd >= 0 {
		unix.Close(q.efd)
	}
	if q.raw != nil {
		q.raw.Close()
	}
}
