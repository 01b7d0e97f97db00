package afxdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/localaddr"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/rawsock"
)

// Driver is the AF_XDP driver: the XDP program on the interface and one
// socket (queue) per receive queue.
type Driver struct {
	cfg     Config
	ifindex int
	queues  []*Queue
	prog    *program
	local   *localaddr.Watch

	txErrs    atomic.Uint64
	skip      skipCounters
	injected  atomic.Uint64
	idle      atomic.Uint64
	rxErrs    atomic.Uint64
	proveErrs atomic.Uint64
	zc        bool // the sockets are in zero-copy mode

	closeOnce sync.Once
}

type skipCounters struct {
	truncated, notIP atomic.Uint64
}

// Open loads the XDP program, creates one AF_XDP socket per receive queue,
// puts them in the program's socket map and attaches the program to the
// interface through a BPF link. It must run in the network namespace of
// the interface.
func Open(cfg *Config) (*Driver, error) {
	c := cfg.withDefaults()
	if c.Interface == "" {
		return nil, errors.New("afxdp: an interface is needed")
	}
	if c.Port == 0 {
		return nil, errors.New("afxdp: a port is needed")
	}
	if c.Frames < 8*c.BatchSize || c.Frames&(c.Frames-1) != 0 {
		return nil, fmt.Errorf("afxdp: %d frames: want a power of two of at least 8 times the batch size", c.Frames)
	}
	ifi, err := interfaceByName(c.Interface)
	if err != nil {
		return nil, err
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("afxdp: interface %s has no Ethernet address", c.Interface)
	}
	n := c.Queues
	if n <= 0 {
		n = rxQueues(c.Interface)
	}
	if n > maxQueues {
		return nil, fmt.Errorf("afxdp: %d queues: at most %d", n, maxQueues)
	}
	d := &Driver{cfg: c, ifindex: ifi.Index}
	if d.prog, err = loadProgram(c.Port, c.Proven); err != nil {
		return nil, err
	}
	if err := d.prog.setLists(c.Allow, c.Deny); err != nil {
		d.Close()
		return nil, err
	}
	if c.OnDemand {
		if err := d.SetEngaged(false); err != nil {
			d.Close()
			return nil, err
		}
	}
	if d.local, err = localaddr.New(d.prog.syncLocals); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.prog.syncErr(); err != nil {
		d.Close()
		return nil, err
	}
	for i := 0; i < n; i++ {
		q, err := d.openQueue(i)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.queues = append(d.queues, q)
	}
	if err := d.prog.attach(d.ifindex, c.Mode); err != nil {
		d.Close()
		return nil, err
	}
	c.logger().Info("afxdp: XDP program attached", "interface", c.Interface, "mode", d.prog.mode.String(),
		"queues", n, "zerocopy", d.zc, "proven_clients", c.Proven != nil)
	return d, nil
}

const maxQueues = 256 // the program's socket map

func interfaceByName(name string) (*net.Interface, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, driver.NewOpError("find interface "+name, err)
	}
	return ifi, nil
}

// rxQueues returns the number of receive queues of the interface (at least
// 1): its channels (ETHTOOL_GCHANNELS, the rx and combined ones), or where
// the driver has no channels to tell (a bridge), the queues sysfs lists.
func rxQueues(iface string) int {
	if n := ethtoolRxQueues(iface); n > 0 {
		return n
	}
	m, _ := filepath.Glob(filepath.Join("/sys/class/net", iface, "queues", "rx-*"))
	return max(len(m), 1)
}

// ethtoolChannels is struct ethtool_channels.
type ethtoolChannels struct {
	Cmd                                    uint32
	MaxRx, MaxTx, MaxOther, MaxCombined    uint32
	RxCount, TxCount, OtherCount, Combined uint32
}

// ifreqData is struct ifreq with a pointer in its union (ifr_data).
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

func ethtoolRxQueues(iface string) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	if len(iface) >= unix.IFNAMSIZ {
		return 0
	}
	ch := &ethtoolChannels{Cmd: unix.ETHTOOL_GCHANNELS}
	ifr := &ifreqData{data: unsafe.Pointer(ch)}
	copy(ifr.name[:], iface)
	_, _, e := syscall.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(ifr)))
	runtime.KeepAlive(ch)
	if e != 0 {
		return 0
	}
	return int(ch.RxCount + ch.Combined)
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return "afxdp" }

// Mode returns the mode the XDP program runs in.
func (d *Driver) Mode() Mode { return d.prog.mode }

// Queues implements driver.Driver.
func (d *Driver) Queues() []driver.Queue {
	qs := make([]driver.Queue, len(d.queues))
	for i, q := range d.queues {
		qs[i] = q
	}
	return qs
}

// Stats implements driver.Driver. Overruns are the frames the kernel could
// not put on a socket's full RX ring or found no buffer for on its fill
// ring (XDP_STATISTICS), the proven sockets' included.
func (d *Driver) Stats() driver.DriverStats {
	var over uint64
	for _, q := range d.queues {
		f, p := q.overruns()
		over += f + p
	}
	return driver.DriverStats{Overruns: over, TxErrors: d.txErrs.Load(), RxErrors: d.rxErrs.Load(),
		IdleWakeups: d.idle.Load(), Skipped: driver.SkipStats{Truncated: d.skip.truncated.Load(), NotIP: d.skip.notIP.Load()}}
}

// Counters are the driver's own counters beyond driver.DriverStats.
type Counters struct {
	// Program are the XDP program's counters.
	Program ProgramCounters
	// Injected counts packets given back to the kernel stack on a raw
	// socket (handshake ACKs, with any data they carry, and segments that
	// arrived before their socket existed).
	Injected uint64
	// IdleWakeups counts the returns from poll(2) with neither a frame
	// nor a wake-up.
	IdleWakeups uint64
	// Mode is the mode the program runs in.
	Mode Mode
	// ZeroCopy says whether the sockets share the driver's buffers
	// (zero-copy) or have the frames copied (copy mode).
	ZeroCopy bool
	// ProvenPackets counts the segments of proven sources the program
	// sent to the proven sockets (Config.Proven; Program.Proven).
	ProvenPackets uint64
	// ProvenOverruns counts the frames of proven sources the kernel could
	// not put on a proven socket's RX ring (full, or no buffer on the
	// shared fill ring): the proven sockets' part of Stats().Overruns.
	ProvenOverruns uint64
	// ProveErrors counts the failed updates of Prove.
	ProveErrors uint64
}

// Counters returns the driver's own counters.
func (d *Driver) Counters() Counters {
	c := Counters{Program: d.prog.counts(), Injected: d.injected.Load(), IdleWakeups: d.idle.Load(),
		Mode: d.prog.mode, ZeroCopy: d.zc, ProveErrors: d.proveErrs.Load()}
	c.ProvenPackets, c.ProvenOverruns = c.Program.Proven, d.ProvenOverruns()
	return c
}

// Close implements driver.Driver: it detaches the program and closes the
// sockets.
func (d *Driver) Close() error {
	var errs []error
	d.closeOnce.Do(func() {
		// The watch first: its goroutine updates the program's maps
		// until Close returns.
		if d.local != nil {
			d.local.Close()
		}
		if d.prog != nil {
			errs = append(errs, d.prog.close())
		}
	})
	for _, q := range d.queues {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}

// Queue is one receive queue's AF_XDP socket and its UMEM, and with
// Config.Proven the proven sources' socket, which shares them.
type Queue struct {
	d     *Driver
	id    int
	batch int
	busy  bool

	// mu is held from a successful ReadBatch until its Release, and by
	// Close while it unmaps the rings.
	mu      sync.Mutex
	statsMu sync.Mutex
	closed  atomic.Bool
	woken   atomic.Bool
	once    sync.Once
	inBatch bool

	fd, efd int
	pfd     int // the proven sources' socket, or -1
	pfds    [3]unix.PollFd
	npfds   int

	umem  []byte
	rmaps [5][]byte // the rings' mappings: fill, completion, RX, TX, proven RX

	fill, comp addrRing
	rx, tx     descRing
	prx        descRing // the proven socket's RX ring

	txFree []uint64 // transmit frames not on the TX ring
	back   []uint64 // receive frames to return to the fill ring
	over   atomic.Uint64
	pover  atomic.Uint64

	inj *rawsock.IP
}

func (d *Driver) openQueue(id int) (q *Queue, err error) {
	c := &d.cfg
	q = &Queue{d: d, id: id, batch: c.BatchSize, busy: c.BusyPoll, fd: -1, efd: -1, pfd: -1,
		txFree: make([]uint64, 0, c.Frames/8), back: make([]uint64, 0, c.Frames)}
	defer func() {
		if err != nil {
			q.release()
		}
	}()
	if q.fd, err = unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
		return nil, driver.NewOpError("open AF_XDP socket", err)
	}
	if q.umem, err = unix.Mmap(-1, 0, c.Frames*frameSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE); err != nil {
		return nil, driver.NewOpError("mmap UMEM", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&q.umem[0]))), Len: uint64(len(q.umem)), Size: frameSize}
	if err := setsockopt(q.fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return nil, driver.NewOpError("register UMEM", err)
	}
	// An eighth of the frames transmit (SYN-ACKs leave as fast as they are
	// written: the TX ring holds a few batches at most), the rest receive:
	// the fill and RX rings have a slot for each frame, so a flood's
	// bursts wait in the ring rather than being dropped. With proven
	// clients the RX ring has half as many (and the proven socket's a
	// quarter): full, they leave the fill ring an eighth of the frames,
	// so that the flood cannot take the proven sources' buffers.
	txN := c.Frames / 8
	rxN := c.Frames - txN
	rxRing := c.Frames
	if c.Proven != nil {
		rxRing = c.Frames / 2
	}
	sizes := map[int]int{unix.XDP_UMEM_FILL_RING: c.Frames, unix.XDP_RX_RING: rxRing,
		unix.XDP_UMEM_COMPLETION_RING: txN, unix.XDP_TX_RING: txN}
	for _, o := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING, unix.XDP_TX_RING} {
		if err := unix.SetsockoptInt(q.fd, unix.SOL_XDP, o, sizes[o]); err != nil {
			return nil, driver.NewOpError("size AF_XDP ring", err)
		}
	}
	var off unix.XDPMmapOffsets
	if err := getsockopt(q.fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return nil, driver.NewOpError("XDP_MMAP_OFFSETS", err)
	}
	mp := func(i int, o unix.XDPRingOffset, pgoff int64, n int, entry uintptr) ([]byte, error) {
		m, err := unix.Mmap(q.fd, pgoff, int(o.Desc)+n*int(entry), unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return nil, driver.NewOpError("mmap AF_XDP ring", err)
		}
		q.rmaps[i] = m
		return m, nil
	}
	all, tn := uint32(c.Frames), uint32(txN)
	m, err := mp(0, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, c.Frames, 8)
	if err != nil {
		return nil, err
	}
	q.fill.ring, q.fill.addrs = ringAt[uint64](m, off.Fr.Producer, off.Fr.Consumer, off.Fr.Flags, off.Fr.Desc, all)
	if m, err = mp(1, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, txN, 8); err != nil {
		return nil, err
	}
	q.comp.ring, q.comp.addrs = ringAt[uint64](m, off.Cr.Producer, off.Cr.Consumer, off.Cr.Flags, off.Cr.Desc, tn)
	if m, err = mp(2, off.Rx, unix.XDP_PGOFF_RX_RING, rxRing, unsafe.Sizeof(desc{})); err != nil {
		return nil, err
	}
	q.rx.ring, q.rx.descs = ringAt[desc](m, off.Rx.Producer, off.Rx.Consumer, off.Rx.Flags, off.Rx.Desc, uint32(rxRing))
	if m, err = mp(3, off.Tx, unix.XDP_PGOFF_TX_RING, txN, unsafe.Sizeof(desc{})); err != nil {
		return nil, err
	}
	q.tx.ring, q.tx.descs = ringAt[desc](m, off.Tx.Producer, off.Tx.Consumer, off.Tx.Flags, off.Tx.Desc, tn)

	// The first frames receive, the last txN transmit.
	i := q.fill.reserve(q.fill.free(uint32(rxN)))
	for f := 0; f < rxN; f++ {
		*q.fill.at(i + uint32(f)) = uint64(f * frameSize)
	}
	q.fill.submit()
	for f := rxN; f < c.Frames; f++ {
		q.txFree = append(q.txFree, uint64(f*frameSize))
	}
	if c.BusyPoll {
		preferBusyPoll(q.fd, c.BatchSize)
	}
	if err := unix.Bind(q.fd, &unix.SockaddrXDP{Flags: unix.XDP_USE_NEED_WAKEUP, Ifindex: uint32(d.ifindex), QueueID: uint32(id)}); err != nil {
		return nil, driver.NewOpError(fmt.Sprintf("bind AF_XDP socket to %s queue %d", c.Interface, id), err)
	}
	var opts uint32
	if getsockopt(q.fd, unix.XDP_OPTIONS, unsafe.Pointer(&opts), 4) == nil && opts&unix.XDP_OPTIONS_ZEROCOPY != 0 {
		d.zc = true
	}
	if err := d.prog.setSocket(id, q.fd); err != nil {
		return nil, err
	}
	if c.Proven != nil {
		if err := q.openProven(c.Frames / 4); err != nil {
			return nil, err
		}
	}
	if q.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, driver.NewOpError("eventfd", err)
	}
	q.pfds = [3]unix.PollFd{{Fd: int32(q.fd), Events: unix.POLLIN}, {Fd: int32(q.efd), Events: unix.POLLIN}}
	q.npfds = 2
	if q.pfd >= 0 {
		q.pfds[2] = unix.PollFd{Fd: int32(q.pfd), Events: unix.POLLIN}
		q.npfds = 3
	}
	if q.inj, err = rawsock.OpenIP(c.BatchSize, 0); err != nil {
		return nil, err
	}
	return q, nil
}

// openProven opens the proven sources' socket of the queue: bound to the
// same interface and queue with XDP_SHARED_UMEM, it uses the first
// socket's UMEM, fill and completion rings (a socket sharing a queue's
// UMEM must not have rings of its own for them) and has only an RX ring,
// of n slots.
func (q *Queue) openProven(n int) (err error) {
	d := q.d
	if q.pfd, err = unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
		return driver.NewOpError("open the proven AF_XDP socket", err)
	}
	if err := unix.SetsockoptInt(q.pfd, unix.SOL_XDP, unix.XDP_RX_RING, n); err != nil {
		return driver.NewOpError("size the proven AF_XDP ring", err)
	}
	var off unix.XDPMmapOffsets
	if err := getsockopt(q.pfd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return driver.NewOpError("XDP_MMAP_OFFSETS", err)
	}
	m, err := unix.Mmap(q.pfd, unix.XDP_PGOFF_RX_RING, int(off.Rx.Desc)+n*int(unsafe.Sizeof(desc{})),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return driver.NewOpError("mmap the proven AF_XDP ring", err)
	}
	q.rmaps[4] = m
	q.prx.ring, q.prx.descs = ringAt[desc](m, off.Rx.Producer, off.Rx.Consumer, off.Rx.Flags, off.Rx.Desc, uint32(n))
	if q.busy {
		preferBusyPoll(q.pfd, q.batch)
	}
	sa := &unix.SockaddrXDP{Flags: unix.XDP_SHARED_UMEM, Ifindex: uint32(d.ifindex), QueueID: uint32(q.id),
		SharedUmemFD: uint32(q.fd)}
	if err := unix.Bind(q.pfd, sa); err != nil {
		return driver.NewOpError(fmt.Sprintf("bind the proven AF_XDP socket to %s queue %d", d.cfg.Interface, q.id), err)
	}
	return d.prog.setProvenSocket(q.id, q.pfd)
}

// preferBusyPoll asks the kernel to busy-poll socket fd's queue, budget
// packets at a time. Best effort: kernels before 5.11 lack the preference.
func preferBusyPoll(fd, budget int) {
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PREFER_BUSY_POLL, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, 20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL_BUDGET, budget)
}

func setsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, e := syscall.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	l := uint32(size)
	_, _, e := syscall.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p),
		uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// ReadBatch implements driver.Queue: it takes the frames on the RX rings,
// the proven socket's first, with no system call while frames are
// waiting; it blocks in poll(2) (or spins, with BusyPoll) only when the
// rings are empty. The frames stay the engine's until Release returns them
// to the fill ring.
func (q *Queue) ReadBatch(pkts []driver.Packet) (int, error) {
	q.mu.Lock()
	max := min(len(pkts), q.batch)
	for {
		if q.closed.Load() {
			q.mu.Unlock()
			return 0, driver.ErrClosed
		}
		if q.woken.Swap(false) {
			q.mu.Unlock()
			return 0, nil
		}
		n, proven := 0, 0
		if q.pfd >= 0 {
			n, proven = q.take(&q.prx, pkts[:max], 0)
		}
		n, got := q.take(&q.rx, pkts[:max], n)
		if proven+got == 0 {
			q.wait()
			continue
		}
		q.refill()
		if n == 0 {
			continue
		}
		q.inBatch = true
		return n, nil // q.mu stays held until Release
	}
}

// take moves the frames on RX ring r into pkts from pkts[n] on, as many
// as fit, and returns the new n and how many descriptors it took (the
// frames that are not IP go back to the fill ring).
func (q *Queue) take(r *descRing, pkts []driver.Packet, n int) (int, int) {
	got := r.avail(uint32(len(pkts) - n))
	if got == 0 {
		return n, 0
	}
	idx := r.cachedCons
	for i := uint32(0); i < got; i++ {
		dsc := r.at(idx + i)
		if data, ok := q.frame(dsc); ok {
			pkts[n] = driver.Packet{Data: data, Link: driver.LinkEthernet, ID: dsc.Addr}
			n++
		} else {
			q.back = append(q.back, dsc.Addr)
		}
	}
	r.release(got)
	return n, int(got)
}

// wait blocks until the RX ring has frames or the queue is woken. The
// kernel is asked to fill the ring again (poll(2) does it) when it set the
// fill ring's need-wakeup flag.
func (q *Queue) wait() {
	if q.txPending() != 0 {
		q.kickTx() // what a full device queue left
	}
	if q.busy {
		if q.fill.needWakeup() {
			_, _, _ = unix.Recvfrom(q.fd, nil, unix.MSG_DONTWAIT)
		}
		return
	}
	_, err := unix.Poll(q.pfds[:q.npfds], -1)
	if err != nil && err != unix.EINTR {
		q.d.rxErrs.Add(1)
		return
	}
	if q.pfds[1].Revents != 0 {
		var b [8]byte
		_, _ = unix.Read(q.efd, b[:])
	} else if q.rx.avail(1) == 0 && (q.pfd < 0 || q.prx.avail(1) == 0) {
		q.d.idle.Add(1)
	}
	if (q.pfds[0].Revents|q.pfds[2].Revents)&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
		q.d.rxErrs.Add(1)
	}
}

// frame returns the Ethernet frame of RX descriptor dsc.
func (q *Queue) frame(dsc *desc) ([]byte, bool) {
	end := dsc.Addr + uint64(dsc.Len)
	if dsc.Len < ethLen+20 || end > uint64(len(q.umem)) {
		q.d.skip.truncated.Add(1)
		return nil, false
	}
	f := q.umem[dsc.Addr:end:end]
	if et := binary.BigEndian.Uint16(f[12:]); et != 0x0800 && et != 0x86dd {
		q.d.skip.notIP.Add(1)
		return nil, false
	}
	completeChecksum(f)
	return f, true
}

// refill puts the frames in q.back on the fill ring. There is always room:
// the ring has a slot for every receive frame.
func (q *Queue) refill() {
	if len(q.back) == 0 {
		return
	}
	n := q.fill.free(uint32(len(q.back)))
	i := q.fill.reserve(n)
	for j := uint32(0); j < n; j++ {
		*q.fill.at(i + j) = q.back[j] &^ (frameSize - 1)
	}
	q.fill.submit()
	q.back = append(q.back[:0], q.back[n:]...)
}

// Release implements driver.Queue: the packets the engine accepted go to
// the kernel stack, re-injected on a raw IP socket (the XDP program took
// them from it: handshake ACKs, with the data they carry, and segments that
// arrived before their socket existed), and every frame goes back to the
// fill ring.
func (q *Queue) Release(pkts []driver.Packet) error {
	if !q.inBatch {
		return nil
	}
	for i := range pkts {
		p := &pkts[i]
		if p.Verdict == driver.VerdictAccept && len(p.Data) >= ethLen+20 {
			q.inj.Add(p.Data[ethLen:])
		}
		q.back = append(q.back, p.ID)
		p.Data = nil
	}
	var err error
	if q.inj.Len() > 0 {
		sent, _, e := q.inj.Flush()
		q.d.injected.Add(uint64(sent))
		err = driver.NewOpError("re-inject on raw socket", e)
	}
	q.refill()
	q.inBatch = false
	q.mu.Unlock()
	return err
}

// WriteBatch implements driver.Queue: the buffers are whole Ethernet frames,
// copied into transmit frames of the UMEM and put on the TX ring, with one
// sendto(2) per batch when the kernel asks for a wake-up (always in copy
// mode).
func (q *Queue) WriteBatch(bufs [][]byte) (int, error) {
	if !q.inBatch {
		q.mu.Lock()
		defer q.mu.Unlock()
	}
	if q.closed.Load() {
		return 0, driver.ErrClosed
	}
	q.complete()
	queued := uint32(0)
	n := q.tx.free(uint32(len(bufs)))
	idx := q.tx.cachedProd
	for _, b := range bufs {
		if len(b) < ethLen || len(b) > frameSize {
			q.d.txErrs.Add(1)
			continue
		}
		if queued == n || len(q.txFree) == 0 {
			q.d.txErrs.Add(1) // the ring is full
			continue
		}
		a := q.txFree[len(q.txFree)-1]
		q.txFree = q.txFree[:len(q.txFree)-1]
		copy(q.umem[a:a+frameSize], b)
		*q.tx.at(idx + queued) = desc{Addr: a, Len: uint32(len(b))}
		queued++
	}
	if queued == 0 {
		return 0, nil
	}
	q.tx.reserve(queued)
	q.tx.submit()
	return int(queued), q.kickTx()
}

// kickTx has the kernel send what the TX ring holds. In copy mode a
// sendto(2) sends at most a budget of frames (32) and says EAGAIN while
// more are left: it is called again until the ring is empty, so that no
// SYN-ACK waits for the next batch. A full device queue (EBUSY, ENOBUFS)
// leaves the rest for the next call; the next ReadBatch calls it again
// before it sleeps.
func (q *Queue) kickTx() error {
	if q.d.zc && !q.tx.needWakeup() {
		return nil
	}
	for i := 0; i < maxKicks; i++ {
		_, _, errno := syscall.Syscall6(unix.SYS_SENDTO, uintptr(q.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			if q.txPending() == 0 {
				return nil
			}
		case unix.EAGAIN, unix.EINTR:
			// More to send.
		case unix.EBUSY, unix.ENOBUFS, unix.ENETDOWN:
			return nil
		default:
			return driver.NewOpError("kick AF_XDP transmit", errno)
		}
	}
	return nil
}

// maxKicks bounds the sendto(2) calls of one kickTx: the ring's worth of
// budgets, and some.
const maxKicks = 128

// txPending returns the frames on the TX ring the kernel has not taken yet.
func (q *Queue) txPending() uint32 {
	return q.tx.cachedProd - atomic.LoadUint32(q.tx.consumer)
}

// complete takes the transmit frames the kernel is done with back from the
// completion ring.
func (q *Queue) complete() {
	n := q.comp.avail(q.comp.size)
	if n == 0 {
		return
	}
	i := q.comp.cachedCons
	for j := uint32(0); j < n; j++ {
		q.txFree = append(q.txFree, *q.comp.at(i + j))
	}
	q.comp.release(n)
}

// Wake makes a blocked (or the next) ReadBatch return 0, nil, so that the
// engine can run its timers on an idle queue. It may be called from any
// goroutine (it implements driver.Waker).
func (q *Queue) Wake() {
	q.woken.Store(true)
	q.kick()
}

func (q *Queue) kick() {
	q.statsMu.Lock()
	defer q.statsMu.Unlock()
	if q.efd >= 0 {
		one := [8]byte{1}
		_, _ = unix.Write(q.efd, one[:])
	}
}

// BatchSize implements driver.Queue.
func (q *Queue) BatchSize() int { return q.batch }

// Close implements driver.Queue. It wakes a ReadBatch blocked in poll,
// waits until the worker is out of its batch, then closes the socket and
// unmaps its memory.
func (q *Queue) Close() error {
	q.once.Do(func() {
		q.closed.Store(true)
		q.kick()
		q.mu.Lock()
		q.overruns()
		q.release()
		q.mu.Unlock()
	})
	return nil
}

// overruns returns the sockets' counts of frames lost for want of room on
// their RX ring or of buffers on the fill ring: the first socket's
// (flood) and the proven socket's; the last counts stay once the sockets
// are closed.
func (q *Queue) overruns() (flood, proven uint64) {
	q.statsMu.Lock()
	defer q.statsMu.Unlock()
	read := func(fd int, to *atomic.Uint64) {
		if fd < 0 {
			return
		}
		var st unix.XDPStatistics
		if getsockopt(fd, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st)) == nil {
			to.Store(st.Rx_dropped + st.Rx_ring_full)
		}
	}
	read(q.fd, &q.over)
	read(q.pfd, &q.pover)
	return q.over.Load(), q.pover.Load()
}

func (q *Queue) release() {
	q.statsMu.Lock()
	defer q.statsMu.Unlock()
	// The sockets first: they leave the program's maps and stop using
	// the rings and the UMEM (the proven one shares the first's).
	for _, fd := range []*int{&q.pfd, &q.fd, &q.efd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	for i, m := range q.rmaps {
		if m != nil {
			unix.Munmap(m)
			q.rmaps[i] = nil
		}
	}
	if q.umem != nil {
		unix.Munmap(q.umem)
		q.umem = nil
	}
	if q.inj != nil {
		q.inj.Close()
		q.inj = nil
	}
}

// Driver serves proven clients first itself (Config.Proven).
var _ driver.Prover = (*Driver)(nil)
