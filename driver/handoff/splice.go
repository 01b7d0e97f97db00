package handoff

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Splice connects client to backend (a TCP "host:port") and copies both
// ways until both directions have ended, then closes both connections.
// With proxyProtocol the backend first receives a PROXY protocol v2 header
// naming client's remote and local addresses. Half-closes pass through:
// when one side finishes sending, the other side's write half is shut, and
// the other direction goes on. Between two *net.TCPConn the copies use
// splice(2). Cancelling ctx closes both connections. The error is the
// first failure other than the connections' normal end.
func Splice(ctx context.Context, client net.Conn, backend string, proxyProtocol bool) error {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	bc, err := d.DialContext(dctx, "tcp", backend)
	cancel()
	if err != nil {
		client.Close()
		return &OpError{Op: "dial backend " + backend, Err: err}
	}
	return SpliceConn(ctx, client, bc, proxyProtocol)
}

// SpliceConn is Splice with the backend connection already made.
func SpliceConn(ctx context.Context, client, backend net.Conn, proxyProtocol bool) error {
	if proxyProtocol {
		c, ok1 := addrPort(client.RemoteAddr())
		s, ok2 := addrPort(client.LocalAddr())
		if !ok1 || !ok2 {
			client.Close()
			backend.Close()
			return &OpError{Op: "PROXY header", Err: errors.New("client connection without TCP addresses")}
		}
		if _, err := backend.Write(AppendProxyHeader(make([]byte, 0, ProxyHeaderLen), c, s)); err != nil {
			client.Close()
			backend.Close()
			return &OpError{Op: "write PROXY header", Err: err}
		}
	}
	return Pipe(ctx, client, backend)
}

// Pipe copies a to b and b to a until both directions have ended, passing
// half-closes through, and closes both. Cancelling ctx closes both at once.
func Pipe(ctx context.Context, a, b net.Conn) error {
	stop := context.AfterFunc(ctx, func() { a.Close(); b.Close() })
	defer stop()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	one := func(i int, dst, src net.Conn) {
		defer wg.Done()
		_, err := io.Copy(dst, src)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			errs[i] = err
			// A broken direction ends the other one too.
			a.Close()
			b.Close()
			return
		}
		closeWrite(dst)
	}
	wg.Add(2)
	go one(0, b, a)
	go one(1, a, b)
	wg.Wait()
	a.Close()
	b.Close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs[0], errs[1])
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

// Proxy hands connections over to a backend: each Handoff materialises the
// connection and splices it to Backend on a goroutine of its own.
type Proxy struct {
	// Backend is the "host:port" every connection is spliced to.
	Backend string
	// Dial makes the backend connection; nil means a net.Dialer with a
	// 10-second timeout.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// ProxyProtocol sends a PROXY protocol v2 header to the backend first.
	ProxyProtocol bool
	// Config configures the materialised sockets.
	Config *Config
	// OnError, if set, receives the errors of the splices (a backend that
	// refuses, a reset). It is called from the splice goroutines.
	OnError func(client netip.AddrPort, err error)

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

func (p *Proxy) init() {
	p.once.Do(func() { p.ctx, p.cancel = context.WithCancel(context.Background()) })
}

// Handoff materialises the connection and starts splicing it. It returns
// once the socket exists; dialling the backend happens afterwards.
func (p *Proxy) Handoff(h *Handshake) error {
	p.init()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.wg.Add(1)
	p.mu.Unlock()
	c, err := Materialise(h, p.Config)
	if err != nil {
		p.wg.Done()
		return err
	}
	client := h.Tuple.Client
	go func() {
		defer p.wg.Done()
		if err := p.splice(c); err != nil && p.OnError != nil && p.ctx.Err() == nil {
			p.OnError(client, err)
		}
	}()
	return nil
}

// Close closes every spliced connection and waits for the splices to end.
func (p *Proxy) Close() error {
	p.init()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	return nil
}

func (p *Proxy) splice(c net.Conn) error {
	if p.Dial == nil {
		return Splice(p.ctx, c, p.Backend, p.ProxyProtocol)
	}
	dctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	bc, err := p.Dial(dctx, "tcp", p.Backend)
	cancel()
	if err != nil {
		c.Close()
		return &OpError{Op: "dial backend " + p.Backend, Err: err}
	}
	return SpliceConn(p.ctx, c, bc, p.ProxyProtocol)
}
