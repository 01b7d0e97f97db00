package handoff

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy hands connections over to a backend: each Handoff materialises the
// connection and splices it to Backend on a goroutine of its own. It keeps
// track of its splices, so that a graceful restart can park them at a
// clean point and pass them to another process (HandOver), which takes
// them on with Adopt.
type Proxy struct {
	// Backend is the "host:port" every connection is spliced to.
	Backend string
	// Backends, when set, are further "host:port" backends: each
	// connection dials the next of Backend and Backends in turn
	// (round-robin) and, when that dial fails, the one after it, until one
	// answers, each backend tried once, all within Limits.DialTimeout.
	Backends []string
	// Dial makes the backend connection; nil means a net.Dialer whose
	// sockets carry Config.Mark (a Dial of one's own should set it too).
	// The dial is given Limits.DialTimeout.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// ProxyProtocol sends a PROXY protocol v2 header to the backend first.
	ProxyProtocol bool
	// Config configures the materialised sockets.
	Config *Config
	// OnError, if set, receives the errors of the splices (a backend that
	// refuses, a reset). It is called from the splice goroutines.
	OnError func(client netip.AddrPort, err error)
	// Limits bound the open connections (in all, and per source), the
	// backend dials in flight and the time a connection may idle, and set
	// keepalive on both sockets; nil means the defaults of Limits. They
	// are read once, by the first call of a method.
	Limits *Limits
	// Logger receives the failed backend dials (at warn level, at most
	// one line every 5 seconds). Nil means slog.Default().
	Logger *slog.Logger

	lim    limiter
	obs    observer
	next   atomic.Uint32 // round-robin over Backend and Backends
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  map[*splice]struct{}
}

// Parked is a spliced connection stopped at a clean point, as it passes
// from one process to another: its two sockets as files, and which of its
// directions have already ended.
type Parked struct {
	// Client and Backend are the connection's two sockets.
	Client, Backend *os.File
	// ClientDone says the client finished sending: its end of stream was
	// passed on (the backend's write half is shut). BackendDone is the
	// same for the other direction.
	ClientDone, BackendDone bool
}

func (p *Proxy) init() {
	p.once.Do(func() {
		p.ctx, p.cancel = context.WithCancel(context.Background())
		p.conns = map[*splice]struct{}{}
		p.lim.init(p.Limits, p.Logger)
		p.obs.init()
	})
}

// Handoff materialises the connection and starts splicing it. It returns
// once the socket exists; dialling the backend happens afterwards. At a
// limit of Limits it makes no socket and returns a *RefusedError (which
// wraps ErrRefused).
func (p *Proxy) Handoff(h *Handshake) error {
	p.init()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	held, err := p.lim.admit(h.Tuple.Client.Addr())
	if err != nil {
		p.mu.Unlock()
		return err
	}
	p.wg.Add(1)
	p.mu.Unlock()
	p.obs.inFlight.Add(1)
	start := time.Now()
	c, err := Materialise(h, p.Config)
	p.obs.handoffs.Observe(time.Since(start))
	p.obs.inFlight.Add(-1)
	if err != nil {
		p.mu.Lock()
		p.lim.release(&held)
		p.mu.Unlock()
		p.wg.Done()
		return err
	}
	// h belongs to the caller and is reused: the goroutine gets copies.
	s := newSplice(c)
	s.held = held
	p.start(s, h.Tuple.Client, true)
	return nil
}

// start tracks s and runs it; dial says the backend is still to be made.
// The caller did p.wg.Add(1).
func (p *Proxy) start(s *splice, client netip.AddrPort, dial bool) {
	p.mu.Lock()
	p.conns[s] = struct{}{}
	if !s.held.counted {
		p.lim.adopt(&s.held, client.Addr())
	}
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		err := p.serve(s, client, dial)
		p.mu.Lock()
		delete(p.conns, s)
		p.lim.release(&s.held)
		p.mu.Unlock()
		if err != nil && p.OnError != nil && p.ctx.Err() == nil {
			p.OnError(client, err)
		}
	}()
}

func (p *Proxy) serve(s *splice, client netip.AddrPort, dial bool) error {
	if dial {
		bc, err := p.dialBackend(s)
		p.mu.Lock()
		p.lim.dialDone(&s.held)
		p.mu.Unlock()
		if err != nil {
			if p.ctx.Err() == nil {
				p.obs.byReason[dialReasonIndex(DialReason(err))].Add(1)
				p.lim.dialFailed(client, err)
			}
			close(s.ended)
			return err
		}
		s.setBackend(bc)
	}
	stop := p.lim.tune(s)
	defer stop()
	_, err := s.run(p.ctx)
	return err
}

// dialBackend dials the backend of s and writes the PROXY header; on
// failure it closes the client.
func (p *Proxy) dialBackend(s *splice) (net.Conn, error) {
	ctx, cancel := p.lim.dialContext(p.ctx)
	defer cancel()
	start := time.Now()
	bc, err := p.dialNext(ctx)
	if p.ctx.Err() == nil {
		p.obs.dialed(start, err)
	}
	if err != nil {
		s.a.Close()
		return nil, err
	}
	if p.ProxyProtocol {
		if err := writeProxyHeader(s.a, bc); err != nil {
			s.a.Close()
			bc.Close()
			return nil, err
		}
	}
	return bc, nil
}

// dialNext dials Backend, or with Backends the next backend in turn and
// on failure the ones after it.
func (p *Proxy) dialNext(ctx context.Context) (net.Conn, error) {
	if len(p.Backends) == 0 {
		return dial(ctx, p.dialer(), p.Backend)
	}
	all := append([]string{p.Backend}, p.Backends...)
	first := int(p.next.Add(1)-1) % len(all)
	var errs []error
	for i := range all {
		bc, err := dial(ctx, p.dialer(), all[(first+i)%len(all)])
		if err == nil {
			return bc, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
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

// Wait waits until every splice has ended.
func (p *Proxy) Wait() {
	p.init()
	p.wg.Wait()
}

// park pauses every splice and waits up to timeout for each to stop at a
// clean point. The ones that did not (a write blocked on a slow peer) are
// resumed at once and counted in kept; the ones that ended meanwhile are
// left out.
func (p *Proxy) park(timeout time.Duration) (parked []*splice, kept int) {
	p.init()
	p.mu.Lock()
	all := make([]*splice, 0, len(p.conns))
	for s := range p.conns {
		all = append(all, s)
	}
	p.mu.Unlock()
	waits := make([]<-chan struct{}, len(all))
	for i, s := range all {
		waits[i] = s.pause()
	}
	deadline := time.After(timeout)
	for i, s := range all {
		select {
		case <-waits[i]:
			parked = append(parked, s)
			continue
		case <-s.ended:
			continue
		default:
		}
		select {
		case <-waits[i]:
			parked = append(parked, s)
		case <-s.ended:
		case <-deadline:
			s.resume <- true
			kept++
			deadline = closedTime
		}
	}
	return parked, kept
}

var closedTime = func() <-chan time.Time {
	c := make(chan time.Time)
	close(c)
	return c
}()
