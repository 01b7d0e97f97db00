package handoff

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Queue selectors of TCP_REPAIR_QUEUE (include/uapi/linux/tcp.h), which
// golang.org/x/sys/unix does not declare.
const (
	tcpNoQueue   = 0 // TCP_NO_QUEUE
	tcpRecvQueue = 1 // TCP_RECV_QUEUE
	tcpSendQueue = 2 // TCP_SEND_QUEUE
)

// repairWindow is struct tcp_repair_window (include/uapi/linux/tcp.h),
// which golang.org/x/sys/unix does not declare.
type repairWindow struct {
	SndWl1    uint32 // sequence number of the segment that last updated SndWnd
	SndWnd    uint32 // the peer's receive window, scaled
	MaxWindow uint32 // the largest window the peer offered
	RcvWnd    uint32 // our receive window as last advertised
	RcvWup    uint32 // rcv_nxt when RcvWnd was advertised
}

// Materialise creates the kernel socket of a proven handshake and returns
// it as a connected *net.TCPConn. The socket is created, configured and
// connected in TCP_REPAIR mode, so no packet leaves during set-up; it then
// continues the connection exactly where the handshake left it. See the
// package documentation for the steps and what the caller must arrange
// (CAP_NET_ADMIN, and that the rest of the connection's packets reach the
// socket).
//
// It must be called in the network namespace of the server address.
func Materialise(h *Handshake, cfg *Config) (*net.TCPConn, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = &Config{}
	}
	// The raw socket of the window update first: a missing CAP_NET_RAW
	// fails the handoff before any connection state exists.
	raw := -1
	if !cfg.NoWindowUpdate {
		var err error
		if raw, err = openRaw(h, cfg); err != nil {
			return nil, err
		}
		defer unix.Close(raw)
	}
	fd, wu, err := repair(h, cfg)
	if errors.Is(err, ErrExists) {
		// The tuple may belong to a TIME_WAIT socket of an earlier
		// connection the server side closed first: the client has opened
		// a new one (the cookie proves it), so that socket goes, as the
		// kernel's listener would drop it for a new SYN (killTimeWait).
		if killed, kerr := killTimeWait(h.Tuple.Server, h.Tuple.Client); kerr != nil {
			err = errors.Join(err, kerr)
		} else if killed {
			fd, wu, err = repair(h, cfg)
		}
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "tcp:"+h.Tuple.Server.String()+"<-"+h.Tuple.Client.String())
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, &OpError{Op: "FileConn", Err: err}
	}
	if raw >= 0 {
		// The connection works without the update (the client's
		// zero-window probe finds the window), so a failure to send it
		// is reported, not fatal.
		if err := sendWindowUpdate(raw, h, wu); err != nil && cfg.WindowUpdateError != nil {
			cfg.WindowUpdateError(err)
		}
	}
	return c.(*net.TCPConn), nil
}

// wuFacts is what the window update needs from the repaired socket.
type wuFacts struct {
	rcvNxt uint32 // acknowledgement number
	rcvWnd uint32 // receive window, unscaled
	tsval  uint32 // the socket's timestamp clock
}

// repair runs the TCP_REPAIR sequence and returns the socket, out of repair
// mode.
func repair(h *Handshake, cfg *Config) (int, wuFacts, error) {
	var wu wuFacts
	v6 := h.Tuple.Server.Addr().Is6()
	fam := unix.AF_INET
	if v6 {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_TCP)
	if err != nil {
		return -1, wu, &OpError{Op: "socket", Err: err}
	}
	fail := func(op string, err error) (int, wuFacts, error) {
		// Closing a socket still in repair mode sends nothing.
		unix.Close(fd)
		return -1, wu, &OpError{Op: op, Err: err}
	}
	setInt := func(level, opt, v int) error { return unix.SetsockoptInt(fd, level, opt, v) }

	// 1. Repair mode: bind ignores conflicts (a listener on the port),
	//    connect sends nothing and the sequence numbers are ours to set.
	if err := setInt(unix.IPPROTO_TCP, unix.TCP_REPAIR, unix.TCP_REPAIR_ON); err != nil {
		return fail("TCP_REPAIR on", err)
	}
	if cfg.Mark != 0 {
		if err := setInt(unix.SOL_SOCKET, unix.SO_MARK, int(cfg.Mark)); err != nil {
			return fail("SO_MARK", err)
		}
	}
	if v6 {
		if err := setInt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fail("IPV6_V6ONLY", err)
		}
	}
	if cfg.Transparent {
		if v6 {
			err = setInt(unix.IPPROTO_IPV6, unix.IPV6_TRANSPARENT, 1)
		} else {
			err = setInt(unix.IPPROTO_IP, unix.IP_TRANSPARENT, 1)
		}
		if err != nil {
			return fail("IP_TRANSPARENT", err)
		}
	}
	if err := unix.Bind(fd, sockaddr(h.Tuple.Server)); err != nil {
		return fail("bind "+h.Tuple.Server.String(), err)
	}

	// 2. Sequence numbers, settable only before connect: our next byte
	//    is ServerISN+1, the client's ClientISN+1.
	for _, q := range []struct {
		queue int
		seq   uint32
		name  string
	}{{tcpSendQueue, h.ServerISN + 1, "send"}, {tcpRecvQueue, h.ClientISN + 1, "receive"}} {
		if err := setInt(unix.IPPROTO_TCP, unix.TCP_REPAIR_QUEUE, q.queue); err != nil {
			return fail("TCP_REPAIR_QUEUE "+q.name, err)
		}
		if err := setInt(unix.IPPROTO_TCP, unix.TCP_QUEUE_SEQ, int(int32(q.seq))); err != nil {
			return fail("TCP_QUEUE_SEQ "+q.name, err)
		}
	}

	// 3. connect: in repair mode the socket goes straight to ESTABLISHED
	//    and into the established hash, without sending a SYN.
	if err := unix.Connect(fd, sockaddr(h.Tuple.Client)); err != nil {
		if err == unix.EADDRNOTAVAIL {
			err = errors.Join(ErrExists, err)
		}
		return fail("connect "+h.Tuple.Client.String()+" in repair mode", err)
	}

	// 4. Options, settable only once established. The window option is
	//    always given: connect computed a receive shift from the local
	//    sysctls, which must become the one the SYN-ACK announced (0
	//    without window scaling).
	var wscale uint32
	if h.WScaleOK {
		wscale = uint32(h.ClientWScale) | uint32(h.ServerWScale)<<16
	}
	opts := []unix.TCPRepairOpt{
		{Code: unix.TCPOPT_MAXSEG, Val: uint32(h.MSS)},
		{Code: unix.TCPOPT_WINDOW, Val: wscale},
	}
	if h.SACKOK {
		opts = append(opts, unix.TCPRepairOpt{Code: unix.TCPOPT_SACK_PERMITTED})
	}
	if h.Timestamps {
		opts = append(opts, unix.TCPRepairOpt{Code: unix.TCPOPT_TIMESTAMP})
	}
	if err := unix.SetsockoptTCPRepairOpt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR_OPTIONS, opts); err != nil {
		return fail("TCP_REPAIR_OPTIONS", err)
	}

	// 5. Timestamp clock: it must not run behind the TSval of the SYN-ACK
	//    (the client's PAWS check would drop our segments), see tsClock.
	if h.Timestamps {
		now, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_TIMESTAMP)
		if err != nil {
			return fail("get TCP_TIMESTAMP", err)
		}
		if err := setInt(unix.IPPROTO_TCP, unix.TCP_TIMESTAMP, int(int32(tsClock(uint32(now), h.TSecr)))); err != nil {
			return fail("TCP_TIMESTAMP", err)
		}
	}

	// 6. Payload of the ACK: written in repair mode with the receive queue
	//    selected, it lands in the receive queue and advances rcv_nxt.
	rcvNxt := h.ClientISN + 1
	if len(h.Payload) > 0 {
		if err := setInt(unix.IPPROTO_TCP, unix.TCP_REPAIR_QUEUE, tcpRecvQueue); err != nil {
			return fail("TCP_REPAIR_QUEUE receive", err)
		}
		for p := h.Payload; len(p) > 0; {
			n, err := unix.Write(fd, p)
			if err != nil {
				return fail("queue the ACK's payload", err)
			}
			p = p[n:]
		}
		rcvNxt += uint32(len(h.Payload))
		if err := setInt(unix.IPPROTO_TCP, unix.TCP_REPAIR_QUEUE, tcpNoQueue); err != nil {
			return fail("TCP_REPAIR_QUEUE none", err)
		}
	}

	// 7. Windows: the client's from its ACK; ours as connect computed it,
	//    bounded by what the announced shift can express.
	var w repairWindow
	if err := getsockopt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR_WINDOW, unsafe.Pointer(&w), unsafe.Sizeof(w)); err != nil {
		return fail("get TCP_REPAIR_WINDOW", err)
	}
	snd := uint32(h.Window)
	maxRcv := uint32(65535)
	if h.WScaleOK {
		snd <<= h.ClientWScale
		maxRcv <<= h.ServerWScale
	}
	w.SndWl1 = h.ClientISN + 1
	w.SndWnd, w.MaxWindow = snd, snd
	w.RcvWnd = min(w.RcvWnd, maxRcv)
	w.RcvWup = rcvNxt
	if err := setsockopt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR_WINDOW, unsafe.Pointer(&w), unsafe.Sizeof(w)); err != nil {
		return fail("TCP_REPAIR_WINDOW", err)
	}

	// 8. Leave repair mode without the kernel's window probe (its
	//    sequence number is out of the client's window, so the client
	//    learns nothing from it); the window update follows instead.
	if err := setInt(unix.IPPROTO_TCP, unix.TCP_REPAIR, unix.TCP_REPAIR_OFF_NO_WP); err != nil {
		return fail("TCP_REPAIR off", err)
	}
	wu = wuFacts{rcvNxt: rcvNxt, rcvWnd: w.RcvWnd}
	if h.Timestamps {
		now, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_TIMESTAMP)
		if err != nil {
			return fail("get TCP_TIMESTAMP", err)
		}
		wu.tsval = uint32(now)
	}
	return fd, wu, nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func getsockopt(fd, level, opt int, p unsafe.Pointer, size uintptr) error {
	l := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	if uintptr(l) != size {
		return fmt.Errorf("getsockopt returned %d bytes, want %d", l, size)
	}
	return nil
}

func setsockopt(fd, level, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

// sendWindowUpdate sends the ACK that tells the client our receive window
// (and acknowledges the ACK's payload), as netfilter's SYNPROXY does once
// the server side is up: the SYN-ACK of a SYN proxy announces a zero
// window. It is the segment the socket itself would send: seq = ServerISN+1,
// ack = rcv_nxt, our window scaled by our shift, the timestamp option with
// the socket's clock and the client's TSval.
func sendWindowUpdate(raw int, h *Handshake, wu wuFacts) error {
	win := wu.rcvWnd
	if h.WScaleOK {
		win >>= h.ServerWScale
	}
	seg := windowUpdate(h, wu.rcvNxt, uint16(min(win, 65535)), wu.tsval)
	dst := sockaddr(netip.AddrPortFrom(h.Tuple.Client.Addr(), 0))
	if err := unix.Sendto(raw, seg, 0, dst); err != nil {
		return &OpError{Op: "send the window update", Err: err}
	}
	return nil
}

// openRaw opens the raw socket the window update leaves from, bound to the
// server address, marked like the connection's socket.
func openRaw(h *Handshake, cfg *Config) (int, error) {
	v6 := h.Tuple.Server.Addr().Is6()
	fam, level, transparent := unix.AF_INET, unix.IPPROTO_IP, unix.IP_TRANSPARENT
	if v6 {
		fam, level, transparent = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_TRANSPARENT
	}
	fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, &OpError{Op: "raw socket for the window update (needs CAP_NET_RAW)", Err: err}
	}
	fail := func(op string, err error) (int, error) {
		unix.Close(fd)
		return -1, &OpError{Op: op, Err: err}
	}
	// Only sending: a receive buffer of the minimum keeps the copies of
	// incoming TCP segments a raw socket gets from costing memory.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 0)
	if cfg.Mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(cfg.Mark)); err != nil {
			return fail("SO_MARK on the raw socket", err)
		}
	}
	if cfg.Transparent {
		if err := unix.SetsockoptInt(fd, level, transparent, 1); err != nil {
			return fail("IP_TRANSPARENT on the raw socket", err)
		}
	}
	src := h.Tuple.Server.Addr()
	if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(src, 0))); err != nil {
		return fail("bind the raw socket to "+src.String(), err)
	}
	return fd, nil
}
