package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/metrics"
	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
)

// daemonMany runs several servers (the ports of the services of a
// configuration file) in one process, each with its own table, queues,
// engine and cookie ring, until ctx is done or one of them stops; then it
// stops them all. The metrics of every server are served on one address,
// labelled service and port. A graceful restart (SIGHUP) moves one server
// to one new process, so with several it is refused: restart the daemon.
// With BGP, one speaker announces the prefixes while every server is
// ready (readyAll) and withdraws them when one is not.
func daemonMany(ctx context.Context, o *runOptions, srvs []server, log *slog.Logger) error {
	c := o.cfg
	var started []*proxy.Server
	all := readyAll{srvs: srvs, started: &started}
	sp, err := o.newSpeaker(func() (bool, string) {
		if err := all.Ready(); err != nil {
			return false, err.Error()
		}
		return true, ""
	}, log)
	if err != nil {
		return err
	}
	var reg *prometheus.Registry
	if c.Metrics != "" {
		reg = prometheus.NewRegistry()
		if sp != nil {
			reg.MustRegister(newBGPCollector(sp))
		}
		stop, err := metrics.ServeRegistry(c.Metrics, reg, withBGP(all, sp), log)
		if err != nil {
			return err
		}
		defer stop()
	}
	stopAll := func() {
		for _, s := range started {
			s.Close()
		}
	}
	for _, sv := range srvs {
		var s *proxy.Server // for the collector, set before Start
		if reg != nil {
			sv.cfg.OnEngine = registerEngine(reg, sv, func() *proxy.Server { return s })
		}
		s, err := proxy.NewServer(sv.cfg)
		if err == nil {
			err = s.Start()
		}
		if err != nil {
			stopAll()
			return fmt.Errorf("service %s, port %d: %w", sv.name, sv.cfg.Port, err)
		}
		started = append(started, s)
	}
	defer reloadOnUSR1(started, srvs, log)()
	sd := &notifier{log: log, serving: fmt.Sprintf("%d ports", len(srvs))}
	sd.ready()
	if sp != nil {
		sp.Start()
		defer sp.Close()
	}
	defer sd.stopping()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := o.withdrawThenStop(ctx, sp, log)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Warn("graceful restart (SIGHUP) serves one service on one port; this daemon serves several: "+
					"restart it instead", "servers", len(srvs))
			}
		}
	}()
	errs := make([]error, len(started))
	var wg sync.WaitGroup
	for i, s := range started {
		wg.Go(func() {
			if err := s.Run(run); err != nil {
				errs[i] = fmt.Errorf("service %s, port %d: %w", srvs[i].name, srvs[i].cfg.Port, err)
			}
			cancel() // one stopped: stop the others
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// registerEngine returns a server's OnEngine: it registers the engine's
// collector on reg, labelled with the service and port, until the engine
// stops.
func registerEngine(reg *prometheus.Registry, sv server, srv func() *proxy.Server) func(*engine.Engine) (func(), error) {
	return func(eng *engine.Engine) (func(), error) {
		col := metrics.NewCollector(eng)
		col.Handoff, col.RulesLost, col.Readiness = srv().HandoffStats, srv().RulesLost, srv()
		if sv.cfg.Lists != nil || sv.cfg.ProvenClients != nil {
			col.Lists = listCounts(srv())
		}
		col.Build = buildInfo()
		r := prometheus.WrapRegistererWith(prometheus.Labels{"service": sv.name,
			"port": strconv.Itoa(int(sv.cfg.Port))}, reg)
		if err := r.Register(col); err != nil {
			return nil, err
		}
		return func() { r.Unregister(col) }, nil
	}
}

// readyAll is the readiness of a daemon of several servers: ready when
// every one of them is (once all have started).
type readyAll struct {
	srvs    []server
	started *[]*proxy.Server
}

func (r readyAll) check(ready func(*proxy.Server) error) error {
	started := *r.started
	if len(started) < len(r.srvs) {
		return fmt.Errorf("starting: %d of %d servers started", len(started), len(r.srvs))
	}
	var errs []error
	for i, s := range started {
		if err := ready(s); err != nil {
			errs = append(errs, fmt.Errorf("service %s, port %d: %w", r.srvs[i].name, r.srvs[i].cfg.Port, err))
		}
	}
	return errors.Join(errs...)
}

func (r readyAll) Ready() error      { return r.check((*proxy.Server).Ready) }
func (r readyAll) ReadyKnown() error { return r.check((*proxy.Server).ReadyKnown) }
