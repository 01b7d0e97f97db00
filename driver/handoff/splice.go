package handoff

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// dialTimeout bounds the dial of a backend whose context has no deadline.
const dialTimeout = 10 * time.Second

// Splice connects client to backend (a TCP "host:port") and copies both
// ways until both directions have ended, then closes both connections.
// With proxyProtocol the backend first receives a PROXY protocol v2 header
// naming client's remote and local addresses. Half-closes pass through:
// when one side finishes sending, the other side's write half is shut, and
// the other direction goes on. Between two *net.TCPConn the copies use
// splice(2). Cancelling ctx closes both connections. The error is the
// first failure other than the connections' normal end.
func Splice(ctx context.Context, client net.Conn, backend string, proxyProtocol bool) error {
	bc, err := dial(ctx, nil, backend)
	if err != nil {
		client.Close()
		return err
	}
	return SpliceConn(ctx, client, bc, proxyProtocol)
}

// SpliceConn is Splice with the backend connection already made.
func SpliceConn(ctx context.Context, client, backend net.Conn, proxyProtocol bool) error {
	if proxyProtocol {
		if err := writeProxyHeader(client, backend); err != nil {
			client.Close()
			backend.Close()
			return err
		}
	}
	return Pipe(ctx, client, backend)
}

// Pipe copies a to b and b to a until both directions have ended, passing
// half-closes through, and closes both. Cancelling ctx closes both at once.
func Pipe(ctx context.Context, a, b net.Conn) error {
	s := newSplice(a)
	s.b = b
	_, err := s.run(ctx)
	return err
}

func dial(ctx context.Context, d func(ctx context.Context, network, address string) (net.Conn, error), backend string) (net.Conn, error) {
	if d == nil {
		d = (&net.Dialer{}).DialContext
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dialTimeout)
		defer cancel()
	}
	bc, err := d(ctx, "tcp", backend)
	if err != nil {
		return nil, &OpError{Op: "dial backend " + backend, Err: err}
	}
	return bc, nil
}

func writeProxyHeader(client, backend net.Conn) error {
	c, ok1 := addrPort(client.RemoteAddr())
	s, ok2 := addrPort(client.LocalAddr())
	if !ok1 || !ok2 {
		return &OpError{Op: "PROXY header", Err: errors.New("client connection without TCP addresses")}
	}
	if _, err := backend.Write(AppendProxyHeader(make([]byte, 0, ProxyHeaderLen), c, s)); err != nil {
		return &OpError{Op: "write PROXY header", Err: err}
	}
	return nil
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort(), true
	}
	return netip.AddrPort{}, false
}

// splice is one connection copied both ways between a (the client) and b
// (the backend). Both directions can be paused at a clean point (reads
// interrupted, a write in progress finished, so no byte sits in a buffer
// here) and then resumed or given up to another process: that is how a
// graceful restart moves connections.
type splice struct {
	a  net.Conn
	mu sync.Mutex
	b  net.Conn // nil until dialled
	// aDone and bDone: the direction from a (from b) reached its end and
	// the other side's write half was shut.
	aDone, bDone bool
	pausing      bool
	parked       chan struct{} // closed when both directions stopped for a pause
	resume       chan bool     // true: go on here; false: given away, close
	ended        chan struct{} // closed when run returns
	held         hold          // its share of the Proxy's limits
}

func newSplice(a net.Conn) *splice {
	return &splice{a: a, parked: make(chan struct{}), resume: make(chan bool, 1), ended: make(chan struct{})}
}

// past is a read deadline that has expired: it interrupts a blocked read.
var past = time.Unix(1, 0)

// setBackend records the dialled backend; a pause that came first
// applies to it too.
func (s *splice) setBackend(b net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = b
	if s.pausing {
		b.SetReadDeadline(past)
	}
}

// run copies both ways until both directions have ended, or until the
// splice is paused and given away (moved is then true). Either way it
// closes both connections (after a hand-over they live on in the other
// process). Cancelling ctx closes both at once.
func (s *splice) run(ctx context.Context) (moved bool, err error) {
	defer close(s.ended)
	stop := context.AfterFunc(ctx, s.closeBoth)
	defer stop()
	var errs [2]error
	for {
		var wg sync.WaitGroup
		wg.Add(2)
		go s.copy(&wg, s.b, s.a, &s.aDone, &errs[0])
		go s.copy(&wg, s.a, s.b, &s.bDone, &errs[1])
		wg.Wait()
		s.mu.Lock()
		park := s.pausing && !(s.aDone && s.bDone)
		s.mu.Unlock()
		if !park {
			break
		}
		close(s.parked)
		var here bool
		select {
		case here = <-s.resume:
		case <-ctx.Done():
		}
		if !here {
			moved = true
			break
		}
		s.mu.Lock()
		s.pausing = false
		s.parked = make(chan struct{})
		s.a.SetReadDeadline(time.Time{})
		s.b.SetReadDeadline(time.Time{})
		s.mu.Unlock()
	}
	s.closeBoth()
	if ctx.Err() != nil {
		return moved, ctx.Err()
	}
	return moved, errors.Join(errs[0], errs[1])
}

// copy copies src to dst until src ends, then shuts dst's write half and
// sets *done. A pause leaves *done clear; a broken direction (an error
// other than the connections being closed) closes both connections.
func (s *splice) copy(wg *sync.WaitGroup, dst, src net.Conn, done *bool, errp *error) {
	defer wg.Done()
	s.mu.Lock()
	ended := *done
	s.mu.Unlock()
	if ended {
		return
	}
	_, err := io.Copy(dst, src)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pausing && errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	*done = true
	if err != nil && !errors.Is(err, net.ErrClosed) {
		*errp = err
		s.a.Close()
		s.b.Close()
		return
	}
	closeWrite(dst)
}

func (s *splice) closeBoth() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.a.Close()
	if s.b != nil {
		s.b.Close()
	}
}

// pause stops both directions at a clean point and returns the channel
// closed once they have stopped.
func (s *splice) pause() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pausing = true
	s.a.SetReadDeadline(past)
	if s.b != nil {
		s.b.SetReadDeadline(past)
	}
	return s.parked
}
