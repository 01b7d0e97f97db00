package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

// bgpLab is a fleet behind a real router: BIRD in the router namespace
// peers over eBGP with three synproxy-lite nodes on one Ethernet segment
// (a bridge in a switch namespace) and installs the service address as a
// multipath route in its kernel table, hashed on layer 4
// (fib_multipath_hash_policy=1); a client namespace behind the router; a
// backend on the nodes' segment.
//
//	cli 10.99.160.2 --- 10.99.160.1 rtr 10.99.161.1 --- br0 (sw)
//	                                                     |-- n1 10.99.161.11, lo 10.99.175.1
//	                                                     |-- n2 10.99.161.12, lo 10.99.175.1
//	                                                     |-- n3 10.99.161.13, lo 10.99.175.1
//	                                                     `-- be 10.99.161.20:8081
type bgpLab struct {
	cli, rtr, be string
	nodes        [3]string
	secretFile   string
	birdctl      string
	daemons      [3]*daemonProc
	killed       [3]bool
}

const (
	bgpVIP    = "10.99.175.1"
	bgpVIP6   = "fd00:99:af::1"
	bgpHold   = 3 * time.Second
	bgpRouter = "10.99.161.1"
)

var bgpNodeAddrs = [3]string{"10.99.161.11", "10.99.161.12", "10.99.161.13"}

func needBird(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("bird")
	if err != nil {
		t.Skip("SKIPPED LOUDLY: BIRD (bird2) is not installed; scripts/test-deps.sh installs it")
	}
	return p
}

func newBGPLab(t *testing.T, nodeArgs ...[]string) *bgpLab {
	t.Helper()
	l := newBGPRouterLab(t)
	for i := range 3 {
		var extra []string
		if i < len(nodeArgs) {
			extra = nodeArgs[i]
		}
		l.daemons[i] = l.startNode(t, i, extra...)
	}
	return l
}

// newBGPRouterLab builds the lab and starts BIRD, but none of the nodes.
func newBGPRouterLab(t *testing.T) *bgpLab {
	t.Helper()
	needLab(t)
	bird := needBird(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	nl := netlabtest.New(t, "splb")
	ns := map[string]*netlab.NS{}
	for _, role := range []string{"cli", "rtr", "sw", "n1", "n2", "n3", "be"} {
		n, err := nl.AddNS(role)
		must(err)
		ns[role] = n
	}
	l := &bgpLab{cli: ns["cli"].Name(), rtr: ns["rtr"].Name(), be: ns["be"].Name()}
	P := netip.MustParsePrefix
	must(nl.Link(ns["cli"], ns["rtr"], &netlab.LinkConfig{AName: "vc", BName: "vr",
		AAddrs: []netip.Prefix{P("10.99.160.2/24"), P("fd00:99:a0::2/64")},
		BAddrs: []netip.Prefix{P("10.99.160.1/24"), P("fd00:99:a0::1/64")}}))
	must(ns["cli"].DefaultRoute(netip.MustParseAddr("10.99.160.1")))
	must(ns["cli"].DefaultRoute(netip.MustParseAddr("fd00:99:a0::1")))
	must(ns["sw"].AddBridge("br0"))
	link := func(n *netlab.NS, port string, addrs ...netip.Prefix) {
		must(nl.Link(n, ns["sw"], &netlab.LinkConfig{AName: "vp", BName: port, BMaster: "br0", AAddrs: addrs}))
	}
	link(ns["rtr"], "sr", P(bgpRouter+"/24"), P("fd00:99:a1::1/64"))
	link(ns["be"], "sb", P("10.99.161.20/24"))
	for i := range 3 {
		n := ns[fmt.Sprintf("n%d", i+1)]
		l.nodes[i] = n.Name()
		link(n, fmt.Sprintf("s%d", i+1), P(bgpNodeAddrs[i]+"/24"), P(fmt.Sprintf("fd00:99:a1::%d/64", 11+i)))
		must(n.AddAddr("lo", P(bgpVIP+"/32")))
		must(n.AddAddr("lo", P(bgpVIP6+"/128")))
		must(n.AddRoute(P("10.99.160.0/24"), netip.MustParseAddr(bgpRouter), ""))
		must(n.AddRoute(P("fd00:99:a0::/64"), netip.MustParseAddr("fd00:99:a1::1"), ""))
	}
	for k, v := range map[string]string{"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1",
		"net.ipv4.fib_multipath_hash_policy": "1", "net.ipv6.fib_multipath_hash_policy": "1"} {
		must(ns["rtr"].SetSysctl(k, v))
	}
	startBackend(t, listenIn(t, l.be, "10.99.161.20:8081"))

	dir := t.TempDir()
	var conf strings.Builder
	fmt.Fprintf(&conf, `log "%s/bird.log" all;
router id %s;
protocol device { scan time 1; }
protocol kernel k4 { ipv4 { import none; export all; }; merge paths yes limit 16; }
protocol kernel k6 { ipv6 { import none; export all; }; merge paths yes limit 16; }
`, dir, bgpRouter)
	for i, a := range bgpNodeAddrs {
		fmt.Fprintf(&conf, `protocol bgp n%d {
	local %s as 65000;
	neighbor %s as 65001;
	hold time %d; keepalive time 1; connect retry time 1; error wait time 1, 2;
	ipv4 { import all; export none; };
	ipv6 { import all; export none; };
}
`, i+1, bgpRouter, a, int(bgpHold/time.Second))
	}
	l.birdctl = dir + "/bird.ctl"
	must(os.WriteFile(dir+"/bird.conf", []byte(conf.String()), 0o600))
	cmd := exec.Command("ip", "netns", "exec", l.rtr, bird, "-f", "-c", dir+"/bird.conf", "-s", dir+"/bird.ctl", "-P", dir+"/bird.pid")
	out := &syncBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	must(cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(dir + "/bird.log")
			t.Logf("bird output:\n%s\nbird log (tail):\n%s", out.String(), tail(string(log), 60))
		}
	})

	secret := randomSecret()
	l.secretFile = dir + "/fleet.secret"
	must(os.WriteFile(l.secretFile, []byte(secret+"\n"), 0o600))
	return l
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (l *bgpLab) startNode(t *testing.T, i int, extra ...string) *daemonProc {
	return startDaemon(t, l.nodes[i], append(extra, "--port", "8080", "--backend", "10.99.161.20:8081",
		"--driver", "afpacket", "--interface", "vp", "--workers", "1", "--queue", "1600", "--metrics", "127.0.0.1:9100",
		"--fleet-secret-file", l.secretFile, "--table", "splb",
		"--bgp-peer", bgpRouter, "--bgp-asn", "65001", "--bgp-peer-asn", "65000",
		"--bgp-router-id", bgpNodeAddrs[i], "--bgp-hold-time", bgpHold.String(),
		"--bgp-announce", bgpVIP+"/32", "--bgp-announce", bgpVIP6+"/128",
		"--bgp-next-hop6", fmt.Sprintf("fd00:99:a1::%d", 11+i), "--bgp-community", "65001:160")...)
}

// nexthops returns the gateways of BIRD's route to dst in the router's
// kernel table.
func (l *bgpLab) nexthops(t *testing.T, dst string) []string {
	t.Helper()
	family := "-4"
	if strings.Contains(dst, ":") {
		family = "-6"
	}
	out, err := exec.Command("ip", "-n", l.rtr, family, "route", "show", dst, "proto", "bird").CombinedOutput()
	if err != nil {
		t.Fatalf("ip route show %s: %v\n%s", dst, err, out)
	}
	var gws []string
	f := strings.Fields(string(out))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "via" {
			gws = append(gws, f[i+1])
		}
	}
	slices.Sort(gws)
	return gws
}

// waitNexthops waits up to within for the route to dst to have exactly
// want as gateways, and returns how long it took.
func (l *bgpLab) waitNexthops(t *testing.T, dst string, within time.Duration, want ...string) time.Duration {
	t.Helper()
	slices.Sort(want)
	start := time.Now()
	var got []string
	for time.Since(start) < within {
		if got = l.nexthops(t, dst); slices.Equal(got, want) {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ := exec.Command("ip", "-n", l.rtr, "route").CombinedOutput()
	out6, _ := exec.Command("ip", "-n", l.rtr, "-6", "route").CombinedOutput()
	bird, _ := exec.Command("birdc", "-s", l.birdctl, "show", "route", "all").CombinedOutput()
	t.Fatalf("route to %s: next hops %v after %v, want %v\nrouter table:\n%s%s\nBIRD's routes:\n%s", dst, got, within, want, out, out6, bird)
	return 0
}

func (l *bgpLab) handedOver(t *testing.T) [3]float64 {
	var n [3]float64
	for i, ns := range l.nodes {
		if l.killed[i] {
			continue
		}
		n[i] = scrape(t, ns, "127.0.0.1:9100")["synproxy_lite_handed_over_total"]
	}
	return n
}

// clients makes n connections to the service from the client namespace,
// workers at a time, each a new connection; it returns the errors.
func (l *bgpLab) clients(n, workers int, timeout time.Duration) []error {
	return l.clientsTo("http://"+bgpVIP+":8080/small", n, workers, timeout)
}

func (l *bgpLab) clientsTo(url string, n, workers int, timeout time.Duration) []error {
	c := &http.Client{Transport: &http.Transport{DialContext: dialIn(l.cli), DisableKeepAlives: true}, Timeout: timeout}
	var mu sync.Mutex
	var errs []error
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				err := get(c, url)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var b [64]byte
	k, _ := resp.Body.Read(b[:])
	if string(b[:k]) != "hello from the backend\n" {
		return fmt.Errorf("unexpected body %q", b[:k])
	}
	return nil
}

// TestFleetBGP runs the fleet lab's checks in order on one lab: the three
// nodes announce and share the clients; a node whose backend goes away
// withdraws and comes back; a node killed with SIGKILL loses its route
// while new connections keep succeeding, and handshakes it answered
// complete on the survivors (fleet keys).
func TestFleetBGP(t *testing.T) {
	t.Parallel() // its lab is its own (see newLab)
	l := newBGPLab(t)
	all := bgpNodeAddrs[:]
	all6 := []string{"fd00:99:a1::11", "fd00:99:a1::12", "fd00:99:a1::13"}

	t.Run("three nodes announce and share the clients", func(t *testing.T) {
		took := l.waitNexthops(t, bgpVIP, 20*time.Second, all...)
		t.Logf("three-way multipath route to %s after %v", bgpVIP, took)
		l.waitNexthops(t, bgpVIP6, 10*time.Second, all6...)
		for i, ns := range l.nodes {
			m := scrape(t, ns, "127.0.0.1:9100")
			if m[`synproxy_lite_bgp_session_state{peer="`+bgpRouter+`:179"}`] != 4 ||
				m[`synproxy_lite_bgp_announced{peer="`+bgpRouter+`:179"}`] != 1 || m["synproxy_lite_bgp_ready"] != 1 {
				t.Errorf("node %d's BGP metrics: state %v announced %v ready %v", i+1,
					m[`synproxy_lite_bgp_session_state{peer="`+bgpRouter+`:179"}`],
					m[`synproxy_lite_bgp_announced{peer="`+bgpRouter+`:179"}`], m["synproxy_lite_bgp_ready"])
			}
		}
		before := l.handedOver(t)
		const n = 300
		if errs := l.clients(n, 10, 10*time.Second); len(errs) > 0 {
			t.Fatalf("%d of %d connections failed, first: %v", len(errs), n, errs[0])
		}
		after := l.handedOver(t)
		sum := 0.0
		for i := range 3 {
			d := after[i] - before[i]
			sum += d
			if d == 0 {
				t.Errorf("node %d handed over no connection of %d", i+1, n)
			}
		}
		t.Logf("%d connections handed over by node: %v, %v, %v", n, after[0]-before[0], after[1]-before[1], after[2]-before[2])
		if sum != n {
			t.Errorf("%v connections handed over in all, want %d", sum, n)
		}
		// IPv6: the /128 through the same router.
		before = l.handedOver(t)
		const n6 = 90
		if errs := l.clientsTo("http://["+bgpVIP6+"]:8080/small", n6, 10, 10*time.Second); len(errs) > 0 {
			t.Fatalf("%d of %d IPv6 connections failed, first: %v", len(errs), n6, errs[0])
		}
		after = l.handedOver(t)
		t.Logf("%d IPv6 connections handed over by node: %v, %v, %v", n6, after[0]-before[0], after[1]-before[1], after[2]-before[2])
		if after[0]+after[1]+after[2]-before[0]-before[1]-before[2] != n6 {
			t.Errorf("IPv6: %v handed over, want %d", after[0]+after[1]+after[2]-before[0]-before[1]-before[2], n6)
		}
	})

	t.Run("a node whose backend is unreachable withdraws and comes back", func(t *testing.T) {
		fleetNft(t, l.nodes[0], `table inet splbblock {
	chain out { type filter hook output priority 0; policy accept; ip daddr 10.99.161.20 tcp dport 8081 reject with tcp reset; }
}
`)
		// Readiness trusts a dial that succeeded within
		// proxy.ReadyBackendWindow, then probes: the withdrawal comes
		// within that window, a probe and a check of the speaker.
		took := l.waitNexthops(t, bgpVIP, 20*time.Second, all[1:]...)
		t.Logf("node 1 withdrawn %v after its backend became unreachable", took)
		m := scrape(t, l.nodes[0], "127.0.0.1:9100")
		if m["synproxy_lite_bgp_ready"] != 0 || m[`synproxy_lite_bgp_session_state{peer="`+bgpRouter+`:179"}`] != 4 {
			t.Errorf("node 1: ready %v, session state %v; want 0 and 4 (the session stays up)", m["synproxy_lite_bgp_ready"],
				m[`synproxy_lite_bgp_session_state{peer="`+bgpRouter+`:179"}`])
		}
		if errs := l.clients(30, 5, 10*time.Second); len(errs) > 0 {
			t.Errorf("%d of 30 connections failed with node 1 withdrawn, first: %v", len(errs), errs[0])
		}
		sh(t, "ip", "netns", "exec", l.nodes[0], "nft", "delete", "table", "inet", "splbblock")
		took = l.waitNexthops(t, bgpVIP, 20*time.Second, all...)
		t.Logf("node 1 announced again %v after its backend came back", took)
		if !strings.Contains(l.daemons[0].out.String(), "backend 10.99.161.20:8081: unreachable") {
			t.Errorf("node 1 did not log why it withdrew")
		}
	})

	t.Run("kill -9 one node", func(t *testing.T) {
		// Handshakes held open: the client's ACKs (and data) from these
		// source ports, above the ephemeral range (32768-60999) so that no
		// other connection holds one, are dropped on the way out, so their SYNs are
		// answered by all three nodes and no node sees the ACK yet.
		const held = 30
		fleetNft(t, l.cli, fmt.Sprintf(`table inet splbhold {
	chain out { type filter hook output priority 0; policy accept; ip daddr %s tcp sport 61000-%d tcp flags & (syn|ack) == ack drop; }
}
`, bgpVIP, 61000+held-1))
		synacks := func() [3]float64 {
			var n [3]float64
			for i, ns := range l.nodes {
				if !l.killed[i] {
					n[i] = scrape(t, ns, "127.0.0.1:9100")["synproxy_lite_synack_sent_total"]
				}
			}
			return n
		}
		s0 := synacks()
		heldErrs := make(chan error, held)
		for i := range held {
			go func() {
				_, err := curl(t, l.cli, "--max-time", "40", "--local-port", fmt.Sprint(61000+i),
					"http://"+bgpVIP+":8080/small")
				heldErrs <- err
			}()
		}
		deadline := time.Now().Add(10 * time.Second)
		var s1 [3]float64
		for {
			s1 = synacks()
			if s1[0]+s1[1]+s1[2]-s0[0]-s0[1]-s0[2] >= held || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		answeredByDead := s1[2] - s0[2]
		t.Logf("SYN-ACKs of the %d held handshakes by node: %v, %v, %v", held, s1[0]-s0[0], s1[1]-s0[1], answeredByDead)
		if answeredByDead == 0 {
			t.Fatalf("node 3 answered none of the %d held handshakes", held)
		}
		hoBefore := l.handedOver(t)

		// New connections all along, from other ports.
		stop := make(chan struct{})
		var tried, failed atomic.Int64
		var failures sync.Map
		done := make(chan struct{})
		go func() {
			defer close(done)
			c := &http.Client{Transport: &http.Transport{DialContext: dialIn(l.cli), DisableKeepAlives: true}, Timeout: 2 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				tried.Add(1)
				if err := get(c, "http://"+bgpVIP+":8080/small"); err != nil {
					failures.Store(failed.Add(1), err)
				}
			}
		}()
		time.Sleep(300 * time.Millisecond)
		l.killed[2] = true
		l.daemons[2].cmd.Process.Kill()
		killed := time.Now()
		took := l.waitNexthops(t, bgpVIP, bgpHold+3*time.Second, all[:2]...)
		t.Logf("node 3 killed: route withdrawn after %v (hold time %v)", took, bgpHold)
		l.waitNexthops(t, bgpVIP6, bgpHold+3*time.Second, all6[:2]...)
		time.Sleep(time.Second)
		close(stop)
		<-done
		t.Logf("new connections from 300 ms before the kill to 1 s after the withdrawal (%v): %d tried, %d failed",
			time.Since(killed), tried.Load(), failed.Load())
		failures.Range(func(k, v any) bool { t.Logf("failure %v: %v", k, v); return true })
		if errs := l.clients(60, 6, 10*time.Second); len(errs) > 0 {
			t.Errorf("%d of 60 connections failed after the withdrawal, first: %v", len(errs), errs[0])
		}

		// Let the held handshakes' ACKs go: they land on the survivors,
		// which accept the cookies node 3 made.
		sh(t, "ip", "netns", "exec", l.cli, "nft", "delete", "table", "inet", "splbhold")
		bad := 0
		for range held {
			if err := <-heldErrs; err != nil {
				bad++
				t.Errorf("held handshake: %v", err)
			}
		}
		hoAfter := l.handedOver(t)
		t.Logf("held handshakes: %d of %d completed (%v answered by the killed node); survivors handed over %v and %v",
			held-bad, held, answeredByDead, hoAfter[0]-hoBefore[0], hoAfter[1]-hoBefore[1])
		if got := hoAfter[0] - hoBefore[0] + hoAfter[1] - hoBefore[1]; got < held {
			t.Errorf("survivors handed over %v connections, want at least the %d held ones", got, held)
		}
		if nh := l.nexthops(t, bgpVIP); !slices.Equal(nh, all[:2]) {
			t.Errorf("route to %s: %v, want %v", bgpVIP, nh, all[:2])
		}
	})
	t.Run("SIGTERM withdraws before the drain", func(t *testing.T) {
		d := l.daemons[0]
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		took := l.waitNexthops(t, bgpVIP, 2*time.Second, all[1])
		stopping := strings.Contains(d.out.String(), "msg=stopping")
		t.Logf("node 1 withdrawn %v after SIGTERM; draining had begun: %v", took, stopping)
		if stopping {
			t.Errorf("node 1 began to drain before the router withdrew its route")
		}
		if errs := l.clients(30, 5, 10*time.Second); len(errs) > 0 {
			t.Errorf("%d of 30 connections failed with node 2 alone, first: %v", len(errs), errs[0])
		}
	})
}

// heldConn is a client connection kept open across a membership change.
type heldConn struct {
	c    net.Conn
	r    *bufio.Reader
	node int // index of the node whose socket it is, -1 if unknown
	dead bool
}

func (h *heldConn) request(timeout time.Duration) error {
	h.c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(h.c, "GET /small HTTP/1.1\r\nHost: fleet\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(h.r, nil)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && string(b) != "hello from the backend\n" {
		err = fmt.Errorf("unexpected body %q", b)
	}
	return err
}

// owners maps client ports to the node whose socket serves them.
func (l *bgpLab) owners(t *testing.T) map[string]int {
	m := map[string]int{}
	for i, ns := range l.nodes {
		if l.killed[i] {
			continue
		}
		out, err := exec.Command("ip", "netns", "exec", ns, "ss", "-Htn", "state", "established", "sport", "=", ":8080").CombinedOutput()
		if err != nil {
			t.Fatalf("ss: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 4 {
				m[f[3][strings.LastIndexByte(f[3], ':')+1:]] = i
			}
		}
	}
	return m
}

// churn is what one membership change did to the held connections.
type churn struct{ others, othersLost, own, ownLost int }

func (c churn) String() string {
	return fmt.Sprintf("%d of %d connections on the other nodes broken; %d of %d on the node itself",
		c.othersLost, c.others, c.ownLost, c.own)
}

// probe sends one request on every live held connection (all at once)
// and counts the broken ones, by whether they live on node.
func probe(conns []*heldConn, node int) churn {
	var mu sync.Mutex
	var c churn
	var wg sync.WaitGroup
	for _, h := range conns {
		if h.dead {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := h.request(3 * time.Second)
			mu.Lock()
			defer mu.Unlock()
			own := h.node == node
			if own {
				c.own++
			} else {
				c.others++
			}
			if err != nil {
				h.dead = true
				if own {
					c.ownLost++
				} else {
					c.othersLost++
				}
			}
		}()
	}
	wg.Wait()
	return c
}

// TestFleetBGPEstablished measures what a node's departure and arrival do
// to connections already handed over, with the router's plain multipath
// (hash-threshold: the regions of the hash space move) and with a
// resilient nexthop group mirroring BIRD's route (only the departed
// node's buckets move; an arriving node takes buckets only as they fall
// idle). The figures go to docs/fleet.md; the assertions are the
// invariants: with the resilient group no connection on another node
// breaks.
func TestFleetBGPEstablished(t *testing.T) {
	l := newBGPLab(t)
	all := bgpNodeAddrs[:]
	l.waitNexthops(t, bgpVIP, 20*time.Second, all...)
	ip := func(args ...string) { sh(t, append([]string{"ip", "-n", l.rtr}, args...)...) }
	for _, resilient := range []bool{false, true} {
		name := "plain multipath"
		if resilient {
			name = "resilient nexthop group"
			for i, a := range all {
				ip("nexthop", "add", "id", fmt.Sprint(1601+i), "via", a, "dev", "vp")
			}
			ip("nexthop", "add", "id", "1610", "group", "1601/1602/1603", "type", "resilient", "buckets", "96", "idle_timer", "60")
			ip("route", "add", bgpVIP+"/32", "nhid", "1610", "metric", "10")
		}
		t.Run(name, func(t *testing.T) {
			const n = 300
			conns := make([]*heldConn, n)
			for i := range conns {
				c, err := dialIn(l.cli)(context.Background(), "tcp", bgpVIP+":8080")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				conns[i] = &heldConn{c: c, r: bufio.NewReader(c), node: -1}
				if err := conns[i].request(5 * time.Second); err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
			}
			own := l.owners(t)
			var per [3]int
			for _, h := range conns {
				_, port, _ := net.SplitHostPort(h.c.LocalAddr().String())
				if i, ok := own[port]; ok {
					h.node = i
					per[i]++
				}
			}
			t.Logf("%d connections held, by node: %v", n, per)

			// Departure: node 3's backend goes away, it withdraws.
			fleetNft(t, l.nodes[2], `table inet splbblock {
	chain out { type filter hook output priority 0; policy accept; ip daddr 10.99.161.20 tcp dport 8081 reject with tcp reset; }
}
`)
			l.waitNexthops(t, bgpVIP, 10*time.Second, all[:2]...)
			if resilient {
				ip("nexthop", "replace", "id", "1610", "group", "1601/1602", "type", "resilient", "buckets", "96", "idle_timer", "60")
			}
			dep := probe(conns, 2)
			t.Logf("%s, node 3 departs: %v", name, dep)

			// Arrival: it comes back.
			sh(t, "ip", "netns", "exec", l.nodes[2], "nft", "delete", "table", "inet", "splbblock")
			l.waitNexthops(t, bgpVIP, 10*time.Second, all...)
			if resilient {
				ip("nexthop", "replace", "id", "1610", "group", "1601/1602/1603", "type", "resilient", "buckets", "96", "idle_timer", "60")
			}
			arr := probe(conns, 2)
			t.Logf("%s, node 3 arrives: %v", name, arr)
			if resilient && dep.othersLost+arr.othersLost > 0 {
				t.Errorf("with the resilient group, %d connections on the other nodes broke", dep.othersLost+arr.othersLost)
			}
			if !resilient && dep.own > 0 && dep.ownLost == 0 {
				t.Errorf("node 3's connections survived its withdrawal: the path is not what the test thinks")
			}
		})
		if resilient {
			ip("route", "del", bgpVIP+"/32", "nhid", "1610", "metric", "10")
		}
	}
}

// TestFleetBGPGracefulRestart: with --bgp-graceful-restart, a graceful
// restart (SIGHUP) of a node keeps its route in the router's table from
// start to end, and the new process announces it again on its own
// session. A node that goes silent (its BGP packets dropped, no FIN) is
// withdrawn when the router's hold time expires.
func TestFleetBGPGracefulRestart(t *testing.T) {
	l := newBGPLab(t, []string{"--bgp-graceful-restart", "10s"})
	all := bgpNodeAddrs[:]
	l.waitNexthops(t, bgpVIP, 20*time.Second, all...)

	var newPid int
	t.Cleanup(func() {
		if newPid != 0 {
			syscall.Kill(newPid, syscall.SIGKILL)
		}
	})
	t.Run("graceful restart keeps the route", func(t *testing.T) {
		stop, lost := make(chan struct{}), make(chan []string, 1)
		go func() {
			defer close(lost)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if nh := l.nexthops(t, bgpVIP); !slices.Equal(nh, all) {
					lost <- nh
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		d := l.daemons[0]
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		pidRE := regexp.MustCompile(`graceful restart: the new process took over" pid=(\d+)`)
		deadline := time.Now().Add(20 * time.Second)
		var pid int
		for pid == 0 {
			if m := pidRE.FindStringSubmatch(d.out.String()); m != nil {
				pid, _ = strconv.Atoi(m[1])
			} else if time.Now().After(deadline) {
				t.Fatalf("no new process took over:\n%s", d.out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		newPid = pid
		// The new process's session: the second "session established" in
		// the shared output, then its announcement.
		for strings.Count(d.out.String(), "bgp: announced") < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("the new process did not announce:\n%s", d.out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Second) // End-of-RIB processed, stale routes gone
		close(stop)
		if nh, ok := <-lost; ok {
			t.Errorf("the route changed during the graceful restart: %v", nh)
		}
		if nh := l.nexthops(t, bgpVIP); !slices.Equal(nh, all) {
			t.Errorf("after the restart the route is %v", nh)
		}
		if errs := l.clients(30, 5, 10*time.Second); len(errs) > 0 {
			t.Errorf("%d of 30 connections failed after the restart, first: %v", len(errs), errs[0])
		}
		bird, _ := exec.Command("birdc", "-s", l.birdctl, "show", "protocols").CombinedOutput()
		t.Logf("new process %d serves; BIRD's sessions:\n%s", pid, bird)
	})

	t.Run("a silent node goes at the hold time", func(t *testing.T) {
		fleetNft(t, l.nodes[1], `table inet splbsilent {
	chain in { type filter hook input priority 0; policy accept; tcp sport 179 drop; }
	chain out { type filter hook output priority 0; policy accept; tcp dport 179 drop; }
}
`)
		start := time.Now()
		took := l.waitNexthops(t, bgpVIP, bgpHold+3*time.Second, all[0], all[2])
		t.Logf("node 2 silent: withdrawn by the router after %v (hold time %v)", took, bgpHold)
		// The router's hold timer runs from the last KEEPALIVE it
		// received, sent every hold/3 = 1 s: it expires 2 to 3 s after
		// the drop began.
		if took < bgpHold-bgpHold/3-500*time.Millisecond {
			t.Errorf("withdrawn after %v, before the hold time could expire", took)
		}
		sh(t, "ip", "netns", "exec", l.nodes[1], "nft", "delete", "table", "inet", "splbsilent")
		took = l.waitNexthops(t, bgpVIP, 15*time.Second, all...)
		t.Logf("node 2 back %v after it could speak again (%v in all)", took, time.Since(start))
	})
}
