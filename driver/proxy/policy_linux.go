package proxy

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/afxdp"
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
	if x := s.pol.xdp.Load(); x != nil && !s.handedOver {
		if err := x.SetLists(l.Allow, l.Deny); err != nil {
			return err
		}
	}
	s.log.Info("allow and deny lists replaced", "allow", len(l.Allow), "deny", len(l.Deny))
	return nil
}

// policyDriver hands the policy to a driver that applies part of it below
// netfilter (afxdp's XDP program: the lists in force, the on-demand
// switch) and keeps it for SetLists, PolicyCounts and the on-demand watch.
func (s *Server) policyDriver(d driver.Driver) error {
	x, ok := d.(*afxdp.Driver)
	if !ok {
		s.pol.xdp.Store(nil)
		return nil
	}
	if l := s.Lists(); l != nil {
		if err := x.SetLists(l.Allow, l.Deny); err != nil {
			return err
		}
	}
	s.pol.xdp.Store(x)
	return nil
}

// PolicyCounts reads the counters of the policy's nft rules: the packets
// of allowed and denied sources, and the port's SYNs in on-demand mode. On
// afxdp the XDP program drops the denied sources' packets before
// netfilter, and in on-demand mode counts the port's SYNs (the engaged
// ones never reach netfilter): its counts stand for those; the allowed
// sources' packets go on to the nft rules, which count them.
func (s *Server) PolicyCounts() (nft.Counts, error) {
	c, err := nft.ReadCounts(s.nftConfig())
	if n, ok := s.provenPackets(); ok {
		c.Proven = n
	}
	if x := s.pol.xdp.Load(); x != nil {
		pc := x.Counters().Program
		c.Denied += pc.Denied
		if s.cfg.Policy != nil && s.cfg.Policy.Mode == engine.ModeOnDemand {
			c.SYNs = pc.SYNs
		}
		if errors.Is(err, nft.ErrNoLists) {
			err = nil
		}
	}
	return c, err
}

// watchOnDemand follows the port's SYN rate in on-demand mode: every
// onDemandInterval it reads the nft SYN counter and the kernel's listener
// overflows, tells the engine (Engine.ObserveSYNs, ObserveOverflow) and
// moves the SYNs to the engine or back to the
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
		var last, overflows, passed uint64
		applied, lost, haveOverflows := false, s.RulesLost(), false
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
			nc := s.nftConfig()
			c, err := s.PolicyCounts()
			if err != nil {
				continue
			}
			if l := s.RulesLost(); l != lost { // installed again: not engaged, counter from zero
				applied, lost = false, l
				if x := s.pol.xdp.Load(); x == nil {
					last = 0
				} else { // its counter goes on; its switch follows the rules
					_ = x.SetEngaged(false)
				}
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
			if x := s.pol.xdp.Load(); x != nil {
				// The program passed these SYNs before the engine could:
				// the engine's counter tells them all the same.
				p := x.Counters().Program.SYNsPassed
				if p < passed {
					passed = 0 // another driver since
				}
				eng.PolicyCounters().SYNPassed.Add(p - passed)
				passed = p
			}
			engaged := eng.ObserveSYNs(int(n))
			if o, ok := listenOverflows(); ok {
				if o > overflows && haveOverflows {
					engaged = eng.ObserveOverflow()
				}
				overflows, haveOverflows = o, true
			}
			if engaged == applied {
				continue
			}
			s.mu.Lock()
			if s.rules == nil || s.handedOver {
				s.mu.Unlock()
				return
			}
			err = nft.SetEngaged(nc, engaged)
			if x := s.pol.xdp.Load(); x != nil && err == nil {
				err = x.SetEngaged(engaged)
			}
			s.mu.Unlock()
			if err != nil {
				s.log.Error("on-demand: moving the SYNs failed", "engaged", engaged, "err", err)
				continue
			}
			applied = engaged
		}
	}()
}

// listenOverflows reads the network namespace's count of SYNs its
// listeners could not queue: TcpExt ListenOverflows (an accept queue was
// full), TCPReqQFullDrop and TCPReqQFullDoCookies (a SYN queue was full).
// They count every listener of the namespace, not only the backend's.
func listenOverflows() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/net/netstat")
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != "TcpExt:" || len(values) != len(names) {
			continue
		}
		var n uint64
		found := false
		for j, name := range names {
			switch name {
			case "ListenOverflows", "TCPReqQFullDrop", "TCPReqQFullDoCookies":
				v, err := strconv.ParseUint(values[j], 10, 64)
				if err == nil {
					n, found = n+v, true
				}
			}
		}
		return n, found
	}
	return 0, false
}
