package handoff_test

import (
	"fmt"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// The PROXY protocol v2 header a Proxy sends its backend, and how a
// backend reads it.
func ExampleAppendProxyHeader() {
	client := netip.MustParseAddrPort("192.0.2.7:51234")
	server := netip.MustParseAddrPort("198.51.100.1:443")
	hdr := handoff.AppendProxyHeader(nil, client, server)
	fmt.Printf("%d bytes: % x\n", len(hdr), hdr[12:16])

	c, s, n, err := handoff.ParseProxyHeader(append(hdr, "GET / HTTP/1.1\r\n"...))
	fmt.Println(c, s, n, err)
	// Output:
	// 28 bytes: 21 11 00 0c
	// 192.0.2.7:51234 198.51.100.1:443 28 <nil>
}
