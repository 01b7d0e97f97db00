package bgp_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/synproxy-lite/synproxy-lite/bgp"
)

// A node announces its service address to one router while its backend
// answers.
func Example() {
	backendUp := func() (bool, string) { return true, "" }
	s, err := bgp.New(&bgp.Config{
		ASN:      65001,
		RouterID: netip.MustParseAddr("192.0.2.11"),
		Peers:    []bgp.Peer{{Addr: netip.MustParseAddr("192.0.2.1"), ASN: 65000}},
		Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")},
		HoldTime: 9 * time.Second,
		Ready:    backendUp,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = s // s.Start() opens the sessions; s.Withdraw, then s.Close, on the way out
	b, _ := bgp.AppendUpdate(nil, &bgp.Update{NLRI: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")},
		ASPath: []uint32{65001}, NextHop: netip.MustParseAddr("192.0.2.11")})
	fmt.Println(len(b), "bytes")
	// Output: 48 bytes
}
