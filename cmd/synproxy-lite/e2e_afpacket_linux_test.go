package main

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// The end-to-end tests of the daemon, run with --driver afpacket: the same
// lab (client, proxy with a bridge, attacker), the same backend and clients.
// Addresses 10.99.40.0-10.99.49.255 and fd00:99:40::/64.. belong to them.

// afpacketArgs returns the daemon's flags. It also turns bridge netfilter
// off in the proxy namespace: with br_netfilter loaded, the bridge runs the
// IP prerouting hooks (and so the drop rules) before the frame reaches
// br0, where the AF_PACKET socket listens (docs/performance.md).
func afpacketArgs(l *lab, workers int, extra ...string) []string {
	for _, k := range []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"} {
		exec.Command("ip", "netns", "exec", l.proxy, "sysctl", "-qw", k+"=0").Run()
	}
	return append([]string{"--port", "8080", "--backend", l.proxyIP + ":8081", "--driver", "afpacket",
		"--interface", "br0", "--workers", strconv.Itoa(workers)}, extra...)
}

func TestE2EAfpacketCurlAndGo(t *testing.T) {
	l := newLab(t, 40, false)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	d := startDaemon(t, l.proxy, afpacketArgs(l, 2, "--metrics", metrics)...)
	if !strings.Contains(d.out.String(), "driver=afpacket") {
		t.Fatalf("daemon does not run the afpacket driver:\n%s", d.out.String())
	}
	for _, host := range []string{l.proxyIP, "[" + l.proxy6 + "]"} {
		out, err := curl(t, l.client, "-g", "http://"+host+":8080/small")
		if err != nil || out != "hello from the backend\n" {
			t.Fatalf("curl via %s: %v %q", host, err, out)
		}
	}
	c := httpClient(l.client)
	for _, host := range []string{l.proxyIP, "[" + l.proxy6 + "]"} {
		transfer(t, c, "http://"+host+":8080", 100<<20)
	}
	m := scrape(t, l.proxy, metrics)
	if m["synproxy_lite_handed_over_total"] < 6 || m["synproxy_lite_cookie_valid_total"] < 6 {
		t.Errorf("metrics: %v", m)
	}
	if m["synproxy_lite_handoff_failed_total"] != 0 {
		t.Errorf("handoffs failed: %v", m["synproxy_lite_handoff_failed_total"])
	}
	if m[`synproxy_lite_malformed_total{reason="checksum"}`] > 0 {
		t.Errorf("%v packets failed the checksum (offloaded checksums not completed?)",
			m[`synproxy_lite_malformed_total{reason="checksum"}`])
	}
}

func TestE2EAfpacketOptionsOff(t *testing.T) {
	t.Parallel() // its lab is its own (see newLab)
	for i, sysctl := range []string{"net.ipv4.tcp_timestamps", "net.ipv4.tcp_sack", "net.ipv4.tcp_window_scaling"} {
		t.Run(sysctl, func(t *testing.T) {
			l := newLab(t, 41+i, false)
			sh(t, "ip", "netns", "exec", l.client, "sysctl", "-qw", sysctl+"=0")
			startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
			startDaemon(t, l.proxy, afpacketArgs(l, 1)...)
			c := httpClient(l.client)
			for _, host := range []string{l.proxyIP, "[" + l.proxy6 + "]"} {
				transfer(t, c, "http://"+host+":8080", 100<<20)
			}
			if out, err := curl(t, l.client, "http://"+l.proxyIP+":8080/small"); err != nil || out != "hello from the backend\n" {
				t.Fatalf("curl: %v %q", err, out)
			}
		})
	}
}

// TestE2EAfpacketFlood: a trafgen SYN flood from the attacker namespace
// while legitimate clients fetch pages; every legitimate request succeeds,
// the daemon's memory stays flat, and forged ACKs are all rejected.
func TestE2EAfpacketFlood(t *testing.T) {
	l := newLab(t, 44, true)
	sh(t, "ip", "-n", l.proxy, "route", "add", "10.99.45.0/24", "via", l.attackIP)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	// The flood comes from one address: without --reflect-rate 0 the
	// reflection budget would leave most of it unanswered, and this test
	// accounts for every SYN-ACK.
	d := startDaemon(t, l.proxy, afpacketArgs(l, 2, "--metrics", metrics, "--reflect-rate", "0")...)
	m := floodAndForge(t, l, d, metrics, "10.99.45.1")
	// Every flood SYN is accounted for: the engine took it, the ring
	// overran and the kernel counted it (PACKET_STATISTICS), or a link
	// dropped it on the way (a full backlog behind the attacker's veth).
	// How they split depends on the CPU each side gets, so only the sum is
	// asserted, and that the engine took some.
	lost := linkDrops(t, l.attack) + linkDrops(t, l.proxy)
	t.Logf("flood SYNs: %v taken by the engine, %v ring overruns, %v dropped by links",
		m["synproxy_lite_syn_received_total"], m["synproxy_lite_rx_overruns_total"], lost)
	if got := m["synproxy_lite_syn_received_total"] + m["synproxy_lite_rx_overruns_total"] + lost; got < floodN {
		t.Errorf("%v flood SYNs taken, counted as ring overruns or dropped by links, want all %d", got, floodN)
	}
	if m["synproxy_lite_syn_received_total"] == 0 {
		t.Errorf("no flood SYN reached the engine")
	}
	// Every SYN the engine took is answered, or its SYN-ACK counted as a
	// failed transmit.
	if got := m["synproxy_lite_synack_sent_total"] + m["synproxy_lite_tx_errors_total"]; got < m["synproxy_lite_syn_received_total"] {
		t.Errorf("%v SYN-ACKs sent and %v failed for %v SYNs", m["synproxy_lite_synack_sent_total"],
			m["synproxy_lite_tx_errors_total"], m["synproxy_lite_syn_received_total"])
	}
}
