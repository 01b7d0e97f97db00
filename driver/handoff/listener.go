package handoff

import (
	"net"
	"sync"
)

// Listener is a net.Listener whose Accept returns the connections handed
// to it: a Go service embeds the SYN proxy by giving a Listener to the
// engine as its Handoff (engine.Handshake is this package's Handshake) and
// serving on it, e.g. with http.Serve; driver/proxy does that wiring.
type Listener struct {
	addr net.Addr
	cfg  *Config
	ch   chan net.Conn
	slot chan struct{} // one token per free backlog place

	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

// NewListener returns a Listener that reports addr as its address and
// queues up to backlog connections for Accept (at least 1).
func NewListener(addr net.Addr, backlog int, cfg *Config) *Listener {
	backlog = max(backlog, 1)
	l := &Listener{addr: addr, cfg: cfg, ch: make(chan net.Conn, backlog),
		slot: make(chan struct{}, backlog), done: make(chan struct{})}
	for range backlog {
		l.slot <- struct{}{}
	}
	return l
}

// Handoff materialises the connection and queues it for Accept. It does
// not block: with the backlog full it returns ErrBacklog without creating
// a socket (the client's handshake then counts as lost; see the package
// documentation).
func (l *Listener) Handoff(h *Handshake) error {
	select {
	case <-l.slot:
	default:
		return ErrBacklog
	}
	c, err := Materialise(h, l.cfg)
	if err != nil {
		l.slot <- struct{}{}
		return err
	}
	return l.Offer(c)
}

// Offer queues an established connection for Accept; Handoff uses it
// after Materialise, having reserved a backlog place. Offer without a
// reserved place also works but may return ErrBacklog, closing c.
func (l *Listener) Offer(c net.Conn) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return ErrClosed
	}
	select {
	case l.ch <- c:
		return nil
	default:
		c.Close()
		return ErrBacklog
	}
}

// Accept waits for and returns the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		select {
		case l.slot <- struct{}{}:
		default:
		}
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: net.ErrClosed}
	}
}

// Close stops Accept and closes the connections not yet accepted.
func (l *Listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.done)
	for {
		select {
		case c := <-l.ch:
			c.Close()
		default:
			return nil
		}
	}
}

// Addr returns the address given to NewListener.
func (l *Listener) Addr() net.Addr { return l.addr }
