package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// validateBackend refuses a Backend that is this host at the protected
// Port: a loopback or unspecified address, or an address of one of this
// host's interfaces. The proxy's backend connection would go to the
// protected port itself; its own connections are never queued (they carry
// the mark), but whatever answered there would not be a backend.
func (c *ServerConfig) validateBackend() error {
	if !c.Backend.IsValid() || c.Backend.Port() != c.Port {
		return nil
	}
	a := c.Backend.Addr().Unmap()
	if !a.IsLoopback() && !a.IsUnspecified() && !isLocalAddr(a) {
		return nil
	}
	return errors.Join(ErrConfig, fmt.Errorf("proxy: the backend (--backend %s) is this host on the protected port (--port %d): "+
		"the proxy would hand its connections to itself; give the backend another port or host", c.Backend, c.Port))
}

// isLocalAddr reports whether a is an address of one of this host's
// interfaces (in this network namespace).
func isLocalAddr(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Unmap() == a {
			return true
		}
	}
	return false
}
