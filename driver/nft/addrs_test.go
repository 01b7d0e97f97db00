package nft

import (
	"net/netip"
	"strings"
	"testing"
)

// TestAddrs: with Addrs, every rule is repeated for each address and
// matches its destination; the kernel takes the ruleset and lists it as
// rendered.
func TestAddrs(t *testing.T) {
	cfg := &Config{Port: 443, QueueNum: 10, QueueTotal: 1, FailOpen: true,
		Fallback: netip.MustParseAddrPort("10.99.10.2:8443"),
		Addrs:    []netip.Addr{netip.MustParseAddr("10.99.10.1"), netip.MustParseAddr("fd00:99:10::1")}}
	text, err := Render(cfg, QueueXT)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ip daddr 10.99.10.1 fib daddr type local meta l4proto tcp tcp dport 443 tcp flags & (fin|syn|rst|ack) == syn counter queue num 10 bypass",
		"ip6 daddr fd00:99:10::1 fib daddr type local meta l4proto tcp tcp dport 443 tcp flags & (fin|syn|rst|ack) == syn counter queue num 10 bypass",
		"meta nfproto ipv4 ip daddr 10.99.10.1 fib daddr type local meta l4proto tcp tcp dport 443 tcp flags & (fin|syn|rst|ack) == syn counter dnat ipv4 to 10.99.10.2:8443",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	if n := strings.Count(text, "fib daddr type local"); n != 13 { // (2 + 4) per address, one dnat
		t.Errorf("%d rules, want 13:\n%s", n, text)
	}
	if strings.Contains(text, "ip6 daddr fd00:99:10::1 fib daddr type local meta l4proto tcp tcp dport 443 tcp flags & (fin|syn|rst|ack) == syn counter dnat") {
		t.Error("an IPv6 destination has a dnat rule to an IPv4 fallback")
	}

	needRoot(t)
	ns, fd := netns(t)
	cfg.NetNS = fd
	r, err := Install(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	got := nftList(t, ns)
	// The kernel lists "tcp dport" without its "meta l4proto tcp".
	for _, want := range []string{"ip daddr 10.99.10.1 fib daddr type local tcp dport 443 meta mark",
		"ip6 daddr fd00:99:10::1 fib daddr type local tcp dport 443 ct state established",
		"ip daddr 10.99.10.1 fib daddr type local tcp dport 443 tcp flags syn / fin,syn,rst,ack counter packets 0 bytes 0 dnat ip to 10.99.10.2:8443"} {
		if !strings.Contains(got, want) {
			t.Errorf("kernel's ruleset lacks %q:\n%s", want, got)
		}
	}
}
