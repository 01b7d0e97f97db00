package proxy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/afxdp"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
)

// The protection policy of a Server (ServerConfig.Lists and Policy): the
// allow and deny lists live in nft sets of the Server's table (and, on a
// driver that taps below netfilter, in the engine too, which then leaves
// those sources alone); the limits, the reflection budget and the modes
// are the engine's. In on-demand mode the Server follows the port's SYN
// rate from the nft counter and moves the SYNs between the service and the
// engine (nft.SetEngaged) as the engine's hysteresis decides.

// ErrNoLists is returned by SetLists for a Server configured without
// Lists.
var ErrNoLists = errors.New("proxy: the Server has no allow and deny lists (ServerConfig.Lists)")

// policyState is a Server's policy state.
type policyState struct {
	lists  atomic.Pointer[nft.Lists]    // the lists in force (Lists set)
	xdp    atomic.Pointer[afxdp.Driver] // the engine's driver when its XDP program applies the policy
	prover atomic.Pointer[proverBox]    // the engine's driver when it serves proven clients itself
}

type proverBox struct{ p driver.Prover }

// provenDrivers names the drivers that serve proven clients.
func provenDrivers() []string {
	var names []string
	for _, d := range drivers {
		if d.Proven {
			names = append(names, d.Name)
		}
	}
	return names
}

// provenHandoff wraps h, when the driver d serves proven clients itself,
// so that d learns the source of every connection handed over (once per
// connection, never per packet).
func (s *Server) provenHandoff(d any, h engine.Handoff) engine.Handoff {
	p, ok := d.(driver.Prover)
	if s.cfg.ProvenClients == nil || !ok {
		s.pol.prover.Store(nil)
		return h
	}
	s.pol.prover.Store(&proverBox{p})
	return engine.HandoffFunc(func(hs *engine.Handshake) error {
		err := h.Handoff(hs)
		if err == nil {
			p.Prove(hs.Tuple.Client.Addr())
		}
		return err
	})
}

// provenPackets returns the packets the driver took on its proven
// clients' ring, when it serves them itself.
func (s *Server) provenPackets() (uint64, bool) {
	if b := s.pol.prover.Load(); b != nil {
		return b.p.ProvenPackets(), true
	}
	return 0, false
}

func cloneLists(l *nft.Lists) *nft.Lists {
	if l == nil {
		return &nft.Lists{}
	}
	return &nft.Lists{Allow: slices.Clone(l.Allow), Deny: slices.Clone(l.Deny)}
}

// validatePolicy checks the lists and the policy before anything opens.
func (c *ServerConfig) validatePolicy() error {
	bad := func(format string, a ...any) error {
		return errors.Join(ErrConfig, fmt.Errorf("proxy: "+format, a...))
	}
	if c.Lists != nil {
		for _, p := range append(slices.Clone(c.Lists.Allow), c.Lists.Deny...) {
			if !p.IsValid() {
				return bad("invalid prefix in Lists")
			}
		}
	}
	if c.ProvenClients != nil {
		name := c.Driver
		if name == "" {
			name = "nfqueue"
		}
		if d, _ := LookupDriver(name); !d.Proven {
			return bad("ProvenClients needs a driver that serves them (%s), not %s", strings.Join(provenDrivers(), " or "), name)
		}
		if int(c.Queue)+2*(max(c.Workers, 1)+1) > 65536 {
			return bad("Queue+Workers exceeds the queue numbers")
		}
	}
	if c.Policy == nil {
		return nil
	}
	if c.Policy.Mode != engine.ModeProtect && !c.Backend.IsValid() {
		return bad("mode %s needs a Backend: the traffic it lets through goes there", c.Policy.Mode)
	}
	if c.Policy.Mode == engine.ModeOnDemand && c.Policy.EngageRate <= 0 {
		return bad("mode on-demand needs Policy.EngageRate")
	}
	return nil
}

// policyEngine completes the engine's configuration with the policy: the
// driver's kind and, on a tap driver, the lists in force.
func (s *Server) policyEngine(ec *engine.Config) {
	ec.Tap = s.drv.Drop
	if s.cfg.Policy != nil {
		p := *s.cfg.Policy
		ec.Policy = &p
	}
	if l := s.Lists(); l != nil && ec.Tap {
		if ec.Policy == nil {
			ec.Policy = &engine.Policy{}
		}
		ec.Policy.Allow, ec.Policy.Deny = l.Allow, l.Deny
	}
}

// provenQueues is the number of queues of proven clients: one with
// ProvenClients on a queueing driver, else none (a tap driver opens its
// ring of proven clients itself).
func (s *Server) provenQueues() int {
	if s.cfg.ProvenClients != nil && !s.drv.Drop {
		return 1
	}
	return 0
}

// policyNFT completes the nft configuration with the policy.
func (s *Server) policyNFT(nc *nft.Config) {
	if p := s.cfg.ProvenClients; p != nil && !s.drv.Drop {
		nc.Proven = &nft.Proven{Queue: nc.QueueNum + nc.QueueTotal, Size: p.Size, Timeout: p.Timeout}
	}
	if s.cfg.Lists != nil {
		nc.Lists = s.pol.lists.Load()
		if nc.Lists == nil {
			nc.Lists = cloneLists(s.cfg.Lists)
		}
	}
	if p := s.cfg.Policy; p != nil {
		nc.Monitor = p.Mode == engine.ModeMonitor
		nc.OnDemand = p.Mode == engine.ModeOnDemand
	}
}

// Lists returns the allow and deny lists in force (nil without Lists).
func (s *Server) Lists() *nft.Lists {
	if s.cfg.Lists == nil {
		return nil
	}
	if l := s.pol.lists.Load(); l != nil {
		return cloneLists(l)
	}
	return cloneLists(s.cfg.Lists)
}

// validPrefixes reports whether every prefix of l is valid.
func validPrefixes(l *nft.Lists) bool {
	for _, p := range append(slices.Clone(l.Allow), l.Deny...) {
		if !p.IsValid() {
			return false
		}
	}
	return true
}
