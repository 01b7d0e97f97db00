package handoff_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// The limit tests wait for conditions with generous deadlines and assert
// counts, never durations, so a slow or loaded machine only makes them
// slower.

const limitsBackend = "127.0.0.1:8082"

// echoBackend serves an echo on limitsBackend in the server namespace and
// counts the connections it saw end.
type echoBackend struct {
	accepted, ended atomic.Int64
}

func startEcho(t *testing.T, n *testNet) *echoBackend {
	t.Helper()
	ln, err := n.srv.Listen("tcp", limitsBackend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	e := &echoBackend{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.accepted.Add(1)
			go func() {
				defer c.Close()
				io.Copy(c, c)
				e.ended.Add(1)
			}()
		}
	}()
	return e
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connect dials the port of server from the client namespace; the dial
// completes with the test proxy's SYN-ACK, whatever the handoff does.
func connect(t *testing.T, n *testNet, server netip.Addr) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := n.cli.DialContext(ctx, "tcp", netip.AddrPortFrom(server, port).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoes sends b and reads it back, within a minute.
func echoes(c net.Conn, b string) error {
	c.SetDeadline(time.Now().Add(time.Minute))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, b); err != nil {
		return err
	}
	got := make([]byte, len(b))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != b {
		return errors.New("echo mismatch: " + string(got))
	}
	return nil
}

// startProxy runs a Proxy with limits in front of the echo backend.
func startProxy(t *testing.T, n *testNet, lim *handoff.Limits, dial func(context.Context, string, string) (net.Conn, error)) (*handoff.Proxy, *synProxy) {
	t.Helper()
	if dial == nil {
		dial = n.srv.DialContext
	}
	px := &handoff.Proxy{Backend: limitsBackend, Config: &handoff.Config{Mark: mark}, Dial: dial, Limits: lim,
		Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	p := runSynProxy(ctx, t, n, px.Handoff)
	t.Cleanup(func() { px.Close(); cancel(); <-p.done; p.check(t) })
	return px, p
}

// TestProxyMaxConns: at MaxConns open connections the next handoff is
// refused (no socket), and its client's retransmission gets in once a
// connection closed. Both sockets carry keepalive and TCP_USER_TIMEOUT.
func TestProxyMaxConns(t *testing.T) {
	n := newTestNet(t)
	be := startEcho(t, n)
	var backends []net.Conn
	var mu sync.Mutex
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := n.srv.DialContext(ctx, network, addr)
		if err == nil {
			mu.Lock()
			backends = append(backends, c)
			mu.Unlock()
		}
		return c, err
	}
	px, p := startProxy(t, n, &handoff.Limits{MaxConns: 2}, dial)
	c1, c2 := connect(t, n, n.srv4), connect(t, n, n.srv6)
	for _, c := range []net.Conn{c1, c2} {
		if err := echoes(c, "open"); err != nil {
			t.Fatal(err)
		}
	}
	c3 := connect(t, n, n.srv4)
	if _, err := io.WriteString(c3, "third"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the third handoff refused", func() bool { return px.Stats().RefusedMaxConns >= 1 && p.refused.Load() >= 1 })
	if st := px.Stats(); st.Conns != 2 || st.MaxConns != 2 || be.accepted.Load() != 2 || p.handed.Load() != 2 {
		t.Fatalf("at the limit: %+v, backend accepted %d, handed over %d; want 2 open, 2 accepted, 2 handed",
			st, be.accepted.Load(), p.handed.Load())
	}

	// Keepalive and TCP_USER_TIMEOUT on the backend's socket, and the
	// client's (ss shows its keepalive timer).
	mu.Lock()
	rc, _ := backends[0].(*net.TCPConn).SyscallConn()
	mu.Unlock()
	var ka, idle, ut int
	rc.Control(func(fd uintptr) {
		ka, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		idle, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		ut, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	})
	if ka != 1 || idle != 60 || ut != 120000 {
		t.Errorf("backend socket: SO_KEEPALIVE %d, TCP_KEEPIDLE %d, TCP_USER_TIMEOUT %d; want 1, 60, 120000", ka, idle, ut)
	}
	// (A socket with data unacknowledged shows its retransmission timer
	// instead, hence the wait.)
	waitFor(t, "two client sockets with a keepalive timer", func() bool {
		out, err := exec.Command("ip", "netns", "exec", n.srv.Name(), "ss", "-tnoH", "state", "established",
			"( sport = :8080 )").CombinedOutput()
		if err != nil {
			t.Fatalf("ss: %v: %s", err, out)
		}
		return strings.Count(string(out), "timer:(keepalive") == 2
	})

	c1.Close()
	waitFor(t, "the first connection to end", func() bool { return be.ended.Load() >= 1 })
	c3.SetDeadline(time.Now().Add(time.Minute))
	got := make([]byte, 5)
	if _, err := io.ReadFull(c3, got); err != nil || string(got) != "third" {
		t.Fatalf("third connection after room freed: %q, %v", got, err)
	}
	if st := px.Stats(); st.Conns != 2 || st.DialFailures != 0 {
		t.Errorf("after: %+v, want 2 open, no dial failures", st)
	}
}

// TestProxyPerSource: one source at its limit is refused while another
// gets in; once its connection closed, its retransmission gets in.
func TestProxyPerSource(t *testing.T) {
	n := newTestNet(t)
	be := startEcho(t, n)
	px, _ := startProxy(t, n, &handoff.Limits{MaxConnsPerSource: 1}, nil)
	a1 := connect(t, n, n.srv4)
	if err := echoes(a1, "a1"); err != nil {
		t.Fatal(err)
	}
	a2 := connect(t, n, n.srv4)
	if _, err := io.WriteString(a2, "a2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the source's second connection refused", func() bool { return px.Stats().RefusedPerSource >= 1 })
	b1 := connect(t, n, n.srv6) // another source
	if err := echoes(b1, "b1"); err != nil {
		t.Fatalf("another source: %v", err)
	}
	if st := px.Stats(); st.Conns != 2 || st.RefusedMaxConns != 0 {
		t.Fatalf("%+v, want 2 open", st)
	}
	a1.Close()
	waitFor(t, "the first connection to end", func() bool { return be.ended.Load() >= 1 })
	a2.SetDeadline(time.Now().Add(time.Minute))
	got := make([]byte, 2)
	if _, err := io.ReadFull(a2, got); err != nil || string(got) != "a2" {
		t.Fatalf("refused source after room freed: %q, %v", got, err)
	}
}

// TestProxyIdleTimeout: a connection idle both ways is closed (the client
// and the backend see the end of stream); a busy one lives on.
func TestProxyIdleTimeout(t *testing.T) {
	n := newTestNet(t)
	be := startEcho(t, n)
	px, _ := startProxy(t, n, &handoff.Limits{IdleTimeout: 2 * time.Second}, nil)
	idle, busy := connect(t, n, n.srv4), connect(t, n, n.srv6)
	for _, c := range []net.Conn{idle, busy} {
		if err := echoes(c, "hello"); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	busyErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				busyErr <- nil
				return
			case <-time.After(100 * time.Millisecond):
			}
			if err := echoes(busy, "ping"); err != nil {
				busyErr <- err
				return
			}
		}
	}()
	idle.SetReadDeadline(time.Now().Add(time.Minute))
	if b, err := io.ReadAll(idle); err != nil || len(b) != 0 {
		t.Fatalf("idle connection: %q, %v; want the end of stream", b, err)
	}
	waitFor(t, "the backend to see the end", func() bool { return be.ended.Load() >= 1 })
	// The busy one outlives the idle one by more than the timeout.
	time.Sleep(3 * time.Second)
	close(stop)
	if err := <-busyErr; err != nil {
		t.Fatalf("busy connection: %v", err)
	}
	if st := px.Stats(); st.IdleClosed != 1 || st.Conns != 1 || be.ended.Load() != 1 {
		t.Errorf("%+v, backend saw %d end; want 1 closed idle, 1 open", st, be.ended.Load())
	}
}

// TestProxyDialTimeout: a black-holed backend's dials end at DialTimeout,
// each failure counted and logged (rate-limited) at warn level, and dials
// beyond MaxDials are refused until one ended.
func TestProxyDialTimeout(t *testing.T) {
	n := newTestNet(t)
	var dials atomic.Int64
	blackHole := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	var logBuf syncBuffer
	px := &handoff.Proxy{Backend: limitsBackend, Config: &handoff.Config{Mark: mark}, Dial: blackHole,
		Limits: &handoff.Limits{DialTimeout: 500 * time.Millisecond, MaxDials: 1},
		Logger: slog.New(slog.NewTextHandler(&logBuf, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	p := runSynProxy(ctx, t, n, px.Handoff)
	defer func() { px.Close(); cancel(); <-p.done; p.check(t) }()

	start := time.Now()
	c1 := connect(t, n, n.srv4)
	waitFor(t, "the first dial", func() bool { return dials.Load() == 1 })
	c2 := connect(t, n, n.srv6)
	if _, err := io.WriteString(c2, "x"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a handoff refused for the dial in flight", func() bool { return px.Stats().RefusedDials >= 1 })
	c1.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := c1.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client of a failed dial: %v, want its connection closed", err)
	}
	// The second gets its dial once the first ended, and fails too.
	waitFor(t, "two dial failures", func() bool { return px.Stats().DialFailures >= 2 })
	if st := px.Stats(); st.Dials != 0 || st.Conns != 0 || dials.Load() != 2 {
		t.Errorf("%+v after %d dials; want none in flight, none open", st, dials.Load())
	}
	if st := px.Stats(); st.DialFailuresBy != [4]uint64{0, st.DialFailures, 0, 0} || st.ConnectSeconds.Count != 0 ||
		st.HandoffSeconds.Count != 2 || st.Handoffs != 0 {
		t.Errorf("%+v: want every failure a timeout, no connect timed, two handoffs timed, none in flight", st)
	}
	if b := px.BackendState(); b.Reachable(time.Now(), time.Minute) || handoff.DialReason(b.LastErr) != handoff.DialTimeout {
		t.Errorf("backend state %+v after two timeouts", b)
	}
	logs := logBuf.String()
	got := strings.Count(logs, "backend dial failed")
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "reason=timeout") || got < 1 || time.Since(start) < 5*time.Second && got != 1 {
		t.Errorf("dial failures logged %d times in %v, want once at warn within 5s:\n%s", got, time.Since(start), logs)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
