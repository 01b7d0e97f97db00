package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

var (
	// ErrNotSupported is returned by Listen and Server on systems without
	// nfqueue, nftables and TCP_REPAIR.
	ErrNotSupported = errors.New("proxy: not supported on this system")
	// ErrConfig is returned for a Config or ServerConfig that cannot run.
	ErrConfig = errors.New("proxy: invalid config")
	// ErrClosed is returned by Start on a closed Server.
	ErrClosed = errors.New("proxy: server closed")
)

// Config configures Listen. Port is required.
type Config struct {
	// Port is the protected TCP port.
	Port uint16
	// Addr is the address the Listener reports as its own. The zero Addr
	// means the unspecified IPv6 address. The rules protect Port on every
	// local address whatever Addr says.
	Addr netip.Addr
	// Workers is the number of netfilter queues and engine workers. Zero
	// means 1.
	Workers int
	// Ring makes and checks the cookies. Nil means a ring with one random
	// key.
	Ring *cookie.Ring
	// Queue is the first netfilter queue number; Workers queues from it are
	// used. Zero means 100, the daemon's default.
	Queue uint16
	// Table is the name of the nft table (inet family). Empty means
	// nft.DefaultTable. A service running beside the synproxy-lite daemon
	// in one network namespace needs a Table and Queue of its own.
	Table string
	// Backlog is how many proven connections wait for Accept; a handshake
	// that finds it full is lost (the client's retransmission tries again).
	// Zero means 128.
	Backlog int
	// FailOpen lets packets bypass the queue while nothing listens on it
	// (the process died): they then reach whatever the kernel has on the
	// port.
	FailOpen bool
	// Engine, if set, supplies the engine's synproxy rules (Rule4 and
	// Rule6: MSS, window scale, timestamps, SACK, TTL) and SYN-ACK
	// retries. Its Port, Ring, Handoff and Logger are replaced by Listen's.
	Engine *engine.Config
	// Logger receives start/stop and error summaries. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// server is the ServerConfig of c: a Server without a Backend, which
// hands the connections to its Listener.
func (c *Config) server() *ServerConfig {
	if c == nil {
		return nil
	}
	queue := c.Queue
	if queue == 0 {
		queue = 100
	}
	return &ServerConfig{Port: c.Port, Addr: c.Addr, Workers: c.Workers, Ring: c.Ring, Queue: queue,
		Table: c.Table, Backlog: c.Backlog, FailOpen: c.FailOpen, Engine: c.Engine, Logger: c.Logger}
}

func (c *Config) validate() error { return c.server().validate() }

// Listen protects cfg.Port on this host: it starts a Server without a
// Backend (the nfqueue driver, the engine, the nft table) and returns a
// Listener whose Accept returns the kernel sockets (materialised with
// TCP_REPAIR) of the clients that proved their cookie. Close, or the end
// of ctx, stops everything and removes the nft table.
func Listen(ctx context.Context, cfg *Config) (*Listener, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s, err := NewServer(cfg.server())
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	l := &Listener{s: s, ln: s.Listener()}
	l.stopCtx = context.AfterFunc(ctx, func() { l.Close() })
	return l, nil
}

// Listener is the net.Listener Listen returns. Its Accept returns
// *net.TCPConn values.
type Listener struct {
	s         *Server
	ln        *handoff.Listener
	closeOnce sync.Once
	stopCtx   func() bool // stops the context.AfterFunc of Listen's ctx
}

// Accept waits for and returns the next proven connection.
func (l *Listener) Accept() (net.Conn, error) { return l.ln.Accept() }

// Addr returns the address of Config.Addr and Config.Port.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Counters returns the engine's counters (SYNs, cookies, connections
// handed over).
func (l *Listener) Counters() *engine.Counters { return l.s.Engine().Counters() }

// Engine returns the engine, e.g. for metrics.NewCollector.
func (l *Listener) Engine() *engine.Engine { return l.s.Engine() }

// Close removes the nft table, so the kernel stops queueing the port's
// packets, stops the engine and its driver, and closes the Listener. The
// connections Accept returned stay open; those not yet accepted are closed.
// Close is idempotent and also runs when the context given to Listen ends.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { l.stopCtx() })
	return l.s.Close()
}
