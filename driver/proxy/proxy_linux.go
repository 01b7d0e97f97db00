package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/driver/nfqueue"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
)

// Listen protects cfg.Port on this host: it opens the nfqueue driver, runs
// the engine, installs the nft table, and returns a Listener whose Accept
// returns the kernel sockets (materialised with TCP_REPAIR) of the clients
// that proved their cookie. Close, or the end of ctx, stops everything and
// removes the nft table.
func Listen(ctx context.Context, cfg *Config) (*Listener, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	workers := max(cfg.Workers, 1)
	queue := cfg.Queue
	if queue == 0 {
		queue = 100
	}
	table := cfg.Table
	if table == "" {
		table = nft.DefaultTable
	}
	backlog := cfg.Backlog
	if backlog == 0 {
		backlog = 128
	}
	ring := cfg.Ring
	if ring == nil {
		r, err := cookie.NewRing(nil)
		if err != nil {
			return nil, fmt.Errorf("proxy: cookie ring: %w", err)
		}
		ring = r
	}
	addr := cfg.Addr
	if !addr.IsValid() {
		addr = netip.IPv6Unspecified()
	}

	// The engine sends the window update itself, in its transmit batch;
	// the mark lets the connection's later packets bypass the queue.
	ln := handoff.NewListener(net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, cfg.Port)), backlog,
		&handoff.Config{Mark: nft.DefaultMark, NoWindowUpdate: true})
	var ecfg engine.Config
	if cfg.Engine != nil {
		ecfg = *cfg.Engine
	}
	ecfg.Port, ecfg.Ring, ecfg.Logger = cfg.Port, ring, log
	ecfg.Handoff = ln

	drv, err := nfqueue.Open(&nfqueue.Config{QueueNum: queue, Queues: workers, FailOpen: cfg.FailOpen})
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(drv, &ecfg)
	if err != nil {
		drv.Close()
		return nil, err
	}
	engCtx, stop := context.WithCancel(context.Background())
	l := &Listener{ln: ln, eng: eng, log: log, table: table, stop: stop, done: make(chan struct{})}
	go func() {
		l.err = eng.Run(engCtx)
		close(l.done)
		ln.Close() // an engine that stopped on its own ends Accept
	}()

	// The queues are bound before the rules send packets to them.
	rules, err := nft.Install(&nft.Config{Table: table, Port: cfg.Port, QueueNum: queue,
		QueueTotal: uint16(workers), FailOpen: cfg.FailOpen})
	if err != nil {
		stop()
		<-l.done
		return nil, err
	}
	l.rules = rules
	if rules.Stale {
		log.Warn("proxy: removed a stale nft table left by an earlier run", "table", table)
	}
	log.Info("proxy: listening", "port", cfg.Port, "table", "inet "+table,
		"queueing", rules.Method.String(), "queues", fmt.Sprintf("%d-%d", queue, int(queue)+workers-1))
	l.stopCtx = context.AfterFunc(ctx, func() { l.Close() })
	return l, nil
}
