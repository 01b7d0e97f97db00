package main

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// The end-to-end tests of the daemon, run with --driver afxdp: the same lab
// (client, proxy with a bridge, attacker), the same backend and clients.
// The XDP program attaches to br0, in generic mode (a bridge has no native
// XDP). Addresses 10.99.130.0-10.99.149.255 and fd00:99:130::/64.. belong
// to them.

// afxdpArgs returns the daemon's flags. As with afpacket, bridge netfilter
// is off in the proxy namespace: with br_netfilter loaded the bridge runs
// the IP prerouting hooks (and so the drop rules) before the frame reaches
// br0, where the XDP program runs.
func afxdpArgs(l *lab, extra ...string) []string {
	args := afpacketArgs(l, 1, extra...)
	for i, a := range args {
		if a == "afpacket" {
			args[i] = "afxdp"
		}
	}
	return args
}

func TestE2EAfxdpCurlAndGo(t *testing.T) {
	l := newLab(t, 130, false)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	d := startDaemon(t, l.proxy, afxdpArgs(l, "--metrics", metrics)...)
	if !strings.Contains(d.out.String(), "driver=afxdp") {
		t.Fatalf("daemon does not run the afxdp driver:\n%s", d.out.String())
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
	// Established traffic never reaches the engine: the transfers' data
	// segments pass to the stack in the XDP program.
	if p := m["synproxy_lite_packets_total"]; p > 1000 {
		t.Errorf("the engine saw %v packets for a few handshakes and 400 MB of transfers", p)
	}
}

func TestE2EAfxdpOptionsOff(t *testing.T) {
	t.Parallel() // its lab is its own (see newLab)
	for i, sysctl := range []string{"net.ipv4.tcp_timestamps", "net.ipv4.tcp_sack", "net.ipv4.tcp_window_scaling"} {
		t.Run(sysctl, func(t *testing.T) {
			l := newLab(t, 131+i, false)
			sh(t, "ip", "netns", "exec", l.client, "sysctl", "-qw", sysctl+"=0")
			startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
			startDaemon(t, l.proxy, afxdpArgs(l)...)
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

// TestE2EAfxdpFlood: a trafgen SYN flood from the attacker namespace while
// legitimate clients fetch pages; every legitimate request succeeds, the
// daemon's memory stays flat, and forged ACKs are all rejected.
func TestE2EAfxdpFlood(t *testing.T) {
	l := newLab(t, 134, true)
	sh(t, "ip", "-n", l.proxy, "route", "add", "10.99.135.0/24", "via", l.attackIP)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	// The flood comes from one address: without --reflect-rate 0 the
	// reflection budget would leave most of it unanswered, and this test
	// accounts for every SYN-ACK.
	d := startDaemon(t, l.proxy, afxdpArgs(l, "--metrics", metrics, "--reflect-rate", "0")...)
	m := floodAndForge(t, l, d, metrics, "10.99.135.1")
	// Every flood SYN is accounted for: the engine took it, the socket's
	// RX ring overran and the kernel counted it (XDP_STATISTICS), or a
	// link dropped it on the way. How they split depends on the CPU each
	// side gets, so only the sum is asserted, and that the engine took
	// some.
	lost := linkDrops(t, l.attack) + linkDrops(t, l.proxy)
	t.Logf("flood SYNs: %v taken by the engine, %v ring overruns, %v dropped by links",
		m["synproxy_lite_syn_received_total"], m["synproxy_lite_rx_overruns_total"], lost)
	if got := m["synproxy_lite_syn_received_total"] + m["synproxy_lite_rx_overruns_total"] + lost; got < floodN {
		t.Errorf("%v flood SYNs taken, counted as ring overruns or dropped by links, want all %d", got, floodN)
	}
	if m["synproxy_lite_syn_received_total"] == 0 {
		t.Errorf("no flood SYN reached the engine")
	}
	if got := m["synproxy_lite_synack_sent_total"] + m["synproxy_lite_tx_errors_total"]; got < m["synproxy_lite_syn_received_total"] {
		t.Errorf("%v SYN-ACKs sent and %v failed for %v SYNs", m["synproxy_lite_synack_sent_total"],
			m["synproxy_lite_tx_errors_total"], m["synproxy_lite_syn_received_total"])
	}
}

func TestE2EAfxdpMalformed(t *testing.T) {
	testMalformed(t, 136, func(l *lab, metrics string) []string { return afxdpArgs(l, "--metrics", metrics) })
}

func TestE2EAfxdpGracefulRestart(t *testing.T) {
	testGracefulRestart(t, 137, func(l *lab) []string { return afxdpArgs(l) })
}

// TestE2EAfxdpFleetRehash: TestFleetRehash with the proxies on afxdp, the
// program in native mode on their veth.
func TestE2EAfxdpFleetRehash(t *testing.T) { testFleetRehash(t, "afxdp") }

// TestE2EDriverAuto: --driver auto (the default) picks afxdp where the XDP
// program attaches to --interface, afpacket where it cannot (here: another
// daemon's program holds br0), and nfqueue without an interface; each
// logs its choice and why, and serves.
func TestE2EDriverAuto(t *testing.T) {
	l := newLab(t, 138, false)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	autoArgs := func(port, table string, extra ...string) []string {
		args := afxdpArgs(l, append([]string{"--table", table}, extra...)...)
		for i, a := range args {
			switch a {
			case "afxdp":
				args[i] = "auto"
			case "8080":
				args[i] = port
			}
		}
		return args
	}
	d1 := startDaemon(t, l.proxy, autoArgs("8080", "synproxy_lite")...)
	d2 := startDaemon(t, l.proxy, autoArgs("8082", "synproxy_lite_2")...)
	d3 := startDaemon(t, l.proxy, "--port", "8083", "--backend", l.proxyIP+":8081", "--workers", "1",
		"--queue", "238", "--table", "synproxy_lite_3")
	for i, c := range []struct {
		d      *daemonProc
		driver string
		port   string
	}{{d1, "afxdp", "8080"}, {d2, "afpacket", "8082"}, {d3, "nfqueue", "8083"}} {
		out := c.d.out.String()
		if !strings.Contains(out, `msg="driver chosen" service=default driver=`+c.driver+" why=") {
			t.Errorf("daemon %d did not choose %s:\n%s", i+1, c.driver, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "driver chosen") {
				t.Log(line)
			}
		}
		for _, host := range []string{l.proxyIP, "[" + l.proxy6 + "]"} {
			if got, err := curl(t, l.client, "-g", "http://"+host+":"+c.port+"/small"); err != nil || got != "hello from the backend\n" {
				t.Errorf("curl via %s:%s (%s): %v %q", host, c.port, c.driver, err, got)
			}
		}
	}
}

// TestE2EAfxdpTimeWaitReuse: the backend closes first, so the proxy's
// socket of the connection stays in TIME_WAIT; a new connection from the
// same client port is handed over all the same. Its SYN and handshake ACK
// must reach the engine although a socket (in TIME_WAIT) owns the tuple.
func TestE2EAfxdpTimeWaitReuse(t *testing.T) {
	l := newLab(t, 139, false)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	startDaemon(t, l.proxy, afxdpArgs(l)...)
	for _, host := range []string{l.proxyIP, "[" + l.proxy6 + "]"} {
		for round := 0; round < 2; round++ {
			// The client reads to the end before it closes: the proxy
			// closes first and keeps the TIME_WAIT, not the client.
			var out []byte
			err := inNS(t, l.client, func() error {
				d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{Port: 40123}}
				c, err := d.Dial("tcp", host+":8080")
				if err != nil {
					return err
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c, "GET /small HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n"); err != nil {
					return err
				}
				out, err = io.ReadAll(c)
				return err
			})
			if err != nil || !strings.HasSuffix(string(out), "hello from the backend\n") {
				t.Fatalf("%s round %d: %v %q", host, round, err, out)
			}
			if round == 0 {
				tw := sh(t, "ip", "netns", "exec", l.proxy, "ss", "-tanH", "state", "time-wait", "sport", "= :8080", "dport", "= :40123")
				if strings.TrimSpace(tw) == "" {
					t.Fatalf("%s: no TIME_WAIT socket on the proxy for the first connection", host)
				}
			}
		}
	}
}

// TestE2EAfxdpServerSpeaksFirst: a lost handshake ACK is recovered by the
// SYN-ACK re-sent on the TX ring.
func TestE2EAfxdpServerSpeaksFirst(t *testing.T) {
	testServerSpeaksFirst(t, 140, func(l *lab, metrics string) []string { return afxdpArgs(l, "--metrics", metrics) })
}

// TestE2EAfxdpLostACKClientFirst: the first data segment proves the cookie
// and its data reaches the backend: the segment, re-injected, is the new
// socket's first.
func TestE2EAfxdpLostACKClientFirst(t *testing.T) {
	testLostACKClientFirst(t, 141, func(l *lab, metrics string) []string { return afxdpArgs(l, "--metrics", metrics) })
}
