//go:build !linux

package handoff

import "time"

// HandOver returns ErrNotSupported outside Linux.
func (p *Proxy) HandOver(timeout time.Duration, start func(conns []Parked) error) (moved, kept int, err error) {
	return 0, 0, ErrNotSupported
}

// Adopt returns ErrNotSupported outside Linux.
func (p *Proxy) Adopt(conns []Parked) error { return ErrNotSupported }
