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
	// ErrNotSupported is returned by Listen on systems without nfqueue,
	// nftables and TCP_REPAIR.
	ErrNotSupported = errors.New("proxy: not supported on this system")
	// ErrConfig is returned by Listen for a Config it cannot run.
	ErrConfig = errors.New("proxy: invalid config")
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

func (c *Config) validate() error {
	if c == nil || c.Port == 0 {
		return errors.Join(ErrConfig, errors.New("proxy: Port is required"))
	}
	if c.Workers < 0 || c.Workers > 1024 {
		return errors.Join(ErrConfig, errors.New("proxy: Workers must be 0-1024"))
	}
	if int(c.Queue)+max(c.Workers, 1) > 65536 {
		return errors.Join(ErrConfig, errors.New("proxy: Queue+Workers exceeds the queue numbers"))
	}
	if c.Backlog < 0 {
		return errors.Join(ErrConfig, errors.New("proxy: Backlog must not be negative"))
	}
	return nil
}

// remover is the installed ruleset (*nft.Rules).
type remover interface{ Remove() error }

// Listener is the net.Listener Listen returns. Its Accept returns
// *net.TCPConn values.
type Listener struct {
	ln    *handoff.Listener
	eng   *engine.Engine
	rules remover
	log   *slog.Logger
	table string

	stop context.CancelFunc
	done chan struct{} // closed when the engine's Run returned
	err  error         // Run's error, set before done is closed

	closeOnce sync.Once
	closeErr  error
	stopCtx   func() bool // stops the context.AfterFunc of Listen's ctx
}

// Accept waits for and returns the next proven connection.
func (l *Listener) Accept() (net.Conn, error) { return l.ln.Accept() }

// Addr returns the address of Config.Addr and Config.Port.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Counters returns the engine's counters (SYNs, cookies, connections
// handed over).
func (l *Listener) Counters() *engine.Counters { return l.eng.Counters() }

// Engine returns the engine, e.g. for metrics.NewCollector.
func (l *Listener) Engine() *engine.Engine { return l.eng }

// Close removes the nft table, so the kernel stops queueing the port's
// packets, stops the engine and its driver, and closes the Listener. The
// connections Accept returned stay open; those not yet accepted are closed.
// Close is idempotent and also runs when the context given to Listen ends.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		if l.stopCtx != nil {
			l.stopCtx()
		}
		var errs []error
		if err := l.rules.Remove(); err != nil {
			l.log.Error("proxy: removing nft table", "table", l.table, "err", err)
			errs = append(errs, err)
		}
		l.stop()
		<-l.done
		if l.err != nil {
			errs = append(errs, l.err)
		}
		l.ln.Close()
		l.closeErr = errors.Join(errs...)
		l.log.Info("proxy: stopped", "table", l.table)
	})
	return l.closeErr
}
