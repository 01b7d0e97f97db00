package netlab_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
)

func ExampleHost() {
	v4 := netip.MustParsePrefix("10.99.200.0/24")
	v6 := netip.MustParsePrefix("fd00:99:200::/64")
	for i, role := range []string{"client", "proxy"} {
		fmt.Println(role, netlab.Host(v4, uint64(i+1)), netlab.Host(v6, uint64(i+1)))
	}
	// Output:
	// client 10.99.200.1/24 fd00:99:200::1/64
	// proxy 10.99.200.2/24 fd00:99:200::2/64
}

// A client and a server namespace joined by a veth pair; the client runs
// a command and the server listens from Go. Needs root.
func Example() {
	l, err := netlab.New(&netlab.Config{Prefix: "splx"})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	cli, _ := l.AddNS("cli")
	srv, _ := l.AddNS("srv")
	err = l.Link(cli, srv, &netlab.LinkConfig{
		AAddrs: []netip.Prefix{netip.MustParsePrefix("10.99.0.1/24")},
		BAddrs: []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24")},
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := srv.Listen("tcp", "10.99.0.2:8080")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	out, err := cli.CombinedOutput(context.Background(), "curl", "-s", "http://10.99.0.2:8080/")
	fmt.Printf("%s %v\n", out, err)
}
