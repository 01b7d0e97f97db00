package main

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The fail-open tests: a connection that the kernel let through to the
// backend while the daemon could not take it (dead, or its queue full)
// keeps working once the daemon reads its queue again.

// exchangeWait bounds one echo round trip. It is generous: a loaded machine
// slows the round trip down, a connection the rules break never completes
// it.
const exchangeWait = 20 * time.Second

// exchange sends msg on c and reads it back.
func exchange(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(exchangeWait))
	defer c.SetDeadline(time.Time{})
	sent := make(chan error, 1)
	go func() { _, err := io.WriteString(c, msg); sent <- err }()
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	if serr := <-sent; serr != nil {
		t.Fatalf("send %d bytes: %v", len(msg), serr)
	}
	if err != nil {
		t.Fatalf("echo of %d bytes on the same connection: %v", len(msg), err)
	}
	if string(buf) != msg {
		t.Fatalf("echo of %d bytes differs", len(msg))
	}
}

// dialEcho connects from the client namespace to the protected port and
// checks one round trip.
func dialEcho(t *testing.T, l *lab, what string) net.Conn {
	t.Helper()
	c, err := dialIn(l.client)(t.Context(), "tcp", l.proxyIP+":8080")
	if err != nil {
		t.Fatalf("%s: connect: %v", what, err)
	}
	t.Cleanup(func() { c.Close() })
	exchange(t, c, what+"\n")
	return c
}

// failOpenDaemon starts an echo backend and the daemon with --fail-open in
// lab l, and checks a connection through the daemon.
func failOpenDaemon(t *testing.T, l *lab, queue int) (*daemonProc, []string) {
	t.Helper()
	startEcho(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	args := []string{"--port", "8080", "--backend", l.proxyIP + ":8081", "--workers", "1",
		"--queue", strconv.Itoa(queue), "--fail-open"}
	d := startDaemon(t, l.proxy, args...)
	c := dialEcho(t, l, "through-the-daemon")
	c.Close()
	return d, args
}

// bypassed returns the SYNs the failopen nat chain sent to the backend.
func bypassed(t *testing.T, l *lab) int {
	t.Helper()
	out := sh(t, "ip", "netns", "exec", l.proxy, "nft", "list", "chain", "inet", "synproxy_lite", "failopen")
	_, rest, ok := strings.Cut(out, "counter packets ")
	if !ok {
		t.Fatalf("no counter in the failopen chain:\n%s", out)
	}
	n, err := strconv.Atoi(strings.Fields(rest)[0])
	if err != nil {
		t.Fatalf("failopen counter: %v\n%s", err, out)
	}
	return n
}

// TestE2EFailOpenKillKeepsFlow: a connection made through the bypass while
// the daemon was dead goes on working after the daemon restarts.
func TestE2EFailOpenKillKeepsFlow(t *testing.T) {
	l := newLab(t, 110, false)
	d, args := failOpenDaemon(t, l, 150)
	d.cmd.Process.Kill()
	d.cmd.Wait()
	c := dialEcho(t, l, "daemon-dead")
	if n := bypassed(t, l); n == 0 {
		t.Fatal("the connection made while the daemon was dead did not go through the failopen chain")
	}
	startDaemon(t, l.proxy, args...)
	exchange(t, c, "daemon-restarted\n")
	exchange(t, c, strings.Repeat("x", 200<<10)) // more than a window's worth
	// New connections are protected again.
	dialEcho(t, l, "new-after-restart")
}

// TestE2EFailOpenQueueFullKeepsFlow: a connection the kernel let through
// because the daemon's queue was full goes on working once the daemon reads
// the queue again. The daemon is stopped (SIGSTOP) so that it reads nothing,
// and a SYN flood fills its queue.
func TestE2EFailOpenQueueFullKeepsFlow(t *testing.T) {
	l := newLab(t, 111, true)
	// Spoofed sources live in 10.99.112.0/24, routed back to the attacker.
	sh(t, "ip", "-n", l.proxy, "route", "add", "10.99.112.0/24", "via", l.attackIP)
	d, _ := failOpenDaemon(t, l, 151)
	pid := d.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	t.Cleanup(func() {
		if stopped {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	mac := strings.Fields(sh(t, "ip", "-n", l.proxy, "-br", "link", "show", "br0"))[2]
	synCfg := fmt.Sprintf("{ eth(da=%s), ipv4(saddr=10.99.112.1, daddr=%s, ttl=64), tcp(sp=drnd(), dp=8080, seq=drnd(), syn, window=1024), }\n",
		mac, l.proxyIP)
	// The queue holds 4096 packets (fewer when the daemon's socket buffer
	// fills first); flood until the kernel lets SYNs through, a bounded
	// number of rounds.
	for round := 0; bypassed(t, l) == 0; round++ {
		if round == 10 {
			t.Fatalf("%d flood SYNs and the queue never overflowed (%v packets wait at it)",
				round*5000, nfqueueColumns(t, l.proxy, 2, 3))
		}
		trafgen(t, l, synCfg, 5000)
	}
	t.Logf("queue full: %v packets wait, %d SYNs let through", nfqueueColumns(t, l.proxy, 2, 3), bypassed(t, l))
	c := dialEcho(t, l, "queue-full")
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	exchange(t, c, "daemon-reads-again\n")
	exchange(t, c, strings.Repeat("y", 200<<10))
	// The daemon worked through the flood and protects new connections.
	dialEcho(t, l, "new-after-flood")
}
