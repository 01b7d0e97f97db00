package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Readiness timing: how recent what the Server knows of its backend must
// be, and how long Ready waits for a probe.
const (
	// ReadyBackendWindow is how old the last backend dial may be for
	// Ready to trust it: a connection's dial or a probe within it says
	// whether the backend answers; without one, Ready probes.
	ReadyBackendWindow = 5 * time.Second
	// ReadyProbeTimeout bounds the probe Ready makes (and so Ready).
	ReadyProbeTimeout = 2 * time.Second
)

// Ready says whether the Server serves now: nil when it does, else the
// failed checks joined, one line each, naming what is wrong. The checks:
//   - it started, was not closed, and did not hand over to a new process
//     (graceful restart);
//   - its engine runs (so its driver's queues or rings are bound);
//   - its nft table is installed and present now, owned by this process
//     (read from the kernel on each call);
//   - with a Backend: the backend accepted the last dial made within
//     ReadyBackendWindow, a connection's or a probe's; when no dial is
//     that recent, Ready makes one (handoff.Proxy.Probe, at most
//     ReadyProbeTimeout), so an idle proxy notices a backend that went
//     away or came back.
//
// A change between ready and not is logged (warn when it stops being
// ready, info when it is again), once per change. Ready is meant for a
// readiness endpoint (/readyz, metrics.Readiness): it is called per
// request, not per packet.
func (s *Server) Ready() error {
	err := s.ready(true)
	was := s.notReady.Swap(err != nil)
	switch {
	case err != nil && !was:
		s.log.Warn("not ready", "why", err.Error())
	case err == nil && was:
		s.log.Info("ready again")
	}
	return err
}

// ReadyKnown is Ready from what the Server knows, without side effects:
// it never dials the backend, whose check takes the last dial made however
// old (none yet counts as answering), and it logs nothing. It is for a
// metric read at every scrape (synproxy_lite_ready): a scrape must not
// make connections to the backend.
func (s *Server) ReadyKnown() error { return s.ready(false) }

func (s *Server) ready(probe bool) error {
	s.mu.Lock()
	started, handedOver, run, rules, px := s.started, s.handedOver, s.run, s.rules, s.px
	s.mu.Unlock()
	select {
	case <-s.done:
		return errors.New("closed")
	default:
	}
	switch {
	case !started:
		return errors.New("not started")
	case handedOver:
		return errors.New("handed over to a new process (graceful restart)")
	}
	var errs []error
	if run == nil {
		errs = append(errs, errors.New("engine: not running (no queue bound)"))
	} else {
		select {
		case <-run.done:
			errs = append(errs, fmt.Errorf("engine: stopped: %v", run.err))
		default:
		}
	}
	if rules == nil {
		errs = append(errs, errors.New("nft rules: not installed"))
	} else if err := s.rulesPresent(); err != nil {
		errs = append(errs, fmt.Errorf("nft rules: %w", err))
	}
	if px != nil && probe {
		ctx, cancel := context.WithTimeout(context.Background(), ReadyProbeTimeout)
		b := px.Probe(ctx, ReadyBackendWindow)
		cancel()
		now := time.Now()
		if !b.Reachable(now, ReadyBackendWindow+ReadyProbeTimeout) {
			why := "no dial succeeded"
			if b.LastErr != nil && !b.LastFailure.Before(b.LastOK) {
				why = fmt.Sprintf("last dial failed %s ago: %v", now.Sub(b.LastFailure).Round(time.Millisecond), b.LastErr)
			}
			errs = append(errs, fmt.Errorf("backend %s: unreachable: %s", s.cfg.Backend, why))
		}
	} else if px != nil {
		if b := px.BackendState(); b.LastFailure.After(b.LastOK) {
			errs = append(errs, fmt.Errorf("backend %s: unreachable: last dial failed %s ago: %v",
				s.cfg.Backend, time.Since(b.LastFailure).Round(time.Millisecond), b.LastErr))
		}
	}
	return errors.Join(errs...)
}
