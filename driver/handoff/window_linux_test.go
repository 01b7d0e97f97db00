package handoff_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// TestWindowUpdate: the SYN-ACK announces a zero window, as SYN proxies do,
// and the client writes at once. With the window update the client never
// needs a zero-window probe; without it (NoWindowUpdate) it must probe
// before its data can go, which shows what the update is for.
func TestWindowUpdate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		noUpdate bool
	}{{"update", false}, {"no-update", true}} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t)
			plan := synAckPlan{isn: rand.Uint32(), mss: 1460, ws: 7, win: 0}
			client, srv, _ := kernelHandshake(t, n, n.srv4, plan, &handoff.Config{Mark: mark, NoWindowUpdate: tc.noUpdate})
			deadline := time.Now().Add(20 * time.Second)
			client.SetDeadline(deadline)
			srv.SetDeadline(deadline)
			req := []byte("GET / HTTP/1.0\r\n\r\n")
			if _, err := client.Write(req); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(req))
			if _, err := io.ReadFull(srv, got); err != nil || !bytes.Equal(got, req) {
				t.Fatalf("server read %q, %v", got, err)
			}
			probes := netstat(t, n.cli, "TCPWinProbe")
			if tc.noUpdate && probes == 0 {
				t.Errorf("without the window update the client sent no zero-window probe")
			}
			if !tc.noUpdate && probes != 0 {
				t.Errorf("with the window update the client still sent %d zero-window probes", probes)
			}
			t.Logf("client zero-window probes: %d", probes)
		})
	}
}

// TestClientMSS: the server socket never sends segments larger than the
// MSS of the handshake.
func TestClientMSS(t *testing.T) {
	n := newTestNet(t)
	// The client announces MSS 1200 (TCP_MAXSEG before connect); the
	// handshake carries it on.
	tp := openTap(t, n.srv, "veth0")
	dch := make(chan net.Conn, 1)
	go func() {
		var c net.Conn
		n.cli.Do(func() (err error) {
			d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 1200) })
			}}
			c, err = d.Dial("tcp", "10.99.1.2:8080")
			return err
		})
		dch <- c
	}()
	plan := synAckPlan{isn: rand.Uint32(), mss: 1460, ws: 7}
	syn_, synack, err := answerSYN(tp, n.srv, plan)
	if err != nil {
		t.Fatal(err)
	}
	if syn_.mss != 1200 {
		t.Fatalf("client announced MSS %d", syn_.mss)
	}
	ack_, err := tp.next(5*time.Second, func(s seg) bool { return s.src == syn_.src && s.flags&(syn|ack) == ack })
	if err != nil {
		t.Fatal(err)
	}
	h := handshakeOf(syn_, synack, ack_)
	var srv *net.TCPConn
	if err := n.srv.Do(func() (err error) { srv, err = handoff.Materialise(&h, &handoff.Config{Mark: mark}); return }); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client := <-dch
	if client == nil {
		t.Fatal("client did not connect")
	}
	defer client.Close()
	srv.SetDeadline(time.Now().Add(20 * time.Second))
	client.SetDeadline(time.Now().Add(20 * time.Second))
	// Capture what the server sends while it sends 1 MB.
	out := stream(3, 1<<20)
	go func() { srv.Write(out); srv.CloseWrite() }()
	if b, err := io.ReadAll(client); err != nil || !bytes.Equal(b, out) {
		t.Fatalf("client read %d bytes, %v", len(b), err)
	}
	if si := infoOf(t, srv); si.sndMSS > 1200 {
		t.Errorf("server socket snd_mss %d above the client's MSS 1200", si.sndMSS)
	}
	if ci := infoOf(t, client.(*net.TCPConn)); ci.rcvMSS > 1200 {
		t.Errorf("client saw segments of %d bytes, above its MSS 1200", ci.rcvMSS)
	}
}

// TestMaterialiseErrors: a handshake handed off twice fails with ErrExists
// and leaves the first socket working; a server address that is not local
// fails at bind with the step named.
func TestMaterialiseErrors(t *testing.T) {
	n := newTestNet(t)
	plan := synAckPlan{isn: rand.Uint32(), mss: 1460, ws: 7}
	client, srv, h := kernelHandshake(t, n, n.srv6, plan, &handoff.Config{Mark: mark})
	err := n.srv.Do(func() error {
		c, err := handoff.Materialise(&h, &handoff.Config{Mark: mark})
		if err == nil {
			c.Close()
		}
		return err
	})
	if !errors.Is(err, handoff.ErrExists) {
		t.Errorf("second Materialise of the same handshake: %v", err)
	}
	client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := srv.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 10)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "still here" {
		t.Errorf("first connection after the failed second: %q, %v", got, err)
	}

	fds := openFDs(t)
	h2 := h
	h2.Tuple.Server = netip.AddrPortFrom(netip.MustParseAddr("fd00:99:1::99"), port)
	var oe *handoff.OpError
	err = n.srv.Do(func() error { _, err := handoff.Materialise(&h2, &handoff.Config{NoWindowUpdate: true}); return err })
	if !errors.As(err, &oe) || !strings.HasPrefix(oe.Op, "bind ") || !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("non-local server address: %v", err)
	}
	err = n.srv.Do(func() error { _, err := handoff.Materialise(&h2, nil); return err })
	if !errors.As(err, &oe) || !strings.Contains(oe.Op, "raw socket") {
		t.Errorf("non-local server address, with the window update: %v", err)
	}
	if now := openFDs(t); now != fds {
		t.Errorf("failed handoffs leaked file descriptors: %d before, %d after", fds, now)
	}
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestTimeWaitReuse: the server side of a handed-off connection closes
// first and stays in TIME_WAIT; the client opens a new connection from the
// same port. The second handoff of the tuple must succeed (the TIME_WAIT
// socket is replaced, as the kernel's listener would replace it for a new
// SYN) and carry data, with and without the client's timestamps (without
// them a repair-mode connect alone fails with EADDRNOTAVAIL), IPv4 and
// IPv6.
func TestTimeWaitReuse(t *testing.T) {
	n := newTestNet(t)
	// Listeners on the port, as in the daemon's namespace: the bind bucket
	// then has other owners, which is what sends the repair connect down
	// the path that cannot reuse a TIME_WAIT socket without timestamps.
	for _, a := range []netip.Addr{n.srv4, n.srv6} {
		ln, err := n.srv.Listen("tcp", netip.AddrPortFrom(a, port).String())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
	}
	for i, tc := range []struct {
		name string
		noTS bool
		v6   bool
	}{{"ipv4/timestamps", false, false}, {"ipv4/no-timestamps", true, false}, {"ipv6/no-timestamps", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			clientOpts{noTS: tc.noTS}.apply(t, n.cli)
			server := n.srv4
			if tc.v6 {
				server = n.srv6
			}
			localPort := uint16(40000 + 1000*i + rand.IntN(1000))
			var tuple handoff.Handshake
			for round := range 2 {
				plan := synAckPlan{isn: rand.Uint32(), mss: 1460, ws: 7}
				client, srv, h := kernelHandshakeFrom(t, n, server, localPort, plan, &handoff.Config{Mark: mark})
				if round == 1 && h.Tuple != tuple.Tuple {
					t.Fatalf("second connection on %v, want the first one's %v", h.Tuple, tuple.Tuple)
				}
				tuple = h
				client.SetDeadline(time.Now().Add(20 * time.Second))
				srv.SetDeadline(time.Now().Add(20 * time.Second))
				msg := fmt.Sprintf("round %d", round)
				if _, err := srv.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(client, got); err != nil || string(got) != msg {
					t.Fatalf("round %d: client read %q, %v", round, got, err)
				}
				// The server closes first and so keeps the TIME_WAIT.
				srv.Close()
				if _, err := client.Read(got); err != io.EOF {
					t.Fatalf("round %d: client after the server's FIN: %v", round, err)
				}
				client.Close()
				if round == 0 && !hasTimeWait(t, n, h) {
					t.Fatalf("no TIME_WAIT socket on the server side for %v", h.Tuple)
				}
			}
		})
	}
}

// hasTimeWait waits briefly for the server side of h to reach TIME_WAIT.
func hasTimeWait(t *testing.T, n *testNet, h handoff.Handshake) bool {
	t.Helper()
	for range 100 {
		out, err := n.srv.CombinedOutput(context.Background(), "ss", "-Htn", "state", "time-wait",
			"src", h.Tuple.Server.String(), "dst", h.Tuple.Client.String())
		if err != nil {
			t.Fatalf("ss: %v %s", err, out)
		}
		if len(bytes.TrimSpace(out)) > 0 {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
