package proxy

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/nft"
)

// tableWatchInterval is how often a Server checks that its nft table is
// still there and still its own.
const tableWatchInterval = time.Second

// tableWatch is the state of watchTable.
type tableWatch struct {
	lost atomic.Uint64 // times the table was found gone or taken
}

// RulesLost returns how many times the Server found its nft table gone
// (deleted with nft delete table, or by a firewall reload that flushed the
// ruleset) or no longer its own, and installed its rules again.
func (s *Server) RulesLost() uint64 { return s.watch.lost.Load() }

// watchTable checks every tableWatchInterval that the Server's table
// exists and carries its owner mark. When it does not, the Server logs an
// error, counts it (RulesLost) and installs the rules again: a table left
// by a process that is gone is replaced, but a table that another running
// process or a firewall made under that name is not, and then the Server
// stops with the error (Run returns it; the daemon exits non-zero). It
// stops watching when the Server closes or a graceful restart handed the
// table to a new process.
func (s *Server) watchTable() {
	self := nft.Self()
	go func() {
		tick := time.NewTicker(tableWatchInterval)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
			nc := s.nftConfig()
			o, err := nft.TableOwner(nc)
			if err == nil && o == self {
				continue
			}
			s.mu.Lock()
			if s.rules == nil || s.handedOver {
				s.mu.Unlock()
				return
			}
			if o2, err2 := nft.TableOwner(nc); err2 == nil && o2 == self { // a restart that failed put it back
				s.mu.Unlock()
				continue
			}
			s.watch.lost.Add(1)
			what := "gone"
			if err == nil {
				what = "taken by " + o.String()
			} else if !errors.Is(err, nft.ErrNoTable) {
				what = err.Error()
			}
			s.log.Error("the nft table disappeared; installing the rules again", "table", "inet "+nc.Table,
				"found", what, "times", s.watch.lost.Load())
			rules, err := nft.Install(nc)
			if err != nil {
				s.mu.Unlock()
				select {
				case s.died <- fmt.Errorf("proxy: the nft table inet %s disappeared and could not be installed again: %w", nc.Table, err):
				default:
				}
				return
			}
			s.rules = rules
			s.log.Info("nft rules installed again", "table", "inet "+nc.Table, "queueing", rules.Method.String())
			s.mu.Unlock()
		}
	}()
}

// rulesPresent says whether the Server's nft table is in the kernel now
// and still its own.
func (s *Server) rulesPresent() error {
	nc := s.nftConfig()
	o, err := nft.TableOwner(nc)
	switch {
	case errors.Is(err, nft.ErrNoTable):
		return fmt.Errorf("table inet %s is gone", nc.Table)
	case err != nil:
		return err
	case o != nft.Self():
		return fmt.Errorf("table inet %s is owned by %s", nc.Table, o)
	}
	return nil
}
