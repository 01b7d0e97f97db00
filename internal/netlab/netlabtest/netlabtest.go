// Package netlabtest wraps package netlab for tests: labs that are closed by
// t.Cleanup (so even a failing test leaves no namespace behind), stale
// namespaces of crashed runs swept first, and a loud skip without root.
package netlabtest

import (
	"net/netip"
	"os"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
)

// Need skips the test, loudly, unless it runs as root on Linux.
func Need(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: needs root (network namespaces, veth pairs); run as root, CI does")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		t.Skip("SKIPPED LOUDLY: no network namespaces on this system: ", err)
	}
}

// New returns an empty lab whose namespaces start with prefix, removed by
// t.Cleanup. It first removes the namespaces a crashed run of the same
// prefix left behind.
func New(t testing.TB, prefix string) *netlab.Lab {
	t.Helper()
	Need(t)
	if removed, err := netlab.Sweep(prefix); err != nil {
		t.Logf("sweeping stale namespaces: %v", err)
	} else if len(removed) > 0 {
		t.Logf("removed stale namespaces %v", removed)
	}
	l, err := netlab.New(&netlab.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing the lab: %v", err)
		}
	})
	return l
}

// Pair is two namespaces, A and B, joined by one veth pair ("veth0" at
// both ends) with an IPv4 and an IPv6 address on each end.
type Pair struct {
	Lab    *netlab.Lab
	A, B   *netlab.NS
	A4, B4 netip.Addr // host 1 and host 2 of the IPv4 prefix
	A6, B6 netip.Addr // host 1 and host 2 of the IPv6 prefix
}

// NewPair builds a Pair with roles "a" and "b" on the prefixes v4 and v6
// (A gets host 1, B host 2 of each).
func NewPair(t testing.TB, prefix string, v4, v6 netip.Prefix) *Pair {
	t.Helper()
	l := New(t, prefix)
	a, err := l.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddNS("b")
	if err != nil {
		t.Fatal(err)
	}
	p := &Pair{Lab: l, A: a, B: b,
		A4: netlab.Host(v4, 1).Addr(), B4: netlab.Host(v4, 2).Addr(),
		A6: netlab.Host(v6, 1).Addr(), B6: netlab.Host(v6, 2).Addr()}
	err = l.Link(a, b, &netlab.LinkConfig{
		AName: "veth0", BName: "veth0",
		AAddrs: []netip.Prefix{netlab.Host(v4, 1), netlab.Host(v6, 1)},
		BAddrs: []netip.Prefix{netlab.Host(v4, 2), netlab.Host(v6, 2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
