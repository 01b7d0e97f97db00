package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The protection policy end to end (allow and deny lists, per-source SYN
// limits, the reflection budget, monitor and on-demand modes), in
// 10.99.130.0/24 to 10.99.139.0/24 with spoofed sources in the next /24 of
// each, routed back to the attacker. Each runs on both drivers where the
// policy is the kernel's or the engine's, and on afxdp, whose XDP program
// applies the lists and the on-demand switch. Every wait is for a condition;
// every flood packet is accounted for, or bounded by an invariant that holds
// at any speed (a token bucket of rate r and burst b passes at most
// b + r·T packets in T seconds, T measured around the whole flood).

// policyDrivers are the drivers every policy test runs on, with the lab's
// third octet of each.
var policyDrivers = []struct {
	name  string
	octet int
}{{"nfqueue", 0}, {"afpacket", 1}, {"afxdp", 2}}

// policyArgs are the daemon's arguments for driver name in lab l.
func policyArgs(l *lab, name string, extra ...string) []string {
	switch name {
	case "afpacket":
		return afpacketArgs(l, 1, extra...)
	case "afxdp":
		return afxdpArgs(l, extra...)
	}
	return append([]string{"--port", "8080", "--backend", l.proxyIP + ":8081", "--workers", "1",
		"--queue", strconv.Itoa(100 + l.net4)}, extra...)
}

// writeList writes a list file of the given lines.
func writeList(t *testing.T, name string, lines ...string) string {
	t.Helper()
	if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// dialFails reports whether a connection from ns to addr fails within 3 s.
func dialFails(ns, addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := dialIn(ns)(ctx, "tcp", addr)
	if err == nil {
		c.Close()
		return false
	}
	return true
}

// synFlood returns a trafgen configuration of SYNs from src to the proxy.
func synFlood(t *testing.T, l *lab, src string) string {
	mac := strings.Fields(sh(t, "ip", "-n", l.proxy, "-br", "link", "show", "br0"))[2]
	return fmt.Sprintf("{ eth(da=%s), ipv4(saddr=%s, daddr=%s, ttl=64), tcp(sp=drnd(), dp=8080, seq=drnd(), syn, window=1024), }\n",
		mac, src, l.proxyIP)
}

// spoofed routes 10.99.(net4+1).0/24 from the proxy to the attacker and
// returns its first address.
func spoofed(t *testing.T, l *lab) string {
	sh(t, "ip", "-n", l.proxy, "route", "add", fmt.Sprintf("10.99.%d.0/24", l.net4+1), "via", l.attackIP)
	return fmt.Sprintf("10.99.%d.100", l.net4+1)
}

// TestE2EAllowDeny: an allowed client reaches the backend around the
// proxy (the engine never sees its SYN), a denied source is dropped before
// the engine (a trafgen flood of it is counted by the nft counter, none of
// it reaches the engine), IPv6 included; SIGUSR1 re-reads the files and
// swaps the lists in one transaction, without a restart.
func TestE2EAllowDeny(t *testing.T) {
	t.Parallel() // its lab is its own (see newLab)
	for _, d := range policyDrivers {
		t.Run(d.name, func(t *testing.T) {
			l := newLab(t, 130+d.octet*2, true)
			startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
			dir := t.TempDir()
			allow := writeList(t, filepath.Join(dir, "allow"), "# health checkers", l.clientIP+"/32")
			deny := writeList(t, filepath.Join(dir, "deny"), l.attackIP, fmt.Sprintf("fd00:99:%d::/64", l.net4))
			metrics := l.proxyIP + ":9100"
			dm := startDaemon(t, l.proxy, policyArgs(l, d.name, "--metrics", metrics, "--allow-file", allow, "--deny-file", deny)...)
			addr := "http://" + l.proxyIP + ":8080/small"
			if out, err := curl(t, l.client, addr); err != nil || out != "hello from the backend\n" {
				t.Fatalf("allowed client: %v %q", err, out)
			}
			if !dialFails(l.client, "["+l.proxy6+"]:8080") {
				t.Error("a client of a denied IPv6 prefix connected")
			}
			if !dialFails(l.attack, l.proxyIP+":8080") {
				t.Error("a denied source connected")
			}
			const n = 1000
			before := linkDrops(t, l.attack) + linkDrops(t, l.proxy)
			trafgen(t, l, synFlood(t, l, l.attackIP), n)
			m := scrapeDrained(t, l.proxy, metrics)
			lost := linkDrops(t, l.attack) + linkDrops(t, l.proxy) - before
			if m["synproxy_lite_syn_received_total"] != 0 || m["synproxy_lite_handed_over_total"] != 0 {
				t.Errorf("the engine saw %v SYNs and handed over %v connections of listed sources; want 0, 0",
					m["synproxy_lite_syn_received_total"], m["synproxy_lite_handed_over_total"])
			}
			if got := m["synproxy_lite_list_denied_packets_total"]; got+lost < n || got > n+20 {
				t.Errorf("denied packets counted %v (%v lost on links), want the %d flood SYNs and the few of the refused dials", got, lost, n)
			}
			if m["synproxy_lite_list_allowed_packets_total"] < 3 {
				t.Errorf("allowed packets counted %v, want the allowed client's", m["synproxy_lite_list_allowed_packets_total"])
			}
			// Swap the lists: the attacker is neither allowed nor denied
			// now (its connection is proven by a cookie), the client is
			// denied.
			writeList(t, allow)
			writeList(t, deny, l.clientIP)
			dm.cmd.Process.Signal(syscall.SIGUSR1)
			eventually(t, "the reloaded lists", func() bool { return !dialFails(l.attack, l.proxyIP+":8080") })
			if !dialFails(l.client, l.proxyIP+":8080") {
				t.Error("the client connected after the lists denied it")
			}
			if out, err := curl(t, l.attack, addr); err != nil || out != "hello from the backend\n" {
				t.Fatalf("the attacker, no longer listed: %v %q", err, out)
			}
			m = scrapeAtLeast(t, l.proxy, metrics, "synproxy_lite_handed_over_total", 2)
			if !strings.Contains(dm.out.String(), "allow and deny lists replaced") || strings.Contains(dm.out.String(), "graceful restart") {
				t.Errorf("the lists were not replaced in place:\n%s", dm.out.String())
			}
		})
	}
}

// TestE2ESYNLimit: a flood of SYNs from one address over --syn-rate is
// dropped and counted, every SYN the engine took is answered or counted
// as limited, no more are answered than the bucket allows, and a client
// from another address connects meanwhile.
func TestE2ESYNLimit(t *testing.T) {
	for _, d := range policyDrivers {
		t.Run(d.name, func(t *testing.T) {
			l := newLab(t, 134+d.octet*2, true)
			src := spoofed(t, l)
			startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
			metrics := l.proxyIP + ":9100"
			const rate, n = 100, 5000
			startDaemon(t, l.proxy, policyArgs(l, d.name, "--metrics", metrics, "--syn-rate", strconv.Itoa(rate),
				"--reflect-rate", "0")...)
			t0 := time.Now()
			done := make(chan struct{})
			go func() { defer close(done); trafgen(t, l, synFlood(t, l, src), n) }()
			if out, err := curl(t, l.client, "http://"+l.proxyIP+":8080/small"); err != nil || out != "hello from the backend\n" {
				t.Errorf("another client during the flood: %v %q", err, out)
			}
			<-done
			m := scrapeDrained(t, l.proxy, metrics)
			secs := math.Ceil(time.Since(t0).Seconds())
			syn, sent, limited := m["synproxy_lite_syn_received_total"], m["synproxy_lite_synack_sent_total"], m["synproxy_lite_syn_limited_total"]
			t.Logf("%d SYNs from %s over %.0f s: engine took %v, answered %v, limited %v", n, src, secs, syn, sent, limited)
			if syn != sent+limited+m["synproxy_lite_tx_errors_total"] {
				t.Errorf("SYNs %v != answered %v + limited %v + failed sends: a SYN unaccounted for", syn, sent, limited)
			}
			// The client's SYN is answered too (another bucket).
			if bound := rate + rate*secs + 1; sent > bound {
				t.Errorf("answered %v SYNs of one source in %.0f s, the bucket allows %v", sent, secs, bound)
			}
			if limited == 0 {
				t.Error("no SYN limited")
			}
		})
	}
}

// TestE2EReflectionBudget: 20,000 SYNs in one second spoofed from a single
// address: the SYN-ACKs that address receives, counted exactly by an nft
// counter where it lives (the attacker's namespace, to which it is routed),
// stay within the budget, while another client connects.
func TestE2EReflectionBudget(t *testing.T) {
	for _, d := range policyDrivers {
		t.Run(d.name, func(t *testing.T) {
			l := newLab(t, 138+d.octet*2, true)
			victim := spoofed(t, l)
			sh(t, "ip", "netns", "exec", l.attack, "nft", fmt.Sprintf(
				"add table inet victim { counter synacks { }; chain in { type filter hook prerouting priority -400; ip daddr %s tcp flags & (syn|ack) == syn|ack counter name synacks; }; }", victim))
			startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
			metrics := l.proxyIP + ":9100"
			const rate, n = 200, 20000
			startDaemon(t, l.proxy, policyArgs(l, d.name, "--metrics", metrics, "--reflect-rate", strconv.Itoa(rate))...)
			t0 := time.Now()
			done := make(chan struct{})
			go func() { defer close(done); trafgen(t, l, synFlood(t, l, victim), n) }()
			if out, err := curl(t, l.client, "http://"+l.proxyIP+":8080/small"); err != nil || out != "hello from the backend\n" {
				t.Errorf("another client during the flood: %v %q", err, out)
			}
			<-done
			m := scrapeDrained(t, l.proxy, metrics)
			time.Sleep(500 * time.Millisecond) // the last SYN-ACKs on the wire
			secs := math.Ceil(time.Since(t0).Seconds())
			out := sh(t, "ip", "netns", "exec", l.attack, "nft", "list", "counter", "inet", "victim", "synacks")
			f := strings.Fields(out[strings.Index(out, "packets"):])
			got, _ := strconv.ParseFloat(f[1], 64)
			t.Logf("%d SYNs spoofed from %s over %.0f s: the victim received %v SYN-ACKs; engine took %v SYNs, sent %v SYN-ACKs, withheld %v",
				n, victim, secs, got, m["synproxy_lite_syn_received_total"], m["synproxy_lite_synack_sent_total"], m["synproxy_lite_reflection_limited_total"])
			if bound := rate + rate*secs; got > bound || got == 0 {
				t.Errorf("the victim received %v SYN-ACKs in %.0f s; want 1 to %v (burst %d + %d/s)", got, secs, bound, rate, rate)
			}
			if m["synproxy_lite_syn_received_total"] != m["synproxy_lite_synack_sent_total"]+m["synproxy_lite_reflection_limited_total"]+m["synproxy_lite_tx_errors_total"] {
				t.Errorf("SYNs taken != SYN-ACKs sent + withheld + failed: %v", m)
			}
		})
	}
}

// wscaleOf returns the window scale option ss reports for the client's
// connections to port 8080 ("" for none), one per connection.
func wscaleOf(t *testing.T, ns, local string) string {
	t.Helper()
	out := sh(t, "ip", "netns", "exec", ns, "ss", "-tniH", "state", "established", "( sport = :"+local+" )")
	if i := strings.Index(out, "wscale:"); i >= 0 {
		return strings.Fields(out[i:])[0]
	}
	return ""
}

func localPort(c net.Conn) string {
	return strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
}

// noTimestamps switches TCP timestamps off in namespace ns: a Linux-layout
// cookie then cannot carry window scaling.
func noTimestamps(t *testing.T, ns string) {
	sh(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_timestamps=0")
}

// TestE2EMonitor: in monitor mode the client reaches the backend untouched
// (its SYN-ACK is the backend's: window scaling without timestamps, which
// no cookie can carry), nothing is sent or handed over, and the counts say
// what the proxy would have done: the SYN-ACKs, the handshakes it would
// accept and hand over, the forged ACKs it would refuse, the limits hit.
func TestE2EMonitor(t *testing.T) {
	for _, d := range policyDrivers {
		t.Run(d.name, func(t *testing.T) {
			l := newLab(t, 150+d.octet*2, true)
			src := spoofed(t, l)
			noTimestamps(t, l.client)
			echoIn(t, l.proxy, l.proxyIP+":8081")
			metrics := l.proxyIP + ":9100"
			startDaemon(t, l.proxy, policyArgs(l, d.name, "--metrics", metrics, "--mode", "monitor", "--syn-rate", "100")...)
			c := connectFrom(t, l.client, l.proxyIP+":8080")
			if err := roundTrip(c, "monitored"); err != nil {
				t.Fatal(err)
			}
			if ws := wscaleOf(t, l.client, localPort(c)); ws == "" {
				t.Errorf("no window scaling without timestamps: the SYN-ACK was not the backend's")
			}
			const n, forged = 1000, 200
			trafgen(t, l, synFlood(t, l, src), n)
			mac := strings.Fields(sh(t, "ip", "-n", l.proxy, "-br", "link", "show", "br0"))[2]
			trafgen(t, l, fmt.Sprintf("{ eth(da=%s), ipv4(saddr=%s, daddr=%s, ttl=64), tcp(sp=drnd(), dp=8080, seq=drnd(), ackseq=drnd(), ack, window=1024), }\n",
				mac, src, l.proxyIP), forged)
			if err := roundTrip(c, "still there"); err != nil {
				t.Fatal(err)
			}
			m := scrapeDrained(t, l.proxy, metrics)
			t.Logf("monitor: %v", policyMetricsOf(m))
			if m["synproxy_lite_synack_sent_total"] != 0 || m["synproxy_lite_handed_over_total"] != 0 || m["synproxy_lite_cookies_engaged"] != 0 {
				t.Errorf("monitor mode sent %v SYN-ACKs, handed over %v (engaged %v); want none",
					m["synproxy_lite_synack_sent_total"], m["synproxy_lite_handed_over_total"], m["synproxy_lite_cookies_engaged"])
			}
			if m["synproxy_lite_monitor_handoffs_total"] != 1 || m["synproxy_lite_monitor_cookie_valid_total"] != 1 {
				t.Errorf("would have handed over %v (accepted %v), want the client's 1",
					m["synproxy_lite_monitor_handoffs_total"], m["synproxy_lite_monitor_cookie_valid_total"])
			}
			syn := m["synproxy_lite_syn_received_total"]
			if syn < 2 || syn != m["synproxy_lite_monitor_synack_total"]+m["synproxy_lite_syn_limited_total"] {
				t.Errorf("SYNs %v != would-send %v + limited %v", syn, m["synproxy_lite_monitor_synack_total"], m["synproxy_lite_syn_limited_total"])
			}
			if m["synproxy_lite_syn_limited_total"] == 0 || m["synproxy_lite_monitor_cookie_invalid_total"] == 0 {
				t.Errorf("limits hit %v, forged ACKs refused %v; want some of each",
					m["synproxy_lite_syn_limited_total"], m["synproxy_lite_monitor_cookie_invalid_total"])
			}
		})
	}
}

func policyMetricsOf(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		for _, p := range []string{"monitor", "limited", "syn_received", "synack_sent", "handed_over", "engage", "ondemand", "list_"} {
			if strings.Contains(k, p) {
				out[strings.TrimPrefix(k, "synproxy_lite_")] = v
			}
		}
	}
	return out
}

// backgroundFlood runs trafgen in the attacker namespace until the test
// stops it: count SYNs at rate per second.
func backgroundFlood(t *testing.T, l *lab, cfg string, count, rate int) (stop func()) {
	t.Helper()
	if _, err := exec.LookPath("trafgen"); err != nil {
		t.Skip("SKIPPED LOUDLY: trafgen (netsniff-ng) is not installed; it is the independent SYN generator")
	}
	f := filepath.Join(t.TempDir(), "flood.cfg")
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := strings.Split(strings.Fields(sh(t, "ip", "-n", l.attack, "-br", "link", "show", "type", "veth"))[0], "@")[0]
	cmd := exec.Command("ip", "netns", "exec", l.attack, "trafgen", "-i", f, "-o", dev, "-n", strconv.Itoa(count),
		"-b", strconv.Itoa(rate)+"pps", "-q")
	// trafgen forks a sender per CPU and its senders do not stop at a
	// signal: it runs in a process group of its own, which stop kills.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	t.Cleanup(stop)
	return stop
}

// TestE2EOnDemand: below the threshold the client's SYNs reach the
// backend untouched (without timestamps it still gets window scaling,
// which no Linux-layout cookie carries); a flood well above the threshold
// (counted SYNs, not time, engage the cookies) makes the SYN-ACKs cookies
// (no window scaling); the connection opened before keeps working through
// both switches, and once the flood stops the cookies release (logged,
// and the gauge falls back).
func TestE2EOnDemand(t *testing.T) {
	t.Parallel() // its lab is its own (see newLab)
	for _, d := range policyDrivers {
		t.Run(d.name, func(t *testing.T) {
			l := newLab(t, 154+d.octet*2, true)
			src := spoofed(t, l)
			noTimestamps(t, l.client)
			echoIn(t, l.proxy, l.proxyIP+":8081")
			metrics := l.proxyIP + ":9100"
			dm := startDaemon(t, l.proxy, policyArgs(l, d.name, "--metrics", metrics, "--mode", "on-demand",
				"--on-demand-rate", "200", "--on-demand-hold", "2s", "--reflect-rate", "0")...)
			addr := l.proxyIP + ":8080"
			before := connectFrom(t, l.client, addr)
			if err := roundTrip(before, "before"); err != nil {
				t.Fatal(err)
			}
			if ws := wscaleOf(t, l.client, localPort(before)); ws == "" {
				t.Error("below the threshold: no window scaling without timestamps; the SYN-ACK was not the backend's")
			}
			if m := scrape(t, l.proxy, metrics); m["synproxy_lite_cookies_engaged"] != 0 || m["synproxy_lite_handed_over_total"] != 0 {
				t.Fatalf("below the threshold: engaged %v, handed over %v", m["synproxy_lite_cookies_engaged"], m["synproxy_lite_handed_over_total"])
			}
			// 2000 SYNs a second against a threshold of 200, for up to
			// two minutes: the cookies engage within the flood's first
			// 200 SYNs.
			stop := backgroundFlood(t, l, synFlood(t, l, src), 240000, 2000)
			eventually(t, "the cookies to engage", func() bool { return scrape(t, l.proxy, metrics)["synproxy_lite_cookies_engaged"] == 1 })
			during := connectFrom(t, l.client, addr)
			if err := roundTrip(during, "during"); err != nil {
				t.Fatal(err)
			}
			if ws := wscaleOf(t, l.client, localPort(during)); ws != "" {
				t.Errorf("engaged: the SYN-ACK had window scaling (%s) without timestamps: not a cookie", ws)
			}
			if err := roundTrip(before, "across the switch"); err != nil {
				t.Fatalf("the connection opened before the switch: %v", err)
			}
			scrapeAtLeast(t, l.proxy, metrics, "synproxy_lite_handed_over_total", 1)
			stop()
			eventually(t, "the cookies to release", func() bool { return scrape(t, l.proxy, metrics)["synproxy_lite_cookies_engaged"] == 0 })
			for _, c := range []net.Conn{before, during} {
				if err := roundTrip(c, "after"); err != nil {
					t.Fatalf("after the release: %v", err)
				}
			}
			after := connectFrom(t, l.client, addr)
			if err := roundTrip(after, "after"); err != nil {
				t.Fatal(err)
			}
			if ws := wscaleOf(t, l.client, localPort(after)); ws == "" {
				t.Error("released: no window scaling; the SYN-ACK was not the backend's")
			}
			if d.name == "afxdp" {
				// The XDP program passed the SYNs of before and after
				// (and the flood's first ones) before the engine saw
				// them; the metric counts them all the same.
				scrapeAtLeast(t, l.proxy, metrics, "synproxy_lite_ondemand_syn_passed_total", 2)
			}
			m := scrape(t, l.proxy, metrics)
			t.Logf("on demand: %v", policyMetricsOf(m))
			if m["synproxy_lite_cookie_engagements_total"] != 1 || m["synproxy_lite_handed_over_total"] != 1 {
				t.Errorf("engagements %v, handed over %v; want 1, 1 (only the connection made while engaged)",
					m["synproxy_lite_cookie_engagements_total"], m["synproxy_lite_handed_over_total"])
			}
			for _, want := range []string{"cookies engaged", "cookies disengaged"} {
				if !strings.Contains(dm.out.String(), want) {
					t.Errorf("no log line %q", want)
				}
			}
		})
	}
}

// TestE2EOnDemandOverflow: far below the SYN-rate threshold, a backend
// whose listener overflows (it never accepts, its queue holds one
// connection) engages the cookies too; once the overflows stop they
// release.
func TestE2EOnDemandOverflow(t *testing.T) {
	t.Parallel() // its lab is its own (see newLab)
	for _, d := range policyDrivers {
		t.Run(d.name, func(t *testing.T) {
			l := newLab(t, 158+d.octet*2, false)
			// A listener with a backlog of 0 that never accepts.
			var fd int
			if err := inNS(t, l.proxy, func() (err error) {
				if fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0); err != nil {
					return err
				}
				a := netip.MustParseAddr(l.proxyIP).As4()
				if err = syscall.Bind(fd, &syscall.SockaddrInet4{Port: 8081, Addr: a}); err != nil {
					return err
				}
				return syscall.Listen(fd, 0)
			}); err != nil {
				t.Fatal(err)
			}
			var closeOnce sync.Once
			closeListener := func() { closeOnce.Do(func() { syscall.Close(fd) }) }
			t.Cleanup(closeListener)
			metrics := l.proxyIP + ":9100"
			dm := startDaemon(t, l.proxy, policyArgs(l, d.name, "--metrics", metrics, "--mode", "on-demand",
				"--on-demand-rate", "100000", "--on-demand-hold", "2s")...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for range 6 {
				go func() {
					c, err := dialIn(l.client)(ctx, "tcp", l.proxyIP+":8080")
					if err == nil {
						<-ctx.Done()
						c.Close()
					}
				}()
			}
			eventually(t, "the cookies to engage at the overflows", func() bool {
				return scrape(t, l.proxy, metrics)["synproxy_lite_cookies_engaged"] == 1
			})
			cancel()
			closeListener() // the overflows stop
			eventually(t, "the cookies to release", func() bool {
				return scrape(t, l.proxy, metrics)["synproxy_lite_cookies_engaged"] == 0
			})
			if !strings.Contains(dm.out.String(), "cookies engaged") {
				t.Errorf("no log line of the engagement")
			}
		})
	}
}

// nfqueueDrops returns the packets queue num of namespace ns dropped: full
// (queue_dropped) or failing to reach the daemon (user_dropped).
func nfqueueDrops(t *testing.T, ns string, num int) (drops float64, ok bool) {
	t.Helper()
	var b []byte
	if err := inNS(t, ns, func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/netfilter/nfnetlink_queue")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || f[0] != strconv.Itoa(num) {
			continue
		}
		a, _ := strconv.ParseFloat(f[5], 64)
		u, _ := strconv.ParseFloat(f[6], 64)
		return a + u, true
	}
	return 0, false
}

// TestE2EProvenClients: a client that completed a handshake is remembered
// by the kernel (the set proven4) and, while a flood from another source
// saturates the workers' queue, its packets go to the queue of proven
// clients, which drops none of them: every one of its requests succeeds.
func TestE2EProvenClients(t *testing.T) {
	l := newLab(t, 162, true)
	src := spoofed(t, l)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	startDaemon(t, l.proxy, policyArgs(l, "nfqueue", "--metrics", metrics, "--proven-clients", "--reflect-rate", "0")...)
	const floodQueue, provenQueue = 262, 263 // --queue 100+octet, one worker, then the proven queue
	get := func(what string) {
		t.Helper()
		if out, err := curl(t, l.client, "http://"+l.proxyIP+":8080/small"); err != nil || out != "hello from the backend\n" {
			t.Fatalf("%s: %v %q", what, err, out)
		}
	}
	get("the first request")
	eventually(t, "the client to be proven", func() bool {
		out := sh(t, "ip", "netns", "exec", l.proxy, "nft", "list", "set", "inet", "synproxy_lite", "proven4")
		return strings.Contains(out, l.clientIP)
	})
	before := scrape(t, l.proxy, metrics)["synproxy_lite_proven_packets_total"]
	stop := backgroundFlood(t, l, synFlood(t, l, src), 10_000_000, 200_000)
	const n = 20
	for i := range n {
		get(fmt.Sprintf("request %d during the flood", i))
	}
	stop()
	m := scrapeDrained(t, l.proxy, metrics)
	floodDrops, _ := nfqueueDrops(t, l.proxy, floodQueue)
	provenDrops, ok := nfqueueDrops(t, l.proxy, provenQueue)
	t.Logf("during the flood: %v SYNs taken, %v dropped at the workers' queue; the proven client's %v packets on its own queue, %v dropped there",
		m["synproxy_lite_syn_received_total"], floodDrops, m["synproxy_lite_proven_packets_total"]-before, provenDrops)
	if !ok || provenDrops != 0 {
		t.Errorf("the proven clients' queue (bound %v) dropped %v packets, want 0", ok, provenDrops)
	}
	if got := m["synproxy_lite_proven_packets_total"] - before; got < 2*n {
		t.Errorf("%v packets of the proven client on its queue, want at least a SYN and an ACK of each of %d requests", got, n)
	}
}

// TestE2EAfxdpProvenClients: on afxdp, a client that completed a
// handshake is proven (the engine tells the driver at the handoff) and,
// during the flood of TestE2EProvenClients, its SYNs and handshake ACKs go
// to the proven socket of the queue, whose ring the flood does not reach:
// the proven socket loses none of them and every one of its requests
// succeeds. Its requests' times are logged next to the SYNs the engine
// took, the flood ring's overruns and the links' drops (a measurement,
// not asserted: they depend on the CPU each side gets).
func TestE2EAfxdpProvenClients(t *testing.T) {
	l := newLab(t, 164, true)
	src := spoofed(t, l)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	startDaemon(t, l.proxy, policyArgs(l, "afxdp", "--metrics", metrics, "--proven-clients", "--reflect-rate", "0")...)
	get := func() (time.Duration, error) {
		start := time.Now()
		out, err := curl(t, l.client, "http://"+l.proxyIP+":8080/small")
		if err == nil && out != "hello from the backend\n" {
			err = fmt.Errorf("answer %q", out)
		}
		return time.Since(start), err
	}
	base, err := get()
	if err != nil {
		t.Fatalf("the first request: %v", err)
	}
	// The first request proved the client: its next ones take the proven
	// socket.
	eventually(t, "the client's packets on the proven socket", func() bool {
		if _, err := get(); err != nil {
			t.Fatalf("a request before the flood: %v", err)
		}
		return scrape(t, l.proxy, metrics)["synproxy_lite_proven_packets_total"] > 0
	})
	before := scrape(t, l.proxy, metrics)
	stop := backgroundFlood(t, l, synFlood(t, l, src), 10_000_000, 200_000)
	const n = 20
	var took []time.Duration
	for i := range n {
		d, err := get()
		if err != nil {
			t.Fatalf("request %d during the flood: %v", i, err)
		}
		took = append(took, d)
	}
	stop()
	m := scrapeDrained(t, l.proxy, metrics)
	slices.Sort(took)
	median, slowest := took[len(took)/2], took[len(took)-1]
	proven := m["synproxy_lite_proven_packets_total"] - before["synproxy_lite_proven_packets_total"]
	t.Logf("during the flood: %v SYNs taken by the engine, %v ring overruns (%v on the proven socket), %v dropped by links; the proven client's %v packets on the proven socket; its requests: %d of %d done, median %v, slowest %v (%v before the flood, curl's start included)",
		m["synproxy_lite_syn_received_total"]-before["synproxy_lite_syn_received_total"],
		m["synproxy_lite_rx_overruns_total"], m["synproxy_lite_proven_overruns_total"], linkDrops(t, l.attack)+linkDrops(t, l.proxy),
		proven, len(took), n, median, slowest, base)
	if v, ok := m["synproxy_lite_proven_overruns_total"]; !ok || v != 0 {
		t.Errorf("the proven socket lost %v packets (exported %v), want 0", v, ok)
	}
	if proven < 2*n {
		t.Errorf("%v packets of the proven client on the proven socket, want at least a SYN and an ACK of each of %d requests", proven, n)
	}
	if _, err := get(); err != nil {
		t.Fatalf("a request after the flood: %v", err)
	}
}
