//go:build !linux

package proxy

import (
	"context"

	"github.com/synproxy-lite/synproxy-lite/driver/nft"
)

// Start returns ErrNotSupported outside Linux.
func (s *Server) Start() error { return ErrNotSupported }

// Run returns ErrNotSupported outside Linux.
func (s *Server) Run(ctx context.Context) error { return ErrNotSupported }

// Close does nothing outside Linux.
func (s *Server) Close() error { return nil }

// Restart returns ErrNotSupported outside Linux.
func (s *Server) Restart() error { return ErrNotSupported }

// Ruleset returns ErrNotSupported outside Linux.
func Ruleset(cfg *ServerConfig) (string, error) { return "", ErrNotSupported }

// inheritance is what a process started by a graceful restart received
// (Linux only).
type inheritance struct{}

// SetLists returns ErrNotSupported outside Linux.
func (s *Server) SetLists(l *nft.Lists) error { return ErrNotSupported }

// PolicyCounts returns ErrNotSupported outside Linux.
func (s *Server) PolicyCounts() (nft.Counts, error) { return nft.Counts{}, ErrNotSupported }
