package localaddr

import (
	"errors"
	"net/netip"
)

// ErrNotSupported is returned by New where there is no rtnetlink.
var ErrNotSupported = errors.New("localaddr: not supported on this platform")

// ErrDump is returned when the kernel ends a route dump with an error that
// names no errno.
var ErrDump = errors.New("localaddr: route dump failed")

// Set is a snapshot of the host's local addresses: the destinations of the
// routes of type local in the network namespace, which cover every address
// of every interface and the prefixes routed to the host as a whole (ip
// route add local 192.0.2.0/24 dev lo). A packet whose destination is none
// of them is traffic the host forwards. A Set is never modified once a
// Watch has published it.
type Set struct {
	Addrs map[netip.Addr]struct{} // /32 and /128
	Nets  []netip.Prefix          // wider local routes
}

// Has reports whether a is a local address. It allocates nothing.
func (s *Set) Has(a netip.Addr) bool {
	if _, ok := s.Addrs[a]; ok {
		return true
	}
	for _, p := range s.Nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
