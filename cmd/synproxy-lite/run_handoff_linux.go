package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
)

// proxyHandoff materialises each proven handshake as a kernel socket with
// TCP_REPAIR and splices it to the backend.
type proxyHandoff struct {
	ctx   context.Context
	o     *runOptions
	log   *slog.Logger
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[*splice]struct{}
}

func newProxyHandoff(ctx context.Context, o *runOptions, log *slog.Logger) (*proxyHandoff, error) {
	return &proxyHandoff{ctx: ctx, o: o, log: log, conns: map[*splice]struct{}{}}, nil
}

// splice is one proxied connection: the client's socket and the backend's.
// Its two directions can be paused (for a graceful restart) and then either
// resumed or given up to another process.
type splice struct {
	p       *proxyHandoff
	client  *net.TCPConn
	from    string
	mu      sync.Mutex
	backend *net.TCPConn // nil until dialled
	// c2bDone and b2cDone: that direction reached EOF and was shut down
	// on the other side.
	c2bDone, b2cDone atomic.Bool
	pausing          bool // guarded by mu
	parked           chan struct{}
	ended            chan struct{} // closed when run returns
	resume           chan bool     // true: go on here; false: given away, close
}

// Handoff implements driver.Handoff.
func (p *proxyHandoff) Handoff(h *driver.Handshake) error {
	c, err := materialise(h, nft.DefaultMark)
	if err != nil {
		return err
	}
	// h belongs to the engine's worker and is reused: copy what the
	// goroutine needs.
	p.start(&splice{client: c, from: h.Tuple.Client.String()})
	return nil
}

func (p *proxyHandoff) start(s *splice) {
	s.p = p
	s.parked = make(chan struct{})
	s.ended = make(chan struct{})
	s.resume = make(chan bool, 1)
	p.mu.Lock()
	p.conns[s] = struct{}{}
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		s.run()
		p.mu.Lock()
		delete(p.conns, s)
		p.mu.Unlock()
		close(s.ended)
	}()
}

// Close closes every open connection and waits for the splices.
func (p *proxyHandoff) Close() error {
	p.mu.Lock()
	for s := range p.conns {
		s.client.Close()
		s.mu.Lock()
		if s.backend != nil {
			s.backend.Close()
		}
		s.mu.Unlock()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// Wait waits for every splice to end.
func (p *proxyHandoff) Wait() { p.wg.Wait() }

func (s *splice) run() {
	p := s.p
	s.mu.Lock()
	backend := s.backend
	s.mu.Unlock()
	if backend == nil {
		d := net.Dialer{Timeout: 10 * time.Second}
		bc, err := d.DialContext(p.ctx, "tcp", p.o.backend.String())
		if err != nil {
			p.log.Debug("backend dial failed", "client", s.from, "err", err)
			s.client.Close()
			return
		}
		backend = bc.(*net.TCPConn)
		if p.o.proxyProtocol {
			if _, err := backend.Write(proxyV2Header(s.client.RemoteAddr().(*net.TCPAddr), s.client.LocalAddr().(*net.TCPAddr))); err != nil {
				s.client.Close()
				backend.Close()
				return
			}
		}
		s.mu.Lock()
		s.backend = backend
		if s.pausing {
			backend.SetReadDeadline(time.Unix(1, 0))
		}
		s.mu.Unlock()
	}
	for {
		var wg sync.WaitGroup
		dir := func(dst, src *net.TCPConn, done *atomic.Bool) {
			defer wg.Done()
			if done.Load() {
				return
			}
			_, err := io.Copy(dst, src)
			s.mu.Lock()
			paused := s.pausing && errors.Is(err, os.ErrDeadlineExceeded)
			s.mu.Unlock()
			if paused {
				return
			}
			dst.CloseWrite()
			done.Store(true)
		}
		wg.Add(2)
		go dir(backend, s.client, &s.c2bDone)
		go dir(s.client, backend, &s.b2cDone)
		wg.Wait()
		s.mu.Lock()
		pausing := s.pausing
		s.mu.Unlock()
		if !pausing || s.c2bDone.Load() && s.b2cDone.Load() {
			break
		}
		close(s.parked)
		if !<-s.resume {
			break // another process carries the connection on
		}
		s.mu.Lock()
		s.pausing = false
		s.parked = make(chan struct{})
		s.mu.Unlock()
		s.client.SetReadDeadline(time.Time{})
		backend.SetReadDeadline(time.Time{})
	}
	s.client.Close()
	backend.Close()
}

// pause stops both directions at a clean point: reads are interrupted, a
// write in progress finishes (no byte is left in a buffer). It returns the
// channel closed once the splice is parked.
func (s *splice) pause() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pausing = true
	past := time.Unix(1, 0)
	s.client.SetReadDeadline(past)
	if s.backend != nil {
		s.backend.SetReadDeadline(past)
	}
	return s.parked
}

// proxyV2Header returns a PROXY protocol v2 PROXY header for a TCP connection.
func proxyV2Header(src, dst *net.TCPAddr) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n\x21")
	s4, d4 := src.IP.To4(), dst.IP.To4()
	if s4 != nil && d4 != nil {
		b = append(b, 0x11, 0, 12)
		b = append(b, s4...)
		b = append(b, d4...)
	} else {
		b = append(b, 0x21, 0, 36)
		b = append(b, src.IP.To16()...)
		b = append(b, dst.IP.To16()...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(src.Port))
	return binary.BigEndian.AppendUint16(b, uint16(dst.Port))
}

type tcpRepairOpt struct{ code, val uint32 }

type tcpRepairWindow struct {
	sndWl1, sndWnd, maxWindow, rcvWnd, rcvWup uint32
}

const (
	tcpRepairOff     = 0
	tcpRecvQueue     = 1
	tcpSendQueue     = 2
	tcpTimestampOpt  = 24 // TCP_TIMESTAMP
	tcpRepairWindowO = 29 // TCP_REPAIR_WINDOW
)

// materialise creates the kernel socket of a proven handshake with
// TCP_REPAIR: sequence numbers, MSS, window scale, SACK, timestamps (with
// an offset that keeps our clock ahead of the SYN-ACK's TSval) and the
// client's window, marked so that the nft rules deliver its packets
// straight to it.
func materialise(h *driver.Handshake, mark uint32) (*net.TCPConn, error) {
	v6 := h.Tuple.Server.Addr().Is6()
	fam := unix.AF_INET
	if v6 {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, driver.NewOpError("socket", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	fail := func(op string, err error) (*net.TCPConn, error) { return nil, driver.NewOpError(op, err) }
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR, 1); err != nil {
		return fail("TCP_REPAIR on", err)
	}
	// TCP_REPAIR set sk_reuse to SK_FORCE_REUSE, which lets bind share the
	// port with the other connections; SO_REUSEADDR would lower it.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
		return fail("SO_MARK", err)
	}
	var la, ra unix.Sockaddr
	if v6 {
		la = &unix.SockaddrInet6{Port: int(h.Tuple.Server.Port()), Addr: h.Tuple.Server.Addr().As16()}
		ra = &unix.SockaddrInet6{Port: int(h.Tuple.Client.Port()), Addr: h.Tuple.Client.Addr().As16()}
	} else {
		la = &unix.SockaddrInet4{Port: int(h.Tuple.Server.Port()), Addr: h.Tuple.Server.Addr().As4()}
		ra = &unix.SockaddrInet4{Port: int(h.Tuple.Client.Port()), Addr: h.Tuple.Client.Addr().As4()}
	}
	if err := unix.Bind(fd, la); err != nil {
		return fail("bind "+h.Tuple.Server.String(), err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR_QUEUE, tcpSendQueue); err != nil {
		return fail("TCP_REPAIR_QUEUE send", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_QUEUE_SEQ, int(int32(h.ServerISN+1))); err != nil {
		return fail("TCP_QUEUE_SEQ send", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR_QUEUE, tcpRecvQueue); err != nil {
		return fail("TCP_REPAIR_QUEUE recv", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_QUEUE_SEQ, int(int32(h.ClientISN+1))); err != nil {
		return fail("TCP_QUEUE_SEQ recv", err)
	}
	if h.Timestamps {
		var ts unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		now := uint32(ts.Nano() / 1e6)
		// The low bit of the value switches the socket to microsecond
		// timestamps on Linux 6.7 and later: keep it clear.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, tcpTimestampOpt, int(int32((now+64)&^1))); err != nil {
			return fail("TCP_TIMESTAMP", err)
		}
	}
	if err := unix.Connect(fd, ra); err != nil {
		return fail("repair connect "+h.Tuple.Client.String(), err)
	}
	opts := make([]tcpRepairOpt, 0, 4)
	opts = append(opts, tcpRepairOpt{2, uint32(h.MSS)})
	// Always set the window option: without it the socket keeps the
	// receive shift it chose at creation, which a client that did not
	// negotiate scaling would not apply.
	if h.WScaleOK {
		opts = append(opts, tcpRepairOpt{3, uint32(h.ClientWScale) | uint32(h.ServerWScale)<<16})
	} else {
		opts = append(opts, tcpRepairOpt{3, 0})
	}
	if h.SACKOK {
		opts = append(opts, tcpRepairOpt{4, 0})
	}
	if h.Timestamps {
		opts = append(opts, tcpRepairOpt{8, 0})
	}
	if err := setsockoptRaw(fd, unix.TCP_REPAIR_OPTIONS, unsafe.Pointer(&opts[0]), len(opts)*8); err != nil {
		return fail("TCP_REPAIR_OPTIONS", err)
	}
	wnd := uint32(h.Window)
	if h.WScaleOK {
		wnd <<= h.ClientWScale
	}
	rw := tcpRepairWindow{sndWl1: h.ClientISN + 1, sndWnd: wnd, maxWindow: wnd, rcvWnd: 65535, rcvWup: h.ClientISN + 1}
	if err := setsockoptRaw(fd, tcpRepairWindowO, unsafe.Pointer(&rw), int(unsafe.Sizeof(rw))); err != nil {
		return fail("TCP_REPAIR_WINDOW", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_REPAIR, tcpRepairOff); err != nil {
		return fail("TCP_REPAIR off", err)
	}
	f := os.NewFile(uintptr(fd), "tcp:"+h.Tuple.Client.String())
	ok = true
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("handoff: %w", err)
	}
	return c.(*net.TCPConn), nil
}

func setsockoptRaw(fd, opt int, p unsafe.Pointer, l int) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, uintptr(opt), uintptr(p), uintptr(l), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
