package main

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// greeter is a server-speaks-first backend, like SMTP: it greets on
// connect, then answers one line and closes.
func startGreeter(t *testing.T, ln net.Listener) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				fmt.Fprintf(c, "220 greeter ready\r\n")
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprintf(c, "221 bye %s", line)
			}()
		}
	}()
}

// converse dials addr from the client namespace and plays the greeter's
// protocol: read the greeting, send a line, read the answer.
func converse(t *testing.T, ns, addr string) time.Duration {
	t.Helper()
	var c net.Conn
	if err := inNS(t, ns, func() (err error) { c, err = net.DialTimeout("tcp", addr, 10*time.Second); return }); err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	t0 := time.Now()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	greeting, err := r.ReadString('\n')
	if err != nil || greeting != "220 greeter ready\r\n" {
		t.Fatalf("greeting via %s: %q, %v", addr, greeting, err)
	}
	waited := time.Since(t0)
	fmt.Fprintf(c, "QUIT\r\n")
	bye, err := r.ReadString('\n')
	if err != nil || bye != "221 bye QUIT\r\n" {
		t.Fatalf("answer via %s: %q, %v", addr, bye, err)
	}
	return waited
}

// Drop the client's first pure ACK to the proxy: the handshake ACK.
// Later ACKs (the answer to the re-sent SYN-ACK, zero-window probes)
// pass.
const lostACKRules = `table inet spltest {
	chain out {
		type filter hook output priority 0;
		tcp dport 8080 tcp flags & (syn | ack | fin | rst | psh) == ack limit rate 1/hour burst 1 packets counter name lost drop
	}
	counter lost {}
}`

// TestE2EServerSpeaksFirst: a backend that greets first works through the
// proxy, also when the client's handshake ACK is lost. The client then
// believes the connection is open and waits for the greeting with nothing
// to send; the proxy, which saw no ACK, sends its SYN-ACK again after a
// second, the client's kernel answers it with an ACK carrying the cookie,
// and the connection is handed over.
func TestE2EServerSpeaksFirst(t *testing.T) {
	testServerSpeaksFirst(t, 17, func(l *lab, metrics string) []string {
		return []string{"--port", "8080", "--backend", l.proxyIP + ":8081", "--workers", "1", "--queue", "150",
			"--metrics", metrics}
	})
}

// testServerSpeaksFirst runs TestE2EServerSpeaksFirst in a lab on octet,
// with the daemon's arguments from args.
func testServerSpeaksFirst(t *testing.T, octet int, args func(l *lab, metrics string) []string) {
	l := newLab(t, octet, false)
	startGreeter(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	startDaemon(t, l.proxy, args(l, metrics)...)
	hosts := []string{l.proxyIP + ":8080", "[" + l.proxy6 + "]:8080"}
	for _, h := range hosts {
		converse(t, l.client, h)
	}
	m0 := scrape(t, l.proxy, metrics)
	if m0["synproxy_lite_synack_resent_total"] != 0 {
		t.Errorf("SYN-ACKs re-sent without a loss: %v", m0["synproxy_lite_synack_resent_total"])
	}
	for _, h := range hosts {
		t.Run("lost ACK "+h, func(t *testing.T) {
			nftIn(t, l.client, lostACKRules)
			t.Cleanup(func() { nftIn(t, l.client, "delete table inet spltest") })
			before := scrape(t, l.proxy, metrics)
			waited := converse(t, l.client, h)
			out := sh(t, "ip", "netns", "exec", l.client, "nft", "list", "counter", "inet", "spltest", "lost")
			if !strings.Contains(out, "packets 1 ") {
				t.Fatalf("the handshake ACK was not dropped exactly once:\n%s", out)
			}
			after := scrapeAtLeast(t, l.proxy, metrics, "synproxy_lite_handed_over_total", before["synproxy_lite_handed_over_total"]+1)
			t.Logf("greeting after %v; SYN-ACKs re-sent %v; handed over %v",
				waited.Round(time.Millisecond), after["synproxy_lite_synack_resent_total"]-before["synproxy_lite_synack_resent_total"],
				after["synproxy_lite_handed_over_total"]-before["synproxy_lite_handed_over_total"])
			if after["synproxy_lite_synack_resent_total"] <= before["synproxy_lite_synack_resent_total"] {
				t.Error("recovered without a re-sent SYN-ACK: was the ACK really lost?")
			}
			if d := after["synproxy_lite_handed_over_total"] - before["synproxy_lite_handed_over_total"]; d != 1 {
				t.Errorf("%v connections handed over, want 1", d)
			}
		})
	}
}

// TestE2ELostACKClientFirst: the client's handshake ACK is lost and the
// client has data to send at once (HTTP, or here a line before the
// greeting). The SYN-ACK announced a window (engine.SYNACKWindow), so the
// client sends its data right away; the first data segment carries the
// ACK's sequence numbers, proves the cookie and the connection is handed
// over at once, without the SYN-ACK re-send of a second later. (Against a
// zero window the client would send only zero-window probes, which prove
// nothing, and hang once the re-send table was overwritten by a flood.)
func TestE2ELostACKClientFirst(t *testing.T) {
	testLostACKClientFirst(t, 20, func(l *lab, metrics string) []string {
		return []string{"--port", "8080", "--backend", l.proxyIP + ":8081", "--workers", "1", "--queue", "160",
			"--metrics", metrics}
	})
}

// testLostACKClientFirst runs TestE2ELostACKClientFirst in a lab on octet,
// with the daemon's arguments from args.
func testLostACKClientFirst(t *testing.T, octet int, args func(l *lab, metrics string) []string) {
	l := newLab(t, octet, false)
	startGreeter(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	startDaemon(t, l.proxy, args(l, metrics)...)
	for _, h := range []string{l.proxyIP + ":8080", "[" + l.proxy6 + "]:8080"} {
		t.Run(h, func(t *testing.T) {
			nftIn(t, l.client, lostACKRules)
			t.Cleanup(func() { nftIn(t, l.client, "delete table inet spltest") })
			before := scrape(t, l.proxy, metrics)
			var c net.Conn
			if err := inNS(t, l.client, func() (err error) { c, err = net.DialTimeout("tcp", h, 10*time.Second); return }); err != nil {
				t.Fatalf("dial %s: %v", h, err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprintf(c, "QUIT\r\n") // before the greeting: the client speaks first
			r := bufio.NewReader(c)
			for _, want := range []string{"220 greeter ready\r\n", "221 bye QUIT\r\n"} {
				if got, err := r.ReadString('\n'); err != nil || got != want {
					t.Fatalf("via %s: %q, %v; want %q", h, got, err, want)
				}
			}
			out := sh(t, "ip", "netns", "exec", l.client, "nft", "list", "counter", "inet", "spltest", "lost")
			if !strings.Contains(out, "packets 1 ") {
				t.Fatalf("the handshake ACK was not dropped exactly once:\n%s", out)
			}
			after := scrapeAtLeast(t, l.proxy, metrics, "synproxy_lite_handed_over_total", before["synproxy_lite_handed_over_total"]+1)
			handed := after["synproxy_lite_handed_over_total"] - before["synproxy_lite_handed_over_total"]
			resent := after["synproxy_lite_synack_resent_total"] - before["synproxy_lite_synack_resent_total"]
			if handed != 1 || resent != 0 {
				t.Errorf("%v connections handed over with %v SYN-ACKs re-sent; want 1, by the first data segment (0 re-sent)", handed, resent)
			}
		})
	}
}

// nftIn loads an nft script in namespace ns.
func nftIn(t *testing.T, ns, script string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v: %s\n%s", ns, err, out, script)
	}
}
