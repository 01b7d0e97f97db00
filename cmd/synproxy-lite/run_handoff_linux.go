package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
)

// proxyHandoff materialises each proven handshake as a kernel socket with
// TCP_REPAIR (driver/handoff) and splices it to the backend. It keeps its
// own splice rather than handoff.Proxy because a graceful restart must
// park every connection at a clean point and pass it on.
type proxyHandoff struct {
	ctx   context.Context
	o     *runOptions
	log   *slog.Logger
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[*splice]struct{}
	cfg   handoff.Config
}

func newProxyHandoff(ctx context.Context, o *runOptions, log *slog.Logger) (*proxyHandoff, error) {
	// The engine sends the window update itself, in its transmit batch.
	cfg := handoff.Config{Mark: nft.DefaultMark, NoWindowUpdate: true}
	return &proxyHandoff{ctx: ctx, o: o, log: log, conns: map[*splice]struct{}{}, cfg: cfg}, nil
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

// Handoff implements engine.Handoff.
func (p *proxyHandoff) Handoff(h *engine.Handshake) error {
	c, err := handoff.Materialise(h, &p.cfg)
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
			hdr := handoff.AppendProxyHeader(make([]byte, 0, handoff.ProxyHeaderLen),
				s.client.RemoteAddr().(*net.TCPAddr).AddrPort(), s.client.LocalAddr().(*net.TCPAddr).AddrPort())
			if _, err := backend.Write(hdr); err != nil {
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
