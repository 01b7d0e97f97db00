package netlab

import (
	"errors"
	"net/netip"
	"syscall"
)

// ErrNotSupported is returned on systems without network namespaces.
var ErrNotSupported = errors.New("netlab: not supported on this system")

// ErrClosed is returned by operations on a closed lab.
var ErrClosed = errors.New("netlab: closed")

// OpError is an error of a system operation, with the operation and the
// namespace it was done in named.
type OpError struct {
	// Op names the operation, e.g. "add address 10.99.0.1/24 on eth0".
	Op string
	// NS is the name of the namespace, or empty for the process's own.
	NS string
	// Err is the underlying error.
	Err error
}

func (e *OpError) Error() string {
	s := "netlab: " + e.Op
	if e.NS != "" {
		s += " in " + e.NS
	}
	s += ": " + e.Err.Error()
	if errors.Is(e.Err, syscall.EPERM) || errors.Is(e.Err, syscall.EACCES) {
		s += " (needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN)"
	}
	return s
}

// Unwrap returns the underlying error.
func (e *OpError) Unwrap() error { return e.Err }

// Config configures a Lab. A nil *Config means the defaults.
type Config struct {
	// Prefix starts the name of every namespace of the lab (see the
	// package documentation for the whole name). Use "spl" followed by a
	// short tag of the user, e.g. "splh" for the handoff tests, so that
	// Sweep of one user never touches another's. Empty means "spl".
	Prefix string
}

func (c *Config) prefix() string {
	if c == nil || c.Prefix == "" {
		return "spl"
	}
	return c.Prefix
}

// LinkConfig configures a veth pair made by Lab.Link. A nil *LinkConfig
// means the defaults.
type LinkConfig struct {
	// AName and BName are the interface names in the first and the
	// second namespace, at most 15 bytes. Empty means "v" followed by the
	// other namespace's role, cut to 15 bytes.
	AName, BName string
	// AAddrs and BAddrs are the addresses given to each end, with their
	// prefix length (the length also adds the connected route). IPv6
	// addresses are added with nodad, so they are usable at once.
	AAddrs, BAddrs []netip.Prefix
	// MTU of both ends; 0 keeps the kernel's default (1500).
	MTU int
	// AMaster and BMaster, when set, name a bridge (NS.AddBridge) in the
	// first and the second namespace that the end becomes a port of.
	// Addresses then usually belong on the bridge, not on the port.
	AMaster, BMaster string
}

// Host returns address number i of the prefix p, keeping p's length:
// Host(10.99.0.0/24, 1) is 10.99.0.1/24. It is the way tests and the demo
// write their address plan. It returns the zero Prefix when i does not fit
// into the host part of p.
func Host(p netip.Prefix, i uint64) netip.Prefix {
	if !p.IsValid() {
		return netip.Prefix{}
	}
	p = p.Masked()
	a := p.Addr().AsSlice()
	hostBits := len(a)*8 - p.Bits()
	if hostBits < 64 && i>>uint(hostBits) != 0 {
		return netip.Prefix{}
	}
	for j := len(a) - 1; j >= 0 && i != 0; j-- {
		a[j] |= byte(i)
		i >>= 8
	}
	addr, _ := netip.AddrFromSlice(a)
	return netip.PrefixFrom(addr, p.Bits())
}
