package main

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

// The end-to-end tests of the afpacket driver on a host that changes under
// it or routes for others. Addresses 10.99.50.0-10.99.59.255 and
// fd00:99:50::/64.. belong to them.

// cpuTicks returns the user and system CPU time of process pid, in clock
// ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// curlRetry fetches url from namespace ns until it answers, for at most
// 15 s.
func curlRetry(t *testing.T, ns, url, want string) {
	t.Helper()
	var out string
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if out, err = curl(t, ns, "-g", "--max-time", "3", url); err == nil && out == want {
			return
		}
	}
	t.Fatalf("curl %s: %v %q", url, err, out)
}

// TestE2EAfpacketLinkFlap: the interface the driver is bound to goes down
// and up again. The workers read the sockets' error and sleep instead of
// spinning on it (counted as idle wake-ups, which do not depend on how busy
// the machine is), and the next connections succeed.
func TestE2EAfpacketLinkFlap(t *testing.T) {
	l := newLab(t, 50, false)
	// IPv6 addresses survive the flap, as IPv4 ones do.
	sh(t, "ip", "netns", "exec", l.proxy, "sysctl", "-qw", "net.ipv6.conf.br0.keep_addr_on_down=1")
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	d := startDaemon(t, l.proxy, afpacketArgs(l, 2, "--metrics", metrics)...)
	curlRetry(t, l.client, "http://"+l.proxyIP+":8080/small", "hello from the backend\n")
	sh(t, "ip", "-n", l.proxy, "link", "set", "br0", "down")
	time.Sleep(100 * time.Millisecond)
	sh(t, "ip", "-n", l.proxy, "link", "set", "br0", "up")
	time.Sleep(100 * time.Millisecond)
	before, cpu := scrape(t, l.proxy, metrics), cpuTicks(t, d.cmd.Process.Pid)
	time.Sleep(1500 * time.Millisecond)
	after, cpu := scrape(t, l.proxy, metrics), cpuTicks(t, d.cmd.Process.Pid)-cpu
	idle := after["synproxy_lite_driver_idle_wakeups_total"] - before["synproxy_lite_driver_idle_wakeups_total"]
	t.Logf("in the 1.5 s after the flap: %v idle wake-ups, %d ticks of CPU; %v receive errors read",
		idle, cpu, after["synproxy_lite_driver_rx_errors_total"])
	// A spinning worker wakes up hundreds of thousands of times a second
	// even on a loaded machine; a sleeping one not at all.
	if idle > 50 {
		t.Errorf("%v idle wake-ups in 1.5 s after a link flap: the workers spin", idle)
	}
	if after["synproxy_lite_driver_rx_errors_total"] == 0 {
		t.Errorf("no receive socket error read after a link flap")
	}
	if !strings.Contains(d.out.String(), "receive socket error") {
		t.Errorf("the socket error was not logged")
	}
	for _, host := range []string{l.proxyIP, "[" + l.proxy6 + "]"} {
		curlRetry(t, l.client, "http://"+host+":8080/small", "hello from the backend\n")
	}
	m := scrape(t, l.proxy, metrics)
	if m["synproxy_lite_handed_over_total"] < 3 {
		t.Errorf("%v connections handed over, want 3 (the daemon's, not the kernel's)", m["synproxy_lite_handed_over_total"])
	}
	if n := strings.Count(d.out.String(), "receive socket error"); n > 2 {
		t.Errorf("the socket error was logged %d times", n)
	}
}

// TestE2EAfpacketRouter: the daemon protects a router's own port 8080 and
// the router forwards connections to another host's port 8080 through the
// same interface. The daemon answers the SYNs to the router's address and
// leaves the others to the host they are for: no SYN-ACK of its own for
// them, and the connections to the other host work.
func TestE2EAfpacketRouter(t *testing.T) {
	needLab(t)
	nl := netlabtest.New(t, "splc")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	client, err := nl.AddNS("client")
	must(err)
	router, err := nl.AddNS("router")
	must(err)
	server, err := nl.AddNS("server")
	must(err)
	p := netip.MustParsePrefix
	must(nl.Link(client, router, &netlab.LinkConfig{AName: "veth0", BName: "vclient",
		AAddrs: []netip.Prefix{p("10.99.52.1/24"), p("fd00:99:52::1/64")},
		BAddrs: []netip.Prefix{p("10.99.52.2/24"), p("fd00:99:52::2/64")}}))
	must(nl.Link(server, router, &netlab.LinkConfig{AName: "veth0", BName: "vserver",
		AAddrs: []netip.Prefix{p("10.99.53.1/24"), p("fd00:99:53::1/64")},
		BAddrs: []netip.Prefix{p("10.99.53.2/24"), p("fd00:99:53::2/64")}}))
	must(client.DefaultRoute(netip.MustParseAddr("10.99.52.2")))
	must(client.DefaultRoute(netip.MustParseAddr("fd00:99:52::2")))
	must(server.DefaultRoute(netip.MustParseAddr("10.99.53.2")))
	must(server.DefaultRoute(netip.MustParseAddr("fd00:99:53::2")))
	must(router.SetSysctl("net.ipv4.ip_forward", "1"))
	must(router.SetSysctl("net.ipv6.conf.all.forwarding", "1"))

	// The other host's service, on the protected port.
	startBackend(t, listenIn(t, server.Name(), ":8080"))
	// The router's own, behind the daemon.
	startBackend(t, listenIn(t, router.Name(), "10.99.52.2:8081"))
	metrics := "10.99.52.2:9100"
	startDaemon(t, router.Name(), "--port", "8080", "--backend", "10.99.52.2:8081", "--driver", "afpacket",
		"--interface", "vclient", "--workers", "1", "--metrics", metrics)

	for _, url := range []string{"http://10.99.53.1:8080/small", "http://[fd00:99:53::1]:8080/small"} {
		for i := 0; i < 3; i++ {
			if out, err := curl(t, client.Name(), "-g", url); err != nil || out != "hello from the backend\n" {
				t.Errorf("curl %s through the router: %v %q", url, err, out)
			}
		}
	}
	m := scrape(t, router.Name(), metrics)
	t.Logf("forwarded: %v SYNs taken, %v SYN-ACKs sent, %v frames skipped as not local",
		m["synproxy_lite_syn_received_total"], m["synproxy_lite_synack_sent_total"],
		m[`synproxy_lite_driver_skipped_total{reason="not_local"}`])
	if m["synproxy_lite_synack_sent_total"] != 0 || m["synproxy_lite_syn_received_total"] != 0 {
		t.Errorf("the daemon took %v SYNs for another host and answered %v of them",
			m["synproxy_lite_syn_received_total"], m["synproxy_lite_synack_sent_total"])
	}
	if m[`synproxy_lite_driver_skipped_total{reason="not_local"}`] < 6 {
		t.Errorf("%v frames skipped as not local, want at least the 6 SYNs",
			m[`synproxy_lite_driver_skipped_total{reason="not_local"}`])
	}
	// The router's own port is still the daemon's.
	for _, url := range []string{"http://10.99.52.2:8080/small", "http://[fd00:99:52::2]:8080/small"} {
		if out, err := curl(t, client.Name(), "-g", url); err != nil || out != "hello from the backend\n" {
			t.Errorf("curl %s: %v %q", url, err, out)
		}
	}
	m = scrapeAtLeast(t, router.Name(), metrics, "synproxy_lite_handed_over_total", 2)
	if m["synproxy_lite_handed_over_total"] != 2 {
		t.Errorf("%v connections to the router handed over, want 2", m["synproxy_lite_handed_over_total"])
	}
}
