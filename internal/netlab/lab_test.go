package netlab_test

import (
	"net/netip"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
)

func TestHost(t *testing.T) {
	for _, tc := range []struct {
		p    string
		i    uint64
		want string
	}{
		{"10.99.0.0/24", 1, "10.99.0.1/24"},
		{"10.99.0.77/24", 2, "10.99.0.2/24"},
		{"10.99.0.0/24", 255, "10.99.0.255/24"},
		{"10.99.0.0/24", 256, "invalid Prefix"},
		{"10.99.0.0/16", 258, "10.99.1.2/16"},
		{"fd00:99::/64", 1, "fd00:99::1/64"},
		{"fd00:99::/64", 0x1_0000_0001, "fd00:99::1:0:1/64"},
		{"fd00:99::/64", 1 << 63, "fd00:99:0:0:8000::/64"},
		{"fd00:99::/120", 256, "invalid Prefix"},
	} {
		got := netlab.Host(netip.MustParsePrefix(tc.p), tc.i)
		if got.String() != tc.want {
			t.Errorf("Host(%s, %d) = %v, want %s", tc.p, tc.i, got, tc.want)
		}
	}
	if got := netlab.Host(netip.Prefix{}, 1); got.IsValid() {
		t.Errorf("Host(invalid) = %v", got)
	}
}
