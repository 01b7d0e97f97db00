//go:build !linux

package handoff

import "net"

// Materialise returns ErrNotSupported: TCP_REPAIR is Linux only.
func Materialise(h *Handshake, cfg *Config) (*net.TCPConn, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	return nil, ErrNotSupported
}
