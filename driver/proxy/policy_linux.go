package proxy

import (
	"errors"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
)

// onDemandInterval is how often an on-demand Server reads the SYN counter.
const onDemandInterval = 100 * time.Millisecond

// SetLists replaces the allow and deny lists at once, in the nft sets (one
// transaction: every packet sees the old lists or the new ones) and, on a
// driver that taps below netfilter, in the engine. A graceful restart and
// a reinstalled table keep them. It fails with ErrNoLists for a Server
// configured without Lists.
func (s *Server) SetLists(l *nft.Lists) error {
	if s.cfg.Lists == nil {
		return ErrNoLists
	}
	l = cloneLists(l)
	if !validPrefixes(l) {
		return errors.Join(ErrConfig, errors.New("proxy: invalid prefix in the lists"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pol.lists.Store(l)
	if s.rules != nil && !s.handedOver {
		if err := nft.SetLists(s.nftConfig(), l); err != nil {
			return err
		}
	}
	if s.eng != nil {
		s.eng.SetLists(l.Allow, l.Deny)
	}
	s.log.Info("allow and deny lists replaced", "allow", len(l.Allow), "deny", len(l.Deny))
	return nil
}

// PolicyCounts reads the counters of the policy's nft rules: the packets
// of allowed and denied sources, and the port's SYNs in on-demand mode.
func (s *Server) PolicyCounts() (nft.Counts, error) {
	return nft.ReadCounts(s.nftConfig())
}

// watchOnDemand follows the port's SYN rate in on-demand mode: every
// onDemandInterval it reads the nft SYN counter, tells the engine
// (Engine.ObserveSYNs) and moves the SYNs to the engine or back to the
// service when the engine's decision changes. The engine switches first
// when the cookies engage, and the rules first when they release, so that
// no SYN finds nobody to answer it for long.
func (s *Server) watchOnDemand() {
	if s.cfg.Policy == nil || s.cfg.Policy.Mode != engine.ModeOnDemand {
		return
	}
	go func() {
		tick := time.NewTicker(onDemandInterval)
		defer tick.Stop()
		var last uint64
		applied, lost := false, s.RulesLost()
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
			nc := s.nftConfig()
			c, err := nft.ReadCounts(nc)
			if err != nil {
				continue
			}
			if l := s.RulesLost(); l != lost { // installed again: not engaged, counter from zero
				applied, lost, last = false, l, 0
			}
			n := c.SYNs - last
			if c.SYNs < last {
				n = c.SYNs
			}
			last = c.SYNs
			eng := s.Engine()
			if eng == nil {
				continue
			}
			engaged := eng.ObserveSYNs(int(n))
			if engaged == applied {
				continue
			}
			s.mu.Lock()
			if s.rules == nil || s.handedOver {
				s.mu.Unlock()
				return
			}
			err = nft.SetEngaged(nc, engaged)
			s.mu.Unlock()
			if err != nil {
				s.log.Error("on-demand: moving the SYNs failed", "engaged", engaged, "err", err)
				continue
			}
			applied = engaged
		}
	}()
}
