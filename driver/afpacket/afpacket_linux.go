package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/localaddr"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/rawsock"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// Driver is the AF_PACKET driver: one queue per worker.
type Driver struct {
	cfg     Config
	ifindex int
	queues  []*Queue

	txErrs   atomic.Uint64
	drops    atomic.Uint64 // ring overruns reported by the kernel
	skip     skipCounters  // frames not served, by reason
	injected atomic.Uint64 // packets given back to the stack
	idle     atomic.Uint64 // poll(2) returns with neither a block nor a wake-up
	rxErrs   atomic.Uint64 // socket errors read from receive sockets

	lastLog    atomic.Int64  // unix ns of the last error logged
	loggedErrs atomic.Uint64 // rxErrs when it was logged
	txRing     bool

	local     *localaddr.Watch // the host's local addresses
	closeOnce sync.Once

	// proven clients first (Config.Proven): the maps and filters, and the
	// proven queue (also the last of queues)
	proven      *provenMaps
	provenQ     *Queue
	provenPkts  atomic.Uint64 // packets read from the proven queue
	provenDrops atomic.Uint64 // the proven ring's overruns
	proveErrs   atomic.Uint64 // failed map updates
}

// opened counts the drivers this process opened, for their fanout groups.
var opened atomic.Uint32

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
	if d.local, err = localaddr.New(nil); err != nil {
		return nil, err
	}
	if c.Proven != nil {
		if d.proven, err = newProvenMaps(c.Proven, c.Port); err != nil {
			d.Close()
			return nil, err
		}
	}
	group := c.FanoutGroup
	if group == 0 {
		// One group per driver: two drivers of one process (two
		// services on one interface) in one group would share each
		// other's packets.
		group = uint16(os.Getpid()) + uint16(opened.Add(1)-1)
	}
	for i := 0; i < c.Workers; i++ {
		q, err := d.openQueue(group, false)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.queues = append(d.queues, q)
	}
	if d.proven != nil {
		q, err := d.openQueue(0, true)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.provenQ = q
		d.queues = append(d.queues, q)
	}
	return d, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return "afpacket" }

// Queues implements driver.Driver. With Config.Proven, the last queue is the
// proven sources'.
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
	return driver.DriverStats{Overruns: d.drops.Load(), TxErrors: d.txErrs.Load(),
		RxErrors: d.rxErrs.Load(), IdleWakeups: d.idle.Load(), Skipped: d.skip.load()}
}

type skipCounters struct {
	notHost, notLocal, vlan, truncated, notIP atomic.Uint64
}

func (s *skipCounters) load() driver.SkipStats {
	return driver.SkipStats{NotHost: s.notHost.Load(), NotLocal: s.notLocal.Load(), VLAN: s.vlan.Load(),
		Truncated: s.truncated.Load(), NotIP: s.notIP.Load()}
}

// Counters are the driver's own counters beyond driver.DriverStats.
type Counters struct {
	// Skipped counts frames the driver did not hand to the engine, all
	// reasons together (Driver.Stats has them one by one).
	Skipped uint64
	// Injected counts packets given back to the kernel stack on a raw
	// socket (handshake ACKs and segments that arrived before their
	// socket existed).
	Injected uint64
	// IdleWakeups counts the returns from poll(2) that found neither a
	// ring block ready nor a wake-up: a socket error (see RxErrors) or a
	// spurious wake-up. A few are normal; thousands a second are a worker
	// spinning.
	IdleWakeups uint64
	// RxErrors counts the errors read from the receive sockets (SO_ERROR),
	// such as ENETDOWN after the interface went down.
	RxErrors uint64
	// TxRing says whether transmission uses the mmap'd ring (true) or
	// sendmmsg (false).
	TxRing bool
	// ProvenPackets counts the packets read from the proven queue
	// (Config.Proven): packets of proven sources.
	ProvenPackets uint64
	// ProvenOverruns counts the packets the kernel could not put into the
	// proven queue's full ring (they are in DriverStats.Overruns too).
	ProvenOverruns uint64
	// ProveErrors counts the calls of Prove whose map update failed.
	ProveErrors uint64
}

// Counters returns the driver's own counters.
func (d *Driver) Counters() Counters {
	if d.provenQ != nil {
		d.provenQ.pollStats()
	}
	s := d.skip.load()
	return Counters{Skipped: s.NotHost + s.NotLocal + s.VLAN + s.Truncated + s.NotIP, Injected: d.injected.Load(), IdleWakeups: d.idle.Load(),
		RxErrors: d.rxErrs.Load(), TxRing: d.txRing, ProvenPackets: d.provenPkts.Load(), ProvenOverruns: d.provenDrops.Load(),
		ProveErrors: d.proveErrs.Load()}
}

// ProvenPackets returns Counters().ProvenPackets: the packets read from the
// proven queue.
func (d *Driver) ProvenPackets() uint64 { return d.provenPkts.Load() }

// ProvenOverruns returns Counters().ProvenOverruns: the packets of proven
// sources the kernel could not put into the proven queue's full ring.
func (d *Driver) ProvenOverruns() uint64 {
	if d.provenQ != nil {
		d.provenQ.pollStats()
	}
	return d.provenDrops.Load()
}

// Prove marks src as proven now (Config.Proven): for the proven timeout,
// its packets to the port are received on the proven queue instead of the
// workers'. It is one system call: call it once per connection handed
// over, not per packet. Without Config.Proven it does nothing. A failed
// update (which the kernel has no reason for) is counted
// (Counters.ProveErrors): the source is served by the workers as before.
func (d *Driver) Prove(src netip.Addr) {
	if d.proven == nil {
		return
	}
	if err := d.proven.prove(src); err != nil {
		d.proveErrs.Add(1)
	}
}

// Close implements driver.Driver.
func (d *Driver) Close() error {
	var errs []error
	for _, q := range d.queues {
		errs = append(errs, q.Close())
	}
	d.closeOnce.Do(func() {
		if d.local != nil {
			d.local.Close()
		}
		if d.proven != nil {
			d.proven.close()
		}
	})
	return errors.Join(errs...)
}

// seen remembers, per flow, when the driver first gave one of its packets
// back to the stack: the socket of the flow existed from then on.
type seen struct {
	key   uint64
	since int64 // CLOCK_REALTIME ns
}

const seenSlots = 4096

// The frame's struct sockaddr_ll follows its struct tpacket3_hdr, aligned
// (TPACKET_ALIGN).
var (
	sllOff     = (unix.SizeofTpacket3Hdr + unix.TPACKET_ALIGNMENT - 1) &^ (unix.TPACKET_ALIGNMENT - 1)
	pkttypeOff = int(unsafe.Offsetof(unix.RawSockaddrLinklayer{}.Pkttype))
)

const (
	ethLen    = 14
	vlanLen   = 4
	tx2Off    = 32 // TPACKET2_HDRLEN - sizeof(struct sockaddr_ll): frame data offset
	txFrameSz = 2048
	txBlockSz = 64 << 10
)

// Queue is one worker's socket pair: a receive ring in the fanout group and
// a transmit ring.
type Queue struct {
	d      *Driver
	batch  int
	busy   bool
	proven bool // the proven sources' queue, outside the fanout group

	// mu is held from a successful ReadBatch until its Release, and by
	// Close while it unmaps the rings.
	mu      sync.Mutex
	statsMu sync.Mutex
	closed  atomic.Bool
	woken   atomic.Bool
	once    sync.Once
	inBatch bool

	fd, txfd, efd int

	// receive ring
	rx        []byte
	blockSize int
	blocks    int
	cur       int  // current block
	held      bool // current block belongs to userspace
	left      int  // packets of the current block not yet read
	pktOff    int  // offset of the next packet in the current block
	pfds      [2]unix.PollFd
	backoff   time.Duration // wait after a socket error, doubled while they repeat
	// csum decodes a frame whose TCP checksum the driver completes.
	csum packet.Packet

	// transmit ring (or sendmmsg scratch)
	tx       []byte
	txFrames int
	txCur    int
	mm       *rawsock.Batch

	// re-injection into the stack, on raw IP sockets
	inj  *rawsock.IP
	seen []seen
}

func (d *Driver) openQueue(group uint16, proven bool) (q *Queue, err error) {
	c := &d.cfg
	q = &Queue{d: d, batch: c.BatchSize, busy: c.BusyPoll, proven: proven, fd: -1, txfd: -1, efd: -1,
		blockSize: c.BlockSize, blocks: c.Blocks, mm: rawsock.NewBatch(c.BatchSize),
		seen: make([]seen, seenSlots)}
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
	if q.inj, err = rawsock.OpenIP(c.BatchSize, 0); err != nil {
		return nil, err
	}
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
	if q.d.proven != nil {
		if err := q.d.proven.attach(q.fd, q.proven); err != nil {
			return err
		}
	} else {
		filter := portFilter(c.Port)
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		if err := unix.SetsockoptSockFprog(q.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			return driver.NewOpError("attach BPF filter", err)
		}
	}
	// Kernels before 4.20 lack it; the filter's port match keeps our own
	// replies (source port = the protected port) out anyway.
	_ = unix.SetsockoptInt(q.fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	if err := unix.Bind(q.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: q.d.ifindex}); err != nil {
		return driver.NewOpError("bind AF_PACKET socket to "+c.Interface, err)
	}
	if q.proven {
		return nil // a socket of its own: every proven packet is its
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
				} else if atomic.LoadUint32(q.blockStatus(q.cur))&unix.TP_STATUS_USER == 0 {
					q.d.idle.Add(1)
				}
				if q.pfds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
					q.socketError()
				}
				continue
			}
			base := q.cur * q.blockSize
			q.backoff = 0
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
				pkts[n] = driver.Packet{Data: data, Link: driver.LinkEthernet, ID: uint64(off)}
				n++
			}
		}
		if n == 0 {
			q.releaseBlock()
			continue
		}
		if q.proven {
			q.d.provenPkts.Add(uint64(n))
		}
		q.inBatch = true
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

// frame returns the Ethernet frame at off.
func (q *Queue) frame(off int, h *unix.Tpacket3Hdr) ([]byte, bool) {
	mac := off + int(h.Mac)
	end := mac + int(h.Snaplen)
	if h.Snaplen != h.Len || h.Snaplen < ethLen+20 || end > len(q.rx) {
		q.d.skip.truncated.Add(1)
		return nil, false
	}
	et := uint16(q.rx[mac+12])<<8 | uint16(q.rx[mac+13])
	if et != 0x0800 && et != 0x86dd {
		q.d.skip.notIP.Add(1)
		return nil, false
	}
	// Only frames for this host, to one of its local addresses: the host
	// may route (or, in promiscuous mode, overhear) others' traffic.
	if q.rx[off+sllOff+pkttypeOff] != unix.PACKET_HOST {
		q.d.skip.notHost.Add(1)
		return nil, false
	}
	ip := q.rx[mac+ethLen : end]
	var dst netip.Addr
	switch {
	case et == 0x0800:
		dst = netip.AddrFrom4([4]byte(ip[16:20]))
	case len(ip) >= 40:
		dst = netip.AddrFrom16([16]byte(ip[24:40]))
	default:
		q.d.skip.truncated.Add(1)
		return nil, false
	}
	if !q.d.local.Load().Has(dst) {
		q.d.skip.notLocal.Add(1)
		return nil, false
	}
	if h.Status&unix.TP_STATUS_VLAN_VALID != 0 {
		// The kernel took the frame's 802.1Q tag out (into the ring
		// header). It goes back in, in the gap the ring leaves before
		// the frame, so that the engine sees the frame as it was sent
		// and its reply goes out on the same VLAN.
		if mac-vlanLen < off+sllOff+unix.SizeofSockaddrLinklayer {
			q.d.skip.vlan.Add(1)
			return nil, false
		}
		tpid := uint16(0x8100)
		if h.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && h.Hv1.Vlan_tpid != 0 {
			tpid = h.Hv1.Vlan_tpid
		}
		copy(q.rx[mac-vlanLen:], q.rx[mac:mac+12])
		mac -= vlanLen
		binary.BigEndian.PutUint16(q.rx[mac+12:], tpid)
		binary.BigEndian.PutUint16(q.rx[mac+14:], uint16(h.Hv1.Vlan_tci))
	}
	f := q.rx[mac:end:end]
	if h.Status&unix.TP_STATUS_CSUMNOTREADY != 0 {
		q.completeChecksum(f)
	}
	return f, true
}

// completeChecksum computes the TCP checksum of frame f in place. A local
// sender with checksum offload leaves only the pseudo-header sum in the
// field; the engine verifies checksums, so the driver finishes the job.
// Frames that do not decode are left alone (the engine drops them).
func (q *Queue) completeChecksum(f []byte) {
	p := &q.csum
	if p.Decode(f, packet.LinkEthernet) != nil {
		return
	}
	seg := p.Segment()
	seg[16], seg[17] = 0, 0
	c := packet.TCPChecksum(p.Src, p.Dst, seg)
	seg[16], seg[17] = byte(c>>8), byte(c)
	*p = packet.Packet{}
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
	q.inBatch = false
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

// ipOffset returns the offset of the IP header in a frame the driver handed
// out: behind the Ethernet header and the VLAN tag it put back, if any.
func ipOffset(f []byte) int {
	if et := binary.BigEndian.Uint16(f[12:]); et != 0x0800 && et != 0x86dd {
		return ethLen + vlanLen
	}
	return ethLen
}

const seenTTL = 10e9 // ns, longer than the engine's memory of handed-over flows

func (q *Queue) reinject(pkts []driver.Packet) error {
	now := int64(0)
	for i := range pkts {
		p := &pkts[i]
		if p.Verdict != driver.VerdictAccept || len(p.Data) < ethLen+20 {
			continue
		}
		if now == 0 {
			now = realtimeNS()
		}
		ip := p.Data[ipOffset(p.Data):] // frame checked IPv4 or IPv6
		h := q.hdr(int(p.ID))
		tap := int64(h.Sec)*1e9 + int64(h.Nsec)
		k := flowKey(ip)
		e := &q.seen[k%seenSlots]
		if e.key != k || now-e.since > seenTTL {
			*e = seen{key: k, since: now}
		} else if tap >= e.since {
			// Received after the flow's socket existed: the stack
			// has it already.
			continue
		}
		q.inj.Add(ip)
	}
	if q.inj.Len() == 0 {
		return nil
	}
	sent, _, err := q.inj.Flush()
	q.d.injected.Add(uint64(sent))
	return driver.NewOpError("re-inject on raw socket", err)
}

// WriteBatch implements driver.Queue: the buffers are whole Ethernet frames
// (the queue's link type is LinkEthernet; the engine builds its replies
// behind the header of the frame they answer), and the batch leaves with one
// send(2) on the transmit ring (or one sendmmsg(2)).
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

func (q *Queue) txStatus(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&q.tx[i*txFrameSz]))
}

func (q *Queue) writeRing(bufs [][]byte) (int, error) {
	queued := 0
	for _, b := range bufs {
		if len(b) < ethLen || len(b) > txFrameSz-tx2Off {
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
		copy(f[tx2Off:], b)
		h := (*unix.Tpacket2Hdr)(unsafe.Pointer(&f[0]))
		h.Len = uint32(len(b))
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
	for _, b := range bufs {
		if len(b) < ethLen || !q.mm.Add(b) {
			q.d.txErrs.Add(1)
		}
	}
	sent, failed, err := q.mm.Send(q.txfd)
	q.d.txErrs.Add(uint64(failed))
	return sent, driver.NewOpError("sendmmsg on AF_PACKET socket", err)
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

// socketError reads (and so clears) the receive socket's pending error. The
// kernel sets one (ENETDOWN) when the interface goes down; until it is read,
// poll(2) returns POLLERR at once, every time. The error is counted and
// logged (at most once every errLogEvery per driver), and the worker waits
// before it polls again: 1 ms, doubled while errors follow each other without
// a packet in between, up to maxBackoff. Wake and Close cut the wait short.
func (q *Queue) socketError() {
	e, err := unix.GetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && e == 0 && q.pfds[0].Revents&unix.POLLNVAL == 0 {
		return // cleared meanwhile: nothing to wait for
	}
	q.d.rxErrs.Add(1)
	if err == nil {
		err = syscall.Errno(e)
	}
	q.d.logError(err)
	q.backoff = min(max(2*q.backoff, time.Millisecond), maxBackoff)
	if _, err := unix.Poll(q.pfds[1:], int(q.backoff/time.Millisecond)); err == nil && q.pfds[1].Revents != 0 {
		var b [8]byte
		_, _ = unix.Read(q.efd, b[:])
	}
}

const (
	maxBackoff  = time.Second
	errLogEvery = 10 * time.Second
)

// logError logs a receive socket error, rate-limited: the first one, then at
// most one every errLogEvery with the number of errors since the last line.
func (d *Driver) logError(err error) {
	now := time.Now().UnixNano()
	last := d.lastLog.Load()
	if last != 0 && now-last < int64(errLogEvery) || !d.lastLog.CompareAndSwap(last, now) {
		return
	}
	n := d.rxErrs.Load()
	d.cfg.logger().Warn("afpacket: receive socket error; the worker backs off and carries on",
		"interface", d.cfg.Interface, "err", err, "errors", n-d.loggedErrs.Swap(n))
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
	for _, fd := range []*int{&q.fd, &q.txfd, &q.efd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	if q.inj != nil {
		q.inj.Close()
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
		if q.proven {
			q.d.provenDrops.Add(uint64(st.Drops))
		}
	}
}

// Driver serves proven clients first itself (Config.Proven).
var _ driver.Prover = (*Driver)(nil)
