package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
)

// Start opens the driver, runs the engine, installs the nft rules (the
// queues are bound before the rules send packets to them) and returns
// once traffic flows. In a process that a graceful restart started, it
// first takes on the connections the old process passed, and tells that
// process once it serves. On an error everything started is stopped.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	if s.started {
		return errors.New("proxy: Server started twice")
	}
	s.started = true
	if err := s.start(); err != nil {
		s.shutdown()
		return err
	}
	return nil
}

func (s *Server) start() error {
	c := &s.cfg
	// The engine sends the window update itself, in its transmit batch;
	// the mark lets the connection's later packets bypass the queue.
	hc := &handoff.Config{Mark: nft.DefaultMark, NoWindowUpdate: true}
	if c.Backend.IsValid() {
		in, err := inherited()
		if err != nil {
			return err
		}
		s.in = in
		s.px = &handoff.Proxy{Backend: c.Backend.String(), Backends: addrStrings(c.Backends), ProxyProtocol: c.ProxyProtocol, Config: hc,
			Limits: c.Limits, Logger: s.log,
			OnError: func(client netip.AddrPort, err error) {
				s.log.Debug("connection ended with an error", "client", client.String(), "err", err)
			}}
	} else {
		s.ln = handoff.NewListener(net.TCPAddrFromAddrPort(netip.AddrPortFrom(c.Addr, c.Port)), c.Backlog, hc)
	}
	if s.ring == nil {
		var k cookie.Key
		if s.in != nil && s.in.key != nil {
			k = *s.in.key
		} else {
			var err error
			if k, err = cookie.GenerateKey(); err != nil {
				return err
			}
		}
		r, err := cookie.NewRing(&cookie.RingConfig{Key: &k})
		if err != nil {
			return err
		}
		s.ring, s.key = r, &k
	}
	if s.in != nil {
		return s.takeOver()
	}
	if err := s.startEngine(); err != nil {
		return err
	}
	nc := s.nftConfig()
	rules, err := nft.Install(nc)
	if err != nil {
		return err
	}
	s.rules = rules
	s.watchTable()
	if rules.Stale && s.in == nil {
		s.log.Warn("removed a stale nft table left by an earlier run", "table", nc.Table)
	}
	s.log.Info("nft rules installed", "table", "inet "+nc.Table, "queueing", rules.Method.String(),
		"queues", fmt.Sprintf("%d-%d", nc.QueueNum, int(nc.QueueNum)+c.Workers-1), "fail_open", c.FailOpen)
	if err := s.serveEngine(); err != nil {
		return err
	}
	s.watchOnDemand()
	s.logRunning()
	return nil
}

func (s *Server) logRunning() {
	c := &s.cfg
	to := []any{"backend", strings.Join(append([]string{c.Backend.String()}, addrStrings(c.Backends)...), ",")}
	if s.ln != nil {
		to = []any{"listener", s.ln.Addr().String()}
	}
	s.log.Info("proxy running", append(append([]any{"port", c.Port}, to...), "workers", c.Workers,
		"proxy_protocol", c.ProxyProtocol, "pid", os.Getpid())...)
}

func (s *Server) nftConfig() *nft.Config {
	c := &s.cfg
	table := c.Table
	if table == "" {
		table = nft.DefaultTable
	}
	nc := &nft.Config{Table: table, Port: c.Port, Addrs: c.Addrs, QueueNum: s.queueBase(), QueueTotal: uint16(c.Workers),
		FailOpen: c.FailOpen, Fallback: c.Backend, Drop: s.drv.Drop}
	if s.in != nil { // a graceful restart's new process: the table is its parent's
		nc.Inherit = os.Getppid()
	}
	s.policyNFT(nc)
	return nc
}

// startEngine opens the driver and runs a new engine on it.
func (s *Server) startEngine() error {
	dc := s.cfg
	dc.Queue = s.queueBase()
	dc.Workers += s.provenQueues()
	d, err := s.drv.open(&dc)
	if err != nil {
		return err
	}
	if err := s.policyDriver(d); err != nil {
		d.Close()
		return err
	}
	var h engine.Handoff = s.ln
	if s.px != nil {
		h = s.px
	}
	h = s.provenHandoff(d, h)
	eng, err := s.newEngine(d, h)
	if err != nil {
		d.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &engineRun{stop: cancel, done: make(chan struct{})}
	go func() {
		r.err = eng.Run(ctx)
		close(r.done)
		if ctx.Err() == nil { // it stopped on its own
			if s.ln != nil {
				s.ln.Close() // ends Accept
			}
			select {
			case s.died <- fmt.Errorf("engine stopped: %w", r.err):
			default:
			}
		}
	}()
	s.eng, s.run = eng, r
	return nil
}

// serveEngine calls OnEngine for the engine that serves now.
func (s *Server) serveEngine() error {
	if s.cfg.OnEngine == nil {
		return nil
	}
	release, err := s.cfg.OnEngine(s.eng)
	if err != nil {
		return err
	}
	s.release = release
	return nil
}

// stopEngine stops the engine that runs, if any, and its driver, then
// releases what OnEngine made for it.
func (s *Server) stopEngine() error {
	if s.run == nil {
		return nil
	}
	s.pol.xdp.Store(nil) // its program goes with the driver
	s.run.stop()
	<-s.run.done
	err := s.run.err
	s.run = nil
	if s.release != nil {
		s.release()
		s.release = nil
	}
	return err
}

// shutdown removes the rules (unless a graceful restart left them to the
// new process), so the kernel stops queueing, then stops the engine and
// closes the connections not handed over yet: the spliced ones, or those
// not accepted from the Listener.
func (s *Server) shutdown() error {
	var errs []error
	if s.rules != nil && !s.handedOver && s.rs.inherited {
		// Rules this process inherited and did not take over: put back
		// as the old process had them, never removed.
		s.restoreInherited()
		s.rules = nil
	}
	if s.in != nil && s.in.ch != nil {
		s.in.ch.Close() // the old process learns that this one gave up
	}
	if s.rules != nil && !s.handedOver {
		table := s.nftConfig().Table
		if err := s.rules.Remove(); err != nil {
			s.log.Error("removing nft table", "table", "inet "+table, "err", err)
			errs = append(errs, err)
		} else {
			s.log.Info("nft table removed", "table", "inet "+table)
		}
		s.rules = nil
	}
	if err := s.stopEngine(); err != nil {
		errs = append(errs, err)
	}
	if s.px != nil {
		s.px.Close()
	}
	if s.ln != nil {
		s.ln.Close()
	}
	return errors.Join(errs...)
}

// Run starts the Server unless Start did, and serves until ctx ends, Close
// is called, the engine stops on its own (an error), or a graceful restart
// handed the connections over and the ones that stayed have ended. It
// stops everything before it returns.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		if err := s.Start(); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		s.log.Info("stopping")
		return s.Close()
	case err := <-s.died:
		s.Close()
		return err
	case <-s.done:
		return s.closeErr
	}
}

// Close stops the Server: it removes the nft table, so the kernel stops
// queueing the port's packets, stops the engine and its driver, and closes
// the spliced connections, or the Listener (the connections Accept
// returned stay open). After a graceful restart the table stays, for the
// new process. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closeErr = s.shutdown()
		s.mu.Unlock()
		close(s.done)
	})
	return s.closeErr
}

// Restart makes a graceful restart (a Server with a Backend): it starts
// a new process (see RestartCommand), which binds the other range of
// queues and moves the nft rules to them in one transaction while this
// Server's engine still serves, then passes it the open connections.
// Once that process has taken over, Restart returns nil; this Server then
// serves the connections it could not pass to their end and stops, and
// Run returns. If the new process fails, this Server carries on with its
// rules back on its own queues, and Restart returns the error.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.px == nil || s.run == nil || s.handedOver {
		return errors.New("proxy: graceful restart needs a running Server with a Backend")
	}
	if s.cfg.RestartCheck != nil {
		if err := s.cfg.RestartCheck(); err != nil {
			err = fmt.Errorf("proxy: restart refused, the new process's settings are invalid: %w", err)
			s.log.Error("graceful restart refused; carrying on unchanged", "err", err)
			return err
		}
	}
	s.log.Info("graceful restart: handing over to a new process")
	moved, kept, pid, err := s.handOver()
	if err != nil {
		s.log.Error("graceful restart failed; carrying on", "err", err)
		return err
	}
	s.handedOver = true
	if s.cfg.OnHandOver != nil {
		s.cfg.OnHandOver(pid)
	}
	s.log.Info("graceful restart: the new process took over", "pid", pid,
		"connections_moved", moved, "connections_draining", kept)
	if kept > 0 {
		s.log.Info("graceful restart: serving the remaining connections to their end", "connections", kept)
	}
	go func() {
		s.px.Wait()
		s.Close()
	}()
	return nil
}

// Ruleset returns the nft ruleset a Server with cfg installs, as nft(8)
// lists it, after a comment line that names the queueing method (probed
// in this network namespace, which it does not change).
func Ruleset(cfg *ServerConfig) (string, error) {
	s, err := NewServer(cfg)
	if err != nil {
		return "", err
	}
	nc := s.nftConfig()
	m, perr := nft.ProbeQueue(nc)
	note := "# queueing: " + m.String()
	if perr != nil {
		note += " (nft_queue not probed: " + perr.Error() + ")"
	}
	text, err := nft.Render(nc, m)
	if err != nil {
		return "", err
	}
	return note + "\n" + text, nil
}
