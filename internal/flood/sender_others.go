//go:build !linux

package flood

import (
	"context"
	"sync/atomic"
)

// Sender sends SYNs on a raw socket; it does not exist on this system.
type Sender struct{}

// NewSender returns ErrNotSupported.
func NewSender(gen *Generator) (*Sender, error) { return nil, ErrNotSupported }

// Close does nothing.
func (s *Sender) Close() error { return nil }

// Run does nothing.
func (s *Sender) Run(ctx context.Context, rate, count int, sent *atomic.Uint64) {}
