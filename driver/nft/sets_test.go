package nft

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestRanges(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		v6   bool
		want []string
	}{
		{[]string{"10.99.1.0/24", "10.99.1.128/25", "10.99.2.0/24"}, false, []string{"10.99.1.0-10.99.2.255"}},
		{[]string{"10.99.3.7/32", "10.99.1.0/24", "fd00:99::/48"}, false, []string{"10.99.1.0/24", "10.99.3.7"}},
		{[]string{"10.99.3.7/32", "fd00:99::/48", "fd00:99:0:1::/64"}, true, []string{"fd00:99::/48"}},
		{[]string{"0.0.0.0/0"}, false, []string{"0.0.0.0/0"}},
		{[]string{"::ffff:10.99.4.0/120"}, false, []string{"10.99.4.0/24"}},
	} {
		var got []string
		for _, r := range ranges(prefixes(tc.in...), tc.v6) {
			got = append(got, rangeText(r))
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("ranges(%v, v6 %v) = %v, want %v", tc.in, tc.v6, got, tc.want)
		}
	}
	// A range to the last address has no end element.
	if es := elements(ranges(prefixes("0.0.0.0/0"), false)); len(es) != 1 {
		t.Errorf("0.0.0.0/0: %d elements, want 1", len(es))
	}
}

func TestRenderLists(t *testing.T) {
	cfg := &Config{Port: 8080, QueueTotal: 1, Fallback: netip.MustParseAddrPort("10.99.10.2:8081"),
		Lists: &Lists{Allow: prefixes("10.99.10.0/28"), Deny: prefixes("fd00:99::/48")}}
	got, err := Render(cfg, QueueNative)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"set allow4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 10.99.10.0/28 }",
		"elements = { fd00:99::/48 }",
		"counter allowed {",
		`ip6 saddr @deny6 counter name "denied" drop`,
		`ip saddr @allow4 counter name "allowed" accept`,
		"syn ip saddr @allow4 counter dnat ipv4 to 10.99.10.2:8081",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, got)
		}
	}
	if i, j := strings.Index(got, "@deny4"), strings.Index(got, "queue"); i < 0 || j < i {
		t.Errorf("the lists do not come before the queue:\n%s", got)
	}
}

// TestSetLists installs a ruleset with lists in a fresh namespace, replaces
// them in one transaction, and reads the counters back; nft referees.
func TestSetLists(t *testing.T) {
	needRoot(t)
	ns, fd := netns(t)
	cfg := &Config{Port: 8080, QueueNum: 10, QueueTotal: 1, NetNS: fd,
		Fallback: netip.MustParseAddrPort("10.99.10.2:8081"),
		Lists:    &Lists{Allow: prefixes("10.99.10.0/28", "fd00:99:10::/64"), Deny: prefixes("10.99.11.0/24")}}
	r, err := Install(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	got := nftList(t, ns)
	for _, want := range []string{"10.99.10.0/28", "fd00:99:10::/64", "10.99.11.0/24", "counter allowed", `counter name "denied" drop`} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, got)
		}
	}
	if err := SetLists(cfg, &Lists{Allow: prefixes("10.99.12.1/32"), Deny: prefixes("fd00:99:13::/64", "10.99.14.0/24")}); err != nil {
		t.Fatal(err)
	}
	got = nftList(t, ns)
	for _, want := range []string{"10.99.12.1", "fd00:99:13::/64", "10.99.14.0/24"} {
		if !strings.Contains(got, want) {
			t.Errorf("after SetLists, ruleset lacks %q:\n%s", want, got)
		}
	}
	for _, gone := range []string{"10.99.10.0/28", "10.99.11.0/24", "fd00:99:10::/64"} {
		if strings.Contains(got, gone) {
			t.Errorf("after SetLists, ruleset still has %q:\n%s", gone, got)
		}
	}
	lc, err := ReadCounts(cfg)
	if err != nil || lc != (Counts{}) {
		t.Errorf("ReadCounts = %+v, %v; want zeros", lc, err)
	}
	if err := SetLists(cfg, nil); err != nil {
		t.Fatalf("emptying the lists: %v", err)
	}
	plain := &Config{Table: "synproxy_lite_plain", Port: 8081, QueueNum: 20, QueueTotal: 1, NetNS: fd}
	r2, err := Install(plain)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Remove()
	if _, err := ReadCounts(plain); !errors.Is(err, ErrNoLists) {
		t.Errorf("ReadCounts of a table without lists: %v, want ErrNoLists", err)
	}
	if err := SetLists(plain, nil); !errors.Is(err, ErrNoLists) {
		t.Errorf("SetLists of a table without lists: %v, want ErrNoLists", err)
	}
}

// TestOnDemandRules installs an on-demand ruleset, engages and releases
// it; nft referees.
func TestOnDemandRules(t *testing.T) {
	needRoot(t)
	ns, fd := netns(t)
	cfg := &Config{Port: 8080, QueueNum: 10, QueueTotal: 1, NetNS: fd, OnDemand: true,
		Fallback: netip.MustParseAddrPort("10.99.10.2:8081")}
	text, err := Render(cfg, QueueNative)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"set ondemand {", `== syn counter name "syns"`, "== syn tcp dport @ondemand accept",
		"hook prerouting priority mangle", "dnat ipv4 to 10.99.10.2:8081"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered ruleset lacks %q:\n%s", want, text)
		}
	}
	r, err := Install(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	if got := nftList(t, ns); !strings.Contains(got, "elements = { 8080 }") {
		t.Errorf("not engaged: the set lacks the port:\n%s", got)
	}
	if err := SetEngaged(cfg, true); err != nil {
		t.Fatal(err)
	}
	if got := nftList(t, ns); strings.Contains(got, "elements = { 8080 }") {
		t.Errorf("engaged: the set still holds the port:\n%s", got)
	}
	if err := SetEngaged(cfg, false); err != nil {
		t.Fatal(err)
	}
	if got := nftList(t, ns); !strings.Contains(got, "elements = { 8080 }") {
		t.Errorf("released: the set lacks the port:\n%s", got)
	}
	if c, err := ReadCounts(cfg); err != nil || c.SYNs != 0 {
		t.Errorf("ReadCounts = %+v, %v", c, err)
	}
}

// TestProvenRules installs proven clients first; nft referees the sets
// and the rules.
func TestProvenRules(t *testing.T) {
	needRoot(t)
	ns, fd := netns(t)
	for _, failOpen := range []bool{false, true} {
		cfg := &Config{Port: 8080, QueueNum: 10, QueueTotal: 2, NetNS: fd, FailOpen: failOpen,
			Proven: &Proven{Queue: 12, Size: 1024, Timeout: 5 * time.Minute}}
		text, err := Render(cfg, QueueNative)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Install(cfg)
		if err != nil {
			t.Fatal(err)
		}
		got := nftList(t, ns)
		for _, want := range []string{"set proven4 {", "size 1024", "flags dynamic,timeout", "timeout 5m",
			"update @proven4 { ip saddr }", "update @proven6 { ip6 saddr }", `ip saddr @proven4 counter name "proven"`} {
			if !strings.Contains(got, want) {
				t.Errorf("fail-open %v: ruleset lacks %q:\n%s", failOpen, want, got)
			}
		}
		for _, want := range []string{"set proven6 {", "update @proven4 { ip saddr }", `counter name "proven" queue num 12`} {
			if !strings.Contains(text, want) {
				t.Errorf("rendered ruleset lacks %q:\n%s", want, text)
			}
		}
		if i, j := strings.Index(text, "@proven4 counter"), strings.Index(text, "queue num 10-11"); i < 0 || j < i {
			t.Errorf("the proven queue does not come first:\n%s", text)
		}
		r.Remove()
	}
}
