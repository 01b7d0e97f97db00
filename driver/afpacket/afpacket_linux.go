package afpacket

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// Driver is the AF_PACKET driver: one queue per worker.
type Driver struct {
	cfg     Config
	ifindex int
	mac     [6]byte
	queues  []*Queue

	txErrs   atomic.Uint64
	drops    atomic.Uint64 // ring overruns reported by the kernel
	skipped  atomic.Uint64 // frames not served (truncated, tagged, not IP)
	injected atomic.Uint64 // packets given back to the stack
	txRing   bool
}

// Open creates the workers' sockets and rings, attaches the filter, binds
// them to the interface and joins them in one fanout group. It must run in
// the network namespace of the interface.
func Open(cfg *Config) (*Driver, error) {
	c := cfg.withDefaults()
	if c.Interface == "" {
		return nil, errors.New("afpacket: an interface is needed")
	}
	if c.Port == 0 {
		return nil, errors.New("afpacket: a port is needed")
	}
	ps := os.Getpagesize()
	if c.BlockSize%ps != 0 || c.BlockSize < 128<<10 {
		return nil, fmt.Errorf("afpacket: block size %d is not a multiple of the page size or below 128 KiB", c.BlockSize)
	}
	if c.Workers > 256 {
		return nil, errors.New("afpacket: at most 256 workers")
	}
	ifi, err := net.InterfaceByName(c.Interface)
	if err != nil {
		return nil, driver.NewOpError("find interface "+c.Interface, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("afpacket: interface %s has no Ethernet address", c.Interface)
	}
	d := &Driver{cfg: c, ifindex: ifi.Index, txRing: !c.SendMMsg}
	copy(d.mac[:], ifi.HardwareAddr)
	group := c.FanoutGroup
	if group == 0 {
		group = uint16(os.Getpid())
	}
	for i := 0; i < c.Workers; i++ {
		q, err := d.openQueue(group)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.queues = append(d.queues, q)
	}
	return d, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return "afpacket" }

// Queues implements driver.Driver.
func (d *Driver) Queues() []driver.Queue {
	qs := make([]driver.Queue, len(d.queues))
	for i, q := range d.queues {
		qs[i] = q
	}
	return qs
}

// Stats implements driver.Driver. Overruns are the packets the kernel could
// not put into a full ring (PACKET_STATISTICS).
func (d *Driver) Stats() driver.DriverStats {
	for _, q := range d.queues {
		q.pollStats()
	}
	return driver.DriverStats{Overruns: d.drops.Load(), TxErrors: d.txErrs.Load()}
}

// Counters are the driver's own counters beyond driver.DriverStats.
type Counters struct {
	// Skipped counts frames the driver did not hand to the engine:
	// truncated, VLAN-tagged or not IPv4/IPv6.
	Skipped uint64
	// Injected counts packets given back to the kernel stack on a raw
	// socket (handshake ACKs and segments that arrived before their
	// socket existed).
	Injected uint64
	// TxRing says whether transmission uses the mmap'd ring (true) or
	// sendmmsg (false).
	TxRing bool
}

// Counters returns the driver's own counters.
func (d *Driver) Counters() Counters {
	return Counters{Skipped: d.skipped.Load(), Injected: d.injected.Load(), TxRing: d.txRing}
}

// Close implements driver.Driver.
func (d *Driver) Close() error {
	var errs []error
	for _, q := range d.queues {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// seen remembers, per flow, when the driver first gave one of its packets
// back to the stack: the socket of the flow existed from then on.
type seen struct {
	key   uint64
	since int64 // CLOCK_REALTIME ns
}

const seenSlots = 4096

const (
	ethLen    = 14
	tx2Off    = 32 // TPACKET2_HDRLEN - sizeof(struct sockaddr_ll): frame data offset
	txFrameSz = 2048
	txBlockSz = 64 << 10
)

// Queue is one worker's socket pair: a receive ring in the fanout group and
// a transmit ring.
type Queue struct {
	d     *Driver
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

	fd, txfd, efd int
	fd4, fd6      int

	// receive ring
	rx        []byte
	blockSize int
	blocks    int
	cur       int  // current block
	held      bool // current block belongs to userspace
	left      int  // packets of the current block not yet read
	pktOff    int  // offset of the next packet in the current block
	pfds      [2]unix.PollFd
	offs      []int // ring offsets of the current batch's tpacket3_hdr
	nBatch    int
	match     int

	// transmit ring (or sendmmsg scratch)
	tx       []byte
	txFrames int
	txCur    int
	msgs     []mmsghdr
	iovs     []unix.Iovec
	eth      []byte
	lastDst  [6]byte
	haveLast bool
	neighs   []neigh

	// re-injection into the stack
	rmsgs []mmsghdr
	riovs []unix.Iovec
	sa4   []unix.RawSockaddrInet4
	sa6   []unix.RawSockaddrInet6
	seen  []seen
}

func (d *Driver) openQueue(group uint16) (q *Queue, err error) {
	c := &d.cfg
	q = &Queue{d: d, batch: c.BatchSize, busy: c.BusyPoll, fd: -1, txfd: -1, efd: -1, fd4: -1, fd6: -1,
		blockSize: c.BlockSize, blocks: c.Blocks, offs: make([]int, c.BatchSize),
		msgs: make([]mmsghdr, c.BatchSize), iovs: make([]unix.Iovec, 2*c.BatchSize), eth: make([]byte, ethLen*c.BatchSize),
		rmsgs: make([]mmsghdr, c.BatchSize), riovs: make([]unix.Iovec, c.BatchSize),
		sa4: make([]unix.RawSockaddrInet4, c.BatchSize), sa6: make([]unix.RawSockaddrInet6, c.BatchSize),
		seen: make([]seen, seenSlots), neighs: make([]neigh, neighSlots)}
	defer func() {
		if err != nil {
			q.release()
		}
	}()
	if err := q.openRx(group); err != nil {
		return nil, err
	}
	if err := q.openTx(); err != nil {
		return nil, err
	}
	if q.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, driver.NewOpError("eventfd", err)
	}
	q.pfds = [2]unix.PollFd{{Fd: int32(q.fd), Events: unix.POLLIN | unix.POLLERR}, {Fd: int32(q.efd), Events: unix.POLLIN}}
	if q.fd4, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
		return nil, driver.NewOpError("open raw IPv4 socket", err)
	}
	if q.fd6, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
		return nil, driver.NewOpError("open raw IPv6 socket", err)
	}
	_ = unix.SetsockoptInt(q.fd6, unix.IPPROTO_IPV6, unix.IPV6_HDRINCL, 1)
	return q, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (q *Queue) openRx(group uint16) error {
	c := &q.d.cfg
	var err error
	// Protocol 0: nothing is received until bind, after ring and filter.
	if q.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
		return driver.NewOpError("open AF_PACKET socket", err)
	}
	if err := unix.SetsockoptInt(q.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return driver.NewOpError("PACKET_VERSION TPACKET_V3", err)
	}
	tov := uint32(c.BlockTimeout.Milliseconds())
	if tov == 0 {
		tov = 1
	}
	req := unix.TpacketReq3{Block_size: uint32(q.blockSize), Block_nr: uint32(q.blocks),
		Frame_size: txFrameSz, Frame_nr: uint32(q.blockSize / txFrameSz * q.blocks), Retire_blk_tov: tov}
	if err := unix.SetsockoptTpacketReq3(q.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return driver.NewOpError("PACKET_RX_RING", err)
	}
	if q.rx, err = unix.Mmap(q.fd, 0, q.blockSize*q.blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return driver.NewOpError("mmap receive ring", err)
	}
	filter := portFilter(c.Port)
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(q.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return driver.NewOpError("attach BPF filter", err)
	}
	// Kernels before 4.20 lack it; the filter's port match keeps our own
	// replies (source port = the protected port) out anyway.
	_ = unix.SetsockoptInt(q.fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	if err := unix.Bind(q.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: q.d.ifindex}); err != nil {
		return driver.NewOpError("bind AF_PACKET socket to "+c.Interface, err)
	}
	mode := unix.PACKET_FANOUT_HASH
	if c.FanoutCPU {
		mode = unix.PACKET_FANOUT_CPU
	}
	if c.Defrag {
		mode |= unix.PACKET_FANOUT_FLAG_DEFRAG
	}
	if err := unix.SetsockoptInt(q.fd, unix.SOL_PACKET, unix.PACKET_FANOUT, int(group)|mode<<16); err != nil {
		return driver.NewOpError(fmt.Sprintf("join fanout group %d", group), err)
	}
	return nil
}

func (q *Queue) openTx() error {
	c := &q.d.cfg
	var err error
	if q.txfd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
		return driver.NewOpError("open AF_PACKET transmit socket", err)
	}
	_ = unix.SetsockoptInt(q.txfd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	_ = unix.SetsockoptInt(q.txfd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	if q.d.txRing {
		if err := q.setupTxRing(c.TxFrames); err != nil {
			// sendmmsg it is.
			q.d.txRing = false
		}
	}
	if err := unix.Bind(q.txfd, &unix.SockaddrLinklayer{Protocol: 0, Ifindex: q.d.ifindex}); err != nil {
		return driver.NewOpError("bind AF_PACKET transmit socket to "+c.Interface, err)
	}
	return nil
}

func (q *Queue) setupTxRing(frames int) error {
	if err := unix.SetsockoptInt(q.txfd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return err
	}
	// A frame the kernel cannot send is marked and skipped, not retried.
	_ = unix.SetsockoptInt(q.txfd, unix.SOL_PACKET, unix.PACKET_LOSS, 1)
	per := txBlockSz / txFrameSz
	blocks := (frames + per - 1) / per
	req := unix.TpacketReq{Block_size: txBlockSz, Block_nr: uint32(blocks), Frame_size: txFrameSz, Frame_nr: uint32(blocks * per)}
	if err := unix.SetsockoptTpacketReq(q.txfd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		return err
	}
	m, err := unix.Mmap(q.txfd, 0, blocks*txBlockSz, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return err
	}
	q.tx, q.txFrames = m, blocks*per
	return nil
}

// block status word of block b: tpacket_block_desc.hdr.bh1.block_status.
func (q *Queue) blockStatus(b int) *uint32 {
	return (*uint32)(unsafe.Pointer(&q.rx[b*q.blockSize+8]))
}

func (q *Queue) hdr(off int) *unix.Tpacket3Hdr {
	return (*unix.Tpacket3Hdr)(unsafe.Pointer(&q.rx[off]))
}

// ReadBatch implements driver.Queue. It takes the packets of one ring block
// at a time; it blocks in poll(2) (or spins, with BusyPoll) only when no
// block is ready.
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
		if !q.held {
			st := atomic.LoadUint32(q.blockStatus(q.cur))
			if st&unix.TP_STATUS_USER == 0 {
				if q.busy {
					continue
				}
				_, err := unix.Poll(q.pfds[:], -1)
				if err != nil && err != unix.EINTR {
					q.mu.Unlock()
					return 0, driver.NewOpError("poll AF_PACKET ring", err)
				}
				if q.pfds[1].Revents != 0 {
					var b [8]byte
					_, _ = unix.Read(q.efd, b[:])
				}
				continue
			}
			base := q.cur * q.blockSize
			q.held = true
			q.left = int(*(*uint32)(unsafe.Pointer(&q.rx[base+12])))
			q.pktOff = int(*(*uint32)(unsafe.Pointer(&q.rx[base+16])))
		}
		n := 0
		base := q.cur * q.blockSize
		for q.left > 0 && n < max {
			off := base + q.pktOff
			h := q.hdr(off)
			q.left--
			q.pktOff += int(h.Next_offset)
			if data, ok := q.frame(off, h); ok {
				q.offs[n] = off
				pkts[n] = driver.Packet{Data: data, ID: uint64(off)}
				n++
			}
		}
		if n == 0 {
			q.releaseBlock()
			continue
		}
		q.nBatch, q.match, q.inBatch = n, 0, true
		return n, nil // q.mu stays held until Release
	}
}

func (q *Queue) releaseBlock() {
	if q.held && q.left == 0 {
		atomic.StoreUint32(q.blockStatus(q.cur), unix.TP_STATUS_KERNEL)
		q.held = false
		q.cur = (q.cur + 1) % q.blocks
	}
}

// frame returns the layer-3 packet of the frame at off.
func (q *Queue) frame(off int, h *unix.Tpacket3Hdr) ([]byte, bool) {
	if h.Status&unix.TP_STATUS_VLAN_VALID != 0 || h.Snaplen != h.Len || h.Snaplen < ethLen+20 {
		q.d.skipped.Add(1)
		return nil, false
	}
	mac := off + int(h.Mac)
	end := mac + int(h.Snaplen)
	if end > len(q.rx) {
		q.d.skipped.Add(1)
		return nil, false
	}
	et := uint16(q.rx[mac+12])<<8 | uint16(q.rx[mac+13])
	if et != 0x0800 && et != 0x86dd {
		q.d.skipped.Add(1)
		return nil, false
	}
	l3 := q.rx[mac+ethLen : end : end]
	if h.Status&unix.TP_STATUS_CSUMNOTREADY != 0 {
		completeChecksum(l3)
	}
	return l3, true
}

// Release implements driver.Queue: packets the engine accepted go back to
// the kernel stack (see the package documentation), and the block returns
// to the kernel once all its packets are released.
func (q *Queue) Release(pkts []driver.Packet) error {
	if !q.inBatch {
		return nil
	}
	err := q.reinject(pkts)
	for i := range pkts {
		pkts[i].Data = nil
	}
	q.releaseBlock()
	q.inBatch, q.nBatch = false, 0
	q.mu.Unlock()
	return err
}

func realtimeNS() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &ts)
	return ts.Nano()
}

// flowKey hashes the client's address and both ports of an IP packet.
func flowKey(b []byte) uint64 {
	var src []byte
	var tcp int
	if b[0]>>4 == 6 {
		src, tcp = b[8:24], 40
	} else {
		src, tcp = b[12:16], int(b[0]&0xf)*4
	}
	h := uint64(14695981039346656037)
	for _, x := range src {
		h = (h ^ uint64(x)) * 1099511628211
	}
	if tcp+4 <= len(b) {
		for _, x := range b[tcp : tcp+4] {
			h = (h ^ uint64(x)) * 1099511628211
		}
	}
	return h | 1
}

const seenTTL = 10e9 // ns, longer than the engine's memory of handed-over flows

func (q *Queue) reinject(pkts []driver.Packet) error {
	now := int64(0)
	m4, m6 := 0, 0
	for i := range pkts {
		p := &pkts[i]
		if p.Verdict != driver.VerdictAccept || len(p.Data) < 20 {
			continue
		}
		if now == 0 {
			now = realtimeNS()
		}
		h := q.hdr(int(p.ID))
		tap := int64(h.Sec)*1e9 + int64(h.Nsec)
		k := flowKey(p.Data)
		e := &q.seen[k%seenSlots]
		if e.key != k || now-e.since > seenTTL {
			*e = seen{key: k, since: now}
		} else if tap >= e.since {
			// Received after the flow's socket existed: the stack
			// has it already.
			continue
		}
		q.queueInject(p.Data, &m4, &m6)
	}
	if m4+m6 == 0 {
		return nil
	}
	err4 := q.sendInject(q.fd4, 0, m4)
	err6 := q.sendInject(q.fd6, len(q.rmsgs)-m6, m6)
	return errors.Join(err4, err6)
}

// queueInject adds b to the re-injection batch: IPv4 from the front of the
// scratch arrays, IPv6 from the back.
func (q *Queue) queueInject(b []byte, m4, m6 *int) {
	if *m4+*m6 >= len(q.rmsgs) {
		return
	}
	var i int
	v6 := b[0]>>4 == 6
	if v6 {
		if len(b) < 40 {
			return
		}
		*m6++
		i = len(q.rmsgs) - *m6
	} else {
		i = *m4
		*m4++
	}
	h := &q.rmsgs[i]
	*h = mmsghdr{}
	q.riovs[i] = unix.Iovec{Base: &b[0]}
	q.riovs[i].SetLen(len(b))
	h.hdr.Iov = &q.riovs[i]
	h.hdr.SetIovlen(1)
	if v6 {
		sa := &q.sa6[i]
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6}
		copy(sa.Addr[:], b[24:40])
		h.hdr.Name = (*byte)(unsafe.Pointer(sa))
		h.hdr.Namelen = unix.SizeofSockaddrInet6
	} else {
		sa := &q.sa4[i]
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET}
		copy(sa.Addr[:], b[16:20])
		h.hdr.Name = (*byte)(unsafe.Pointer(sa))
		h.hdr.Namelen = unix.SizeofSockaddrInet4
	}
}

func (q *Queue) sendInject(fd, from, m int) error {
	var firstErr error
	for off := 0; off < m; {
		r, _, errno := syscall.Syscall6(unix.SYS_SENDMMSG, uintptr(fd),
			uintptr(unsafe.Pointer(&q.rmsgs[from+off])), uintptr(m-off), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			if firstErr == nil {
				firstErr = driver.NewOpError("re-inject on raw socket", errno)
			}
			off++
			continue
		}
		q.d.injected.Add(uint64(r))
		off += int(r)
	}
	return firstErr
}

// WriteBatch implements driver.Queue: each layer-3 packet gets an Ethernet
// header addressed to the hop its request came from, and the batch leaves
// with one send(2) on the transmit ring (or one sendmmsg(2)).
func (q *Queue) WriteBatch(bufs [][]byte) (int, error) {
	if !q.inBatch {
		q.mu.Lock()
		defer q.mu.Unlock()
	}
	if q.closed.Load() {
		return 0, driver.ErrClosed
	}
	sent := 0
	var firstErr error
	for len(bufs) > 0 {
		n := min(len(bufs), q.batch)
		var s int
		var err error
		if q.tx != nil {
			s, err = q.writeRing(bufs[:n])
		} else {
			s, err = q.writeMMsg(bufs[:n])
		}
		sent += s
		if err != nil && firstErr == nil {
			firstErr = err
		}
		bufs = bufs[n:]
	}
	return sent, firstErr
}

func validL3(b []byte) bool {
	if len(b) < 20 {
		return false
	}
	switch b[0] >> 4 {
	case 4:
		return true
	case 6:
		return len(b) >= 40
	}
	return false
}

func (q *Queue) txStatus(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&q.tx[i*txFrameSz]))
}

func (q *Queue) writeRing(bufs [][]byte) (int, error) {
	queued := 0
	for _, b := range bufs {
		if !validL3(b) || ethLen+len(b) > txFrameSz-tx2Off {
			q.d.txErrs.Add(1)
			continue
		}
		st := atomic.LoadUint32(q.txStatus(q.txCur))
		if st != unix.TP_STATUS_AVAILABLE && st != unix.TP_STATUS_WRONG_FORMAT {
			// Ring full: the kernel has not finished with this slot.
			q.d.txErrs.Add(1)
			continue
		}
		f := q.tx[q.txCur*txFrameSz : (q.txCur+1)*txFrameSz]
		q.ethHeader(b, f[tx2Off:tx2Off+ethLen])
		copy(f[tx2Off+ethLen:], b)
		h := (*unix.Tpacket2Hdr)(unsafe.Pointer(&f[0]))
		h.Len = uint32(ethLen + len(b))
		atomic.StoreUint32(&h.Status, unix.TP_STATUS_SEND_REQUEST)
		q.txCur = (q.txCur + 1) % q.txFrames
		queued++
	}
	if queued == 0 {
		return 0, nil
	}
	for {
		_, _, errno := syscall.Syscall6(unix.SYS_SENDTO, uintptr(q.txfd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 && errno != unix.EAGAIN {
			q.d.txErrs.Add(uint64(queued))
			return 0, driver.NewOpError("send on AF_PACKET transmit ring", errno)
		}
		return queued, nil
	}
}

func (q *Queue) writeMMsg(bufs [][]byte) (int, error) {
	m := 0
	for _, b := range bufs {
		if !validL3(b) {
			q.d.txErrs.Add(1)
			continue
		}
		e := q.eth[m*ethLen : (m+1)*ethLen]
		q.ethHeader(b, e)
		q.iovs[2*m] = unix.Iovec{Base: &e[0]}
		q.iovs[2*m].SetLen(ethLen)
		q.iovs[2*m+1] = unix.Iovec{Base: &b[0]}
		q.iovs[2*m+1].SetLen(len(b))
		h := &q.msgs[m]
		*h = mmsghdr{}
		h.hdr.Iov = &q.iovs[2*m]
		h.hdr.SetIovlen(2)
		m++
	}
	sent := 0
	var firstErr error
	for off := 0; off < m; {
		r, _, errno := syscall.Syscall6(unix.SYS_SENDMMSG, uintptr(q.txfd),
			uintptr(unsafe.Pointer(&q.msgs[off])), uintptr(m-off), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			if firstErr == nil {
				firstErr = driver.NewOpError("sendmmsg on AF_PACKET socket", errno)
			}
			q.d.txErrs.Add(1)
			off++
			continue
		}
		sent += int(r)
		off += int(r)
	}
	return sent, firstErr
}

// neigh is a learnt (address, MAC) pair: where the last request from an
// address came from.
type neigh struct {
	addr [16]byte
	mac  [6]byte
	ok   bool
}

const neighSlots = 1024

// dstAddr returns the destination address of IP packet b, IPv4 mapped into
// 16 bytes, and its slot in the neighbour table.
func dstAddr(b []byte, v6 bool) (a [16]byte, slot int) {
	if v6 {
		copy(a[:], b[24:40])
	} else {
		a[10], a[11] = 0xff, 0xff
		copy(a[12:], b[16:20])
	}
	h := uint32(2166136261)
	for _, x := range a[8:] {
		h = (h ^ uint32(x)) * 16777619
	}
	return a, int(h % neighSlots)
}

// ethHeader writes the Ethernet header of reply b into e: to the source MAC
// of the frame in the current batch that b answers, from the interface.
// A reply that answers no frame of the batch (a re-sent SYN-ACK) goes where
// the last request from its destination came from.
func (q *Queue) ethHeader(b, e []byte) {
	v6 := b[0]>>4 == 6
	a, slot := dstAddr(b, v6)
	n := &q.neighs[slot]
	found := false
	for k := 0; k < q.nBatch && !found; k++ {
		i := (q.match + k) % q.nBatch
		off := q.offs[i]
		mac := off + int(q.hdr(off).Mac)
		if answers(b, q.rx[mac+ethLen:], v6) {
			copy(q.lastDst[:], q.rx[mac+6:mac+12])
			q.haveLast, found = true, true
			q.match = i + 1
			*n = neigh{addr: a, mac: q.lastDst, ok: true}
		}
	}
	switch {
	case found:
	case n.ok && n.addr == a:
		q.lastDst = n.mac
	case !q.haveLast:
		q.lastDst = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	copy(e[0:6], q.lastDst[:])
	copy(e[6:12], q.d.mac[:])
	if v6 {
		e[12], e[13] = 0x86, 0xdd
	} else {
		e[12], e[13] = 0x08, 0x00
	}
}

// answers reports whether reply b goes to the sender of request r: b's
// destination address and port are r's source address and port.
func answers(b, r []byte, v6 bool) bool {
	if len(r) < 1 || (r[0]>>4 == 6) != v6 {
		return false
	}
	if v6 {
		if len(r) < 44 || len(b) < 44 || string(b[24:40]) != string(r[8:24]) {
			return false
		}
		return b[42] == r[40] && b[43] == r[41]
	}
	bi, ri := int(b[0]&0xf)*4, int(r[0]&0xf)*4
	if len(r) < ri+4 || len(b) < bi+4 || string(b[16:20]) != string(r[12:16]) {
		return false
	}
	return b[bi+2] == r[ri] && b[bi+3] == r[ri+1]
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
// waits until the worker is out of its batch, then unmaps the rings.
func (q *Queue) Close() error {
	q.once.Do(func() {
		q.closed.Store(true)
		q.kick()
		q.mu.Lock()
		q.release()
		q.mu.Unlock()
	})
	return nil
}

func (q *Queue) release() {
	q.statsMu.Lock()
	defer q.statsMu.Unlock()
	if q.rx != nil {
		unix.Munmap(q.rx)
		q.rx = nil
	}
	if q.tx != nil {
		unix.Munmap(q.tx)
		q.tx = nil
	}
	for _, fd := range []*int{&q.fd, &q.txfd, &q.efd, &q.fd4, &q.fd6} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// pollStats adds the kernel's ring drop count (reset on every read) to the
// driver's.
func (q *Queue) pollStats() {
	q.statsMu.Lock()
	defer q.statsMu.Unlock()
	if q.fd < 0 {
		return
	}
	if st, err := unix.GetsockoptTpacketStatsV3(q.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		q.d.drops.Add(uint64(st.Drops))
	}
}
