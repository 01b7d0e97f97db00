package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// validateBackend refuses a Backend that is this host at the protected
// Port: a loopback or unspecified address, or an address of one of this
// host's interfaces (with Addrs, one of those). The proxy's backend connection would go to the
// protected port itself; its own connections are never queued (they carry
// the mark), but whatever answered there would not be a backend.
func (c *ServerConfig) validateBackend() error {
	for _, b := range append([]netip.AddrPort{c.Backend}, c.Backends...) {
		if !b.IsValid() || b.Port() != c.Port {
			continue
		}
		a := b.Addr().Unmap()
		if !a.IsLoopback() && !a.IsUnspecified() && !isLocalAddr(a) {
			continue
		}
		if len(c.Addrs) > 0 && !a.IsUnspecified() && !slices.ContainsFunc(c.Addrs, func(p netip.Addr) bool { return p.Unmap() == a }) {
			continue // an address of this host that is not protected
		}
		return errors.Join(ErrConfig, fmt.Errorf("proxy: the backend (--backend %s) is this host on the protected port (--port %d): "+
			"the proxy would hand its connections to itself; give the backend another port or host", b, c.Port))
	}
	return nil
}

// addrStrings returns the "host:port" of each address.
func addrStrings(aps []netip.AddrPort) []string {
	var s []string
	for _, ap := range aps {
		s = append(s, ap.String())
	}
	return s
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
