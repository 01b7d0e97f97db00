package proxy

import (
	"errors"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// newEngine makes the engine on d: the one place that spells the engine's
// configuration from the Server's (its rules for IPv4 and IPv6 clients,
// the other options of ServerConfig.Engine, and what the Server supplies).
func (s *Server) newEngine(d driver.Driver, h driver.Handoff) (*driver.Engine, error) {
	var ec driver.Config
	if s.cfg.Engine != nil {
		ec = *s.cfg.Engine
	}
	ec.Port, ec.Ring, ec.Handoff, ec.Logger = s.cfg.Port, s.ring, h, s.log
	if r := s.cfg.Rule; r != nil {
		ec.MSS = ruleMSS(r)
		ec.WScale, ec.WScaleOff = r.WScale, !r.HasWScale
		ec.NoTimestamp, ec.NoSACK, ec.TTL = !r.Timestamp, !r.SACKPerm, r.TTL
	}
	if r := s.cfg.Rule6; r != nil {
		ec.MSS6 = ruleMSS(r)
	}
	return driver.New(d, &ec)
}

// ruleMSS is the engine's MSS setting for r: driver.NoMSS without "mss"
// (zero, the engine's default, stays zero).
func ruleMSS(r *packet.Rule) int {
	if !r.HasMSS {
		return driver.NoMSS
	}
	return int(r.MSS)
}

// validateRules checks that the engine can apply the rules: one set of
// options for both families, and no ECN.
func (c *ServerConfig) validateRules() error {
	if (c.Rule != nil && c.Rule.ECN) || (c.Rule6 != nil && c.Rule6.ECN) {
		return errors.Join(ErrConfig, errors.New("proxy: the engine does not offer ECN"))
	}
	if c.Rule6 == nil {
		return nil
	}
	if c.Rule == nil {
		return errors.Join(ErrConfig, errors.New("proxy: Rule6 needs a Rule"))
	}
	r6 := *c.Rule6
	r6.MSS, r6.HasMSS = c.Rule.MSS, c.Rule.HasMSS
	if r6 != *c.Rule {
		return errors.Join(ErrConfig, errors.New("proxy: Rule6 differs from Rule in more than the MSS"))
	}
	return nil
}
