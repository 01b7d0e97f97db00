package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
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
	conns map[net.Conn]struct{}
}

func newProxyHandoff(ctx context.Context, o *runOptions, log *slog.Logger) (*proxyHandoff, error) {
	return &proxyHandoff{ctx: ctx, o: o, log: log, conns: map[net.Conn]struct{}{}}, nil
}

// Handoff implements driver.Handoff.
func (p *proxyHandoff) Handoff(h *driver.Handshake) error {
	c, err := materialise(h, nft.DefaultMark)
	if err != nil {
		return err
	}
	p.track(c, true)
	// h belongs to the engine's worker and is reused: copy what the
	// goroutine needs.
	from := h.Tuple.Client.String()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer p.track(c, false)
		p.splice(c, from)
	}()
	return nil
}

func (p *proxyHandoff) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

// Close closes every open connection and waits for the splices.
func (p *proxyHandoff) Close() error {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

func (p *proxyHandoff) splice(client *net.TCPConn, from string) {
	defer client.Close()
	d := net.Dialer{Timeout: 10 * time.Second}
	bc, err := d.DialContext(p.ctx, "tcp", p.o.backend.String())
	if err != nil {
		p.log.Debug("backend dial failed", "client", from, "err", err)
		return
	}
	backend := bc.(*net.TCPConn)
	defer backend.Close()
	if p.o.proxyProtocol {
		if _, err := backend.Write(proxyV2Header(client.RemoteAddr().(*net.TCPAddr), client.LocalAddr().(*net.TCPAddr))); err != nil {
			return
		}
	}
	done := make(chan struct{})
	go func() {
		io.Copy(backend, client)
		backend.CloseWrite()
		close(done)
	}()
	io.Copy(client, backend)
	client.CloseWrite()
	<-done
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
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, tcpTimestampOpt, int(int32(now+64))); err != nil {
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
