package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The limits end to end (--max-conns, --max-conns-per-source,
// --idle-timeout, --backend-timeout), in 10.99.80.0/24 to 10.99.84.0/24.
// Every wait is for a condition, bounded by a minute: a loaded machine
// makes the tests slower, never wrong.

// echoIn serves an echo on addr in namespace ns and counts the
// connections that ended.
func echoIn(t *testing.T, ns, addr string) *atomic.Int64 {
	t.Helper()
	ln := listenIn(t, ns, addr)
	var ended atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				ended.Add(1)
			}()
		}
	}()
	return &ended
}

// eventually polls cond until it holds, failing after a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connectFrom opens a connection from namespace ns to addr; it completes
// with the daemon's SYN-ACK whatever the handoff does after.
func connectFrom(t *testing.T, ns, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := dialIn(ns)(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes s and reads it back, within a minute (retransmissions
// included).
func roundTrip(c net.Conn, s string) error {
	c.SetDeadline(time.Now().Add(time.Minute))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, s); err != nil {
		return err
	}
	return readBack(c, s)
}

func readBack(c net.Conn, s string) error {
	c.SetReadDeadline(time.Now().Add(time.Minute))
	got := make([]byte, len(s))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != s {
		return errors.New("echoed " + string(got) + ", want " + s)
	}
	return nil
}

// establishedOn counts the established sockets of port in namespace ns.
func establishedOn(t *testing.T, ns, port string) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "ss", "-tnH", "state", "established",
		"( sport = :"+port+" )").CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	return strings.Count(string(out), "\n")
}

const refused = `synproxy_lite_handoffs_refused_total{reason="`

// TestE2EMaxConns: with --max-conns 3 the fourth connection is refused (no
// socket, counted) while three are open and idle; once one closes, the
// fourth's retransmission gets in.
// It runs on both drivers: the limit is the handoff's, the refusal (a
// dropped ACK) the engine's verdict, which each driver carries out its own
// way.
func TestE2EMaxConns(t *testing.T) {
	for _, tc := range []struct {
		driver string
		octet  int
	}{{"nfqueue", 80}, {"afpacket", 84}, {"afxdp", 85}} {
		t.Run(tc.driver, func(t *testing.T) {
			l := newLab(t, tc.octet, false)
			args := []string{"--port", "8080", "--backend", l.proxyIP + ":8081", "--workers", "1", "--queue", "180"}
			switch tc.driver {
			case "afpacket":
				args = afpacketArgs(l, 1)
			case "afxdp":
				args = afxdpArgs(l)
			}
			testMaxConns(t, l, args)
		})
	}
}

func testMaxConns(t *testing.T, l *lab, args []string) {
	ended := echoIn(t, l.proxy, l.proxyIP+":8081")
	metrics := l.proxyIP + ":9100"
	startDaemon(t, l.proxy, append(args, "--metrics", metrics, "--max-conns", "3")...)
	addr := l.proxyIP + ":8080"
	var open []net.Conn
	for i := range 3 {
		c := connectFrom(t, l.client, addr)
		if err := roundTrip(c, "open"); err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		open = append(open, c)
	}
	fourth := connectFrom(t, l.client, addr)
	if _, err := io.WriteString(fourth, "fourth"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fourth refused", func() bool { return scrape(t, l.proxy, metrics)[refused+`max_conns"}`] >= 1 })
	m := scrape(t, l.proxy, metrics)
	if m["synproxy_lite_connections_open"] != 3 || m["synproxy_lite_connections_max"] != 3 ||
		m["synproxy_lite_handed_over_total"] != 3 || m["synproxy_lite_handoff_failed_total"] != 0 {
		t.Errorf("at the limit: open %v (max %v), handed over %v, failed %v; want 3, 3, 3, 0",
			m["synproxy_lite_connections_open"], m["synproxy_lite_connections_max"],
			m["synproxy_lite_handed_over_total"], m["synproxy_lite_handoff_failed_total"])
	}
	if n := establishedOn(t, l.proxy, "8080"); n != 3 {
		t.Errorf("%d sockets on the port at the limit, want 3", n)
	}
	open[0].Close()
	eventually(t, "the first connection to end", func() bool { return ended.Load() >= 1 })
	if err := readBack(fourth, "fourth"); err != nil {
		t.Fatalf("the fourth after room freed: %v", err)
	}
	m = scrapeAtLeast(t, l.proxy, metrics, "synproxy_lite_handed_over_total", 4)
	if m["synproxy_lite_handed_over_total"] != 4 || m["synproxy_lite_connections_open"] != 3 ||
		m["synproxy_lite_handoff_failed_total"] != 0 {
		t.Errorf("after: handed over %v, open %v, failed %v; want 4, 3, 0", m["synproxy_lite_handed_over_total"],
			m["synproxy_lite_connections_open"], m["synproxy_lite_handoff_failed_total"])
	}
}

// TestE2EMaxConnsPerSource: one client address at its limit is refused
// while another address gets in; once its connection closed, its
// retransmission gets in.
func TestE2EMaxConnsPerSource(t *testing.T) {
	l := newLab(t, 81, true)
	ended := echoIn(t, l.proxy, l.proxyIP+":8081")
	metrics := l.proxyIP + ":9100"
	startDaemon(t, l.proxy, "--port", "8080", "--backend", l.proxyIP+":8081", "--workers", "1", "--queue", "181",
		"--metrics", metrics, "--max-conns-per-source", "1")
	addr := l.proxyIP + ":8080"
	a1 := connectFrom(t, l.client, addr)
	if err := roundTrip(a1, "a1"); err != nil {
		t.Fatal(err)
	}
	a2 := connectFrom(t, l.client, addr)
	if _, err := io.WriteString(a2, "a2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the source's second refused", func() bool { return scrape(t, l.proxy, metrics)[refused+`per_source"}`] >= 1 })
	b1 := connectFrom(t, l.attack, addr) // another address
	if err := roundTrip(b1, "b1"); err != nil {
		t.Fatalf("another source: %v", err)
	}
	if m := scrape(t, l.proxy, metrics); m["synproxy_lite_connections_open"] != 2 || m[refused+`max_conns"}`] != 0 {
		t.Errorf("open %v, refused for max_conns %v; want 2, 0", m["synproxy_lite_connections_open"], m[refused+`max_conns"}`])
	}
	a1.Close()
	eventually(t, "the first connection to end", func() bool { return ended.Load() >= 1 })
	if err := readBack(a2, "a2"); err != nil {
		t.Fatalf("the refused source after room freed: %v", err)
	}
}

// TestE2EIdleTimeout: --idle-timeout closes a connection idle both ways
// (the client and the backend see the end of stream) while a busy one
// lives on.
func TestE2EIdleTimeout(t *testing.T) {
	l := newLab(t, 82, false)
	ended := echoIn(t, l.proxy, l.proxyIP+":8081")
	metrics := l.proxyIP + ":9100"
	startDaemon(t, l.proxy, "--port", "8080", "--backend", l.proxyIP+":8081", "--workers", "1", "--queue", "182",
		"--metrics", metrics, "--idle-timeout", "2s")
	idle := connectFrom(t, l.client, l.proxyIP+":8080")
	busy := connectFrom(t, l.client, "["+l.proxy6+"]:8080")
	for _, c := range []net.Conn{idle, busy} {
		if err := roundTrip(c, "hello"); err != nil {
			t.Fatal(err)
		}
	}
	stop, busyErr := make(chan struct{}), make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				busyErr <- nil
				return
			case <-time.After(100 * time.Millisecond):
			}
			if err := roundTrip(busy, "ping"); err != nil {
				busyErr <- err
				return
			}
		}
	}()
	idle.SetReadDeadline(time.Now().Add(time.Minute))
	if b, err := io.ReadAll(idle); err != nil || len(b) != 0 {
		t.Fatalf("idle connection: %q, %v; want the end of stream", b, err)
	}
	eventually(t, "the backend to see the end", func() bool { return ended.Load() >= 1 })
	time.Sleep(3 * time.Second) // the busy one outlives the timeout
	close(stop)
	if err := <-busyErr; err != nil {
		t.Fatalf("busy connection: %v", err)
	}
	m := scrape(t, l.proxy, metrics)
	if m["synproxy_lite_connections_idle_closed_total"] != 1 || m["synproxy_lite_connections_open"] != 1 || ended.Load() != 1 {
		t.Errorf("idle closed %v, open %v, backend ends %d; want 1, 1, 1", m["synproxy_lite_connections_idle_closed_total"],
			m["synproxy_lite_connections_open"], ended.Load())
	}
}

// TestE2EBackendTimeout: a black-holed backend (its SYNs dropped) with
// --backend-timeout 1s: each dial fails after a second, is counted and
// logged at warn level, and the client's connection is closed.
func TestE2EBackendTimeout(t *testing.T) {
	l := newLab(t, 83, false)
	sh(t, "ip", "netns", "exec", l.proxy, "nft", "add table inet blackhole { chain out { type filter hook output priority 0; tcp dport 8089 drop; }; }")
	metrics := l.proxyIP + ":9100"
	d := startDaemon(t, l.proxy, "--port", "8080", "--backend", l.proxyIP+":8089", "--workers", "1", "--queue", "183",
		"--metrics", metrics, "--backend-timeout", "1s")
	var clients []net.Conn
	for range 3 {
		c := connectFrom(t, l.client, l.proxyIP+":8080")
		io.WriteString(c, "hello")
		clients = append(clients, c)
	}
	for i, c := range clients {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("client %d of a black-holed backend: %v, want its connection closed", i, err)
		}
	}
	eventually(t, "three dial failures", func() bool {
		return scrape(t, l.proxy, metrics)[`synproxy_lite_backend_dial_failures_total{reason="timeout"}`] >= 3
	})
	m := scrape(t, l.proxy, metrics)
	if m["synproxy_lite_connections_open"] != 0 || m["synproxy_lite_backend_dials_in_flight"] != 0 {
		t.Errorf("open %v, dials in flight %v; want 0, 0", m["synproxy_lite_connections_open"],
			m["synproxy_lite_backend_dials_in_flight"])
	}
	if out := d.out.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "backend dial failed") ||
		!strings.Contains(out, "timeout") {
		t.Errorf("no warning of the failed dials:\n%s", out)
	}
}
