package proxy

import (
	"errors"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// newEngine makes the engine on d: the one place that spells the engine's
// configuration from the Server's (its rules for IPv4 and IPv6 clients,
// the other options of ServerConfig.Engine, and what the Server supplies).
func (s *Server) newEngine(d driver.Driver, h engine.Handoff) (*engine.Engine, error) {
	var ec engine.Config
	if s.cfg.Engine != nil {
		ec = *s.cfg.Engine
	}
	ec.Port, ec.Ring, ec.Handoff, ec.Logger = s.cfg.Port, s.ring, h, s.log
	if s.cfg.Rule != nil {
		ec.Rule4 = s.cfg.Rule
	}
	if s.cfg.Rule6 != nil {
		ec.Rule6 = s.cfg.Rule6
	}
	s.policyEngine(&ec)
	return engine.New(d, &ec)
}

// validateRules checks, before anything is opened, what the engine would
// refuse in the rules: ECN (a handed-over socket cannot carry it) and a
// window scale above 14.
func (c *ServerConfig) validateRules() error {
	for _, r := range []*packet.Rule{c.Rule, c.Rule6} {
		switch {
		case r == nil:
		case r.ECN:
			return errors.Join(ErrConfig, errors.New("proxy: the engine does not offer ECN"))
		case r.HasWScale && r.WScale > packet.MaxWScale:
			return errors.Join(ErrConfig, errors.New("proxy: window scale above 14"))
		}
	}
	return nil
}
