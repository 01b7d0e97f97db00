package localaddr

import (
	"net/netip"
	"testing"
)

func TestSetHas(t *testing.T) {
	s := &Set{
		Addrs: map[netip.Addr]struct{}{netip.MustParseAddr("10.99.0.1"): {}, netip.MustParseAddr("fd00:99::1"): {}},
		Nets:  []netip.Prefix{netip.MustParsePrefix("10.99.8.0/24"), netip.MustParsePrefix("fd00:99:8::/64")},
	}
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"10.99.0.1", true},
		{"10.99.0.2", false},
		{"fd00:99::1", true},
		{"fd00:99::2", false},
		{"10.99.8.200", true},
		{"10.99.9.1", false},
		{"fd00:99:8::77", true},
		{"fd00:99:9::1", false},
	} {
		if got := s.Has(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Has(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	a := netip.MustParseAddr("10.99.8.1")
	if n := testing.AllocsPerRun(100, func() { s.Has(a) }); n != 0 {
		t.Errorf("Has allocates %v times", n)
	}
}
