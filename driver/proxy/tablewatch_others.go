//go:build !linux

package proxy

// RulesLost returns 0: a Server does not run on this system.
func (s *Server) RulesLost() uint64 { return 0 }

// tableWatch is the state of the nft table's watch (Linux only).
type tableWatch struct{}

// rulesPresent returns ErrNotSupported: no rules outside Linux.
func (s *Server) rulesPresent() error { return ErrNotSupported }
