//go:build !linux

package proxy

import "context"

// Listen returns ErrNotSupported outside Linux.
func Listen(ctx context.Context, cfg *Config) (*Listener, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return nil, ErrNotSupported
}
