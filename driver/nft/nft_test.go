package nft

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: this test programs nftables in a fresh network namespace and needs root")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("SKIPPED LOUDLY: nft (package nftables) is not installed; it referees the ruleset")
	}
}

// netns creates a network namespace for the test and returns its name and
// an open file descriptor.
func netns(t *testing.T) (string, int) {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	name := "splnft" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return name, int(f.Fd())
}

func nftList(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	return string(out)
}

func TestInstallRemove(t *testing.T) {
	needRoot(t)
	ns, fd := netns(t)
	cfg := &Config{Port: 8080, QueueNum: 10, QueueTotal: 2, FailOpen: true,
		Fallback: netip.MustParseAddrPort("10.99.10.2:8081"), NetNS: fd}
	r, err := Install(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Stale {
		t.Error("fresh namespace reported a stale table")
	}
	t.Logf("queue method: %v", r.Method)
	got := nftList(t, ns)
	for _, want := range []string{
		"table inet synproxy_lite",
		"hook prerouting priority raw",
		"hook prerouting priority mangle",
		"tcp dport 8080 ct state established counter packets 0 bytes 0 accept",
		"fib daddr type local",
		"tcp dport 8080",
		"socket mark 0x0053504c",
		"dnat ip to 10.99.10.2:8081",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, got)
		}
	}
	if r.Method == QueueXT && !strings.Contains(got, "NFQUEUE") && !strings.Contains(got, "xt target") {
		t.Errorf("ruleset lacks the NFQUEUE target:\n%s", got)
	}

	// A second start finds the table the first left behind.
	r2, err := Install(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Stale {
		t.Error("second install did not report the stale table")
	}
	if n := strings.Count(nftList(t, ns), "table inet synproxy_lite {"); n != 1 {
		t.Errorf("%d tables after reinstall, want 1", n)
	}
	if err := r2.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := r2.Remove(); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if got := nftList(t, ns); strings.Contains(got, "synproxy_lite") {
		t.Errorf("table left after remove:\n%s", got)
	}
}

func TestRender(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		m    QueueMethod
		want []string
		not  []string
	}{
		{"xt", Config{Port: 443, QueueTotal: 1}, QueueXT,
			[]string{"table inet synproxy_lite {", "tcp dport 443", "queue num 0  # xt NFQUEUE v3",
				"hook prerouting priority raw;"},
			[]string{"bypass", "dnat", "ct state", "priority mangle"}},
		{"native-balanced-failopen", Config{Port: 80, QueueNum: 4, QueueTotal: 4, FailOpen: true,
			Fallback: netip.MustParseAddrPort("[fd00::2]:81")}, QueueNative,
			[]string{"queue num 4-7 bypass", "dnat ipv6 to [fd00::2]:81", "chain failopen",
				// SYNs are queued before conntrack; the flows let
				// through go around the queue for good: after
				// conntrack, before the nat chain, ahead of the rule
				// that queues the other segments.
				// The daemon's own packets are never queued.
				"chain prerouting {\n\t\ttype filter hook prerouting priority raw; policy accept;\n" +
					"\t\tfib daddr type local meta l4proto tcp tcp dport 80 meta mark 0x0053504c counter accept\n" +
					"\t\tfib daddr type local meta l4proto tcp tcp dport 80 tcp flags & (fin|syn|rst|ack) == syn counter queue num 4-7 bypass\n\t}",
				"chain tracked {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n" +
					"\t\tfib daddr type local meta l4proto tcp tcp dport 80 meta mark 0x0053504c counter accept\n" +
					"\t\tfib daddr type local meta l4proto tcp tcp dport 80 socket mark 0x0053504c counter accept\n" +
					"\t\tfib daddr type local meta l4proto tcp tcp dport 80 ct state established counter accept\n" +
					"\t\tfib daddr type local meta l4proto tcp tcp dport 80 tcp flags & (fin|syn|rst|ack) != syn counter queue num 4-7 bypass\n\t}"},
			[]string{"xt NFQUEUE"}},
		{"xt-failopen-no-fallback", Config{Port: 80, QueueTotal: 1, FailOpen: true}, QueueXT,
			[]string{"priority mangle;", "ct state established counter accept"}, []string{"dnat", "failopen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(&tc.cfg, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("unexpected %q in\n%s", w, got)
				}
			}
		})
	}
	if _, err := Render(&Config{QueueTotal: 1}, QueueXT); err == nil {
		t.Error("port 0 accepted")
	}
}

// TestInstallLoopbackFallback: a fail-open ruleset whose fallback is on
// loopback is refused unless route_localnet lets the bypassed packets reach
// it (IPv6 never does); a routable fallback or no fail-open is installed.
func TestInstallLoopbackFallback(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name          string
		fallback      string
		failOpen      bool
		routeLocalnet string // sysctl set first, if any
		ok            bool
	}{
		{"loopback", "127.0.0.1:8081", true, "", false},
		{"loopback-elsewhere", "127.0.0.53:8081", true, "", false},
		{"loopback-route-localnet-all", "127.0.0.1:8081", true, "net.ipv4.conf.all.route_localnet=1", true},
		{"loopback-route-localnet-iface", "127.0.0.1:8081", true, "net.ipv4.conf.d0.route_localnet=1", true},
		{"loopback-route-localnet-lo", "127.0.0.1:8081", true, "net.ipv4.conf.lo.route_localnet=1", false},
		{"loopback6", "[::1]:8081", true, "net.ipv4.conf.all.route_localnet=1", false},
		{"routable", "10.99.10.2:8081", true, "", true},
		{"no-failopen", "127.0.0.1:8081", false, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, fd := netns(t)
			if out, err := exec.Command("ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1").CombinedOutput(); err != nil {
				t.Fatalf("ip link add: %v: %s", err, out)
			}
			if tc.routeLocalnet != "" {
				if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", tc.routeLocalnet).CombinedOutput(); err != nil {
					t.Fatalf("sysctl: %v: %s", err, out)
				}
			}
			cfg := &Config{Port: 8080, QueueNum: 10, QueueTotal: 1, FailOpen: tc.failOpen,
				Fallback: netip.MustParseAddrPort(tc.fallback), NetNS: fd}
			r, err := Install(cfg)
			if !tc.ok {
				if !errors.Is(err, ErrLoopbackFallback) {
					t.Fatalf("Install: %v, want ErrLoopbackFallback", err)
				}
				if !strings.Contains(err.Error(), "route_localnet") && !strings.Contains(err.Error(), "IPv6") {
					t.Errorf("error does not say why: %v", err)
				}
				t.Logf("refused: %v", err)
				if got := nftList(t, ns); strings.Contains(got, "synproxy_lite") {
					t.Errorf("refused config left a table:\n%s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Remove(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
