package bgp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakePeer is the router side of one session, written with the package's
// own parser: it answers OPEN with OPEN and KEEPALIVE and hands every
// later message to the test.
type fakePeer struct {
	ln   net.Listener
	conn net.Conn
	open *Open
	msgs chan msg
}

func newFakePeer(t *testing.T) *fakePeer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakePeer{ln: ln, msgs: make(chan msg, 64)}
}

func (p *fakePeer) peer() Peer {
	ap := netip.MustParseAddrPort(p.ln.Addr().String())
	return Peer{Addr: ap.Addr(), Port: ap.Port(), ASN: 65000}
}

func (p *fakePeer) accept(t *testing.T, hold uint16) {
	t.Helper()
	c, err := p.ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p.conn = c
	errc := make(chan error, 1)
	go readMessages(c, p.msgs, errc, make(chan struct{}))
	m := p.next(t)
	if m.typ != TypeOpen {
		t.Fatalf("first message of type %d", m.typ)
	}
	if p.open, err = ParseOpen(m.body); err != nil {
		t.Fatal(err)
	}
	b, _ := AppendOpen(nil, &Open{ASN: 65000, HoldTime: hold, RouterID: netip.MustParseAddr("10.99.160.254"),
		Capabilities: []Capability{{CapMultiprotocol, []byte{0, 1, 0, 1}}, {CapMultiprotocol, []byte{0, 2, 0, 1}},
			{CapFourOctetAS, []byte{0, 0, 0xfd, 0xe8}}}})
	c.Write(append(b, AppendKeepalive(nil)...))
	if m := p.next(t); m.typ != TypeKeepalive {
		t.Fatalf("message of type %d, want KEEPALIVE", m.typ)
	}
}

// next returns the next message that is not a KEEPALIVE sent while
// established (the test's hold times are long).
func (p *fakePeer) next(t *testing.T) msg {
	t.Helper()
	select {
	case m := <-p.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message from the speaker")
	}
	return msg{}
}

func (p *fakePeer) update(t *testing.T) *Update {
	t.Helper()
	m := p.next(t)
	if m.typ != TypeUpdate {
		t.Fatalf("message of type %d, want UPDATE", m.typ)
	}
	u, err := ParseUpdate(m.body)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSpeakerAnnounceWithdraw(t *testing.T) {
	p := newFakePeer(t)
	var ready atomic.Bool
	ready.Store(true)
	s, err := New(&Config{ASN: 65001, RouterID: netip.MustParseAddr("10.99.161.11"), Peers: []Peer{p.peer()},
		Prefixes: pfx("10.99.175.1/32", "fd00:99:af::1/128"), NextHop6: netip.MustParseAddr("fd00:99:a1::11"),
		Communities: []uint32{65001<<16 | 7}, HoldTime: 30 * time.Second, CheckInterval: 5 * time.Millisecond,
		GracefulRestart: 60 * time.Second,
		Ready:           func() (bool, string) { return ready.Load(), "backend unreachable" },
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	p.accept(t, 9)
	if p.open.ASN != 65001 || p.open.HoldTime != 30 || len(p.open.Families()) != 2 {
		t.Errorf("OPEN: %+v", p.open)
	}
	if gr, ok := p.open.Capability(CapGracefulRestart); !ok || len(gr) != 2+2*4 || int(gr[0]&0x0f)<<8|int(gr[1]) != 60 {
		t.Errorf("graceful restart capability %x", gr)
	}
	u := p.update(t)
	if len(u.NLRI) != 1 || len(u.Reach6) != 1 || u.NextHop != netip.MustParseAddr("127.0.0.1") ||
		u.NextHop6 != netip.MustParseAddr("fd00:99:a1::11") || len(u.ASPath) != 1 || u.ASPath[0] != 65001 ||
		len(u.Communities) != 1 {
		t.Errorf("announcement %+v", u)
	}
	if u := p.update(t); len(u.NLRI)+len(u.Withdrawn)+len(u.Reach6) != 0 {
		t.Errorf("want the IPv4 End-of-RIB, got %+v", u)
	}
	if u := p.update(t); !u.EndOfRIB6 {
		t.Errorf("want the IPv6 End-of-RIB, got %+v", u)
	}
	st := s.Status()
	if !st.Ready || st.Peers[0].State != StateEstablished || !st.Peers[0].Announced {
		t.Errorf("status %+v", st)
	}
	if got, want := st.String(), "ready; "+p.peer().String()+" established announced"; got != want {
		t.Errorf("Status.String() = %q, want %q", got, want)
	}

	ready.Store(false)
	if u := p.update(t); len(u.Withdrawn) != 1 || len(u.Unreach6) != 1 {
		t.Errorf("withdrawal %+v", u)
	}
	// The session marks the prefixes withdrawn once the UPDATE is written,
	// which may be after the peer read it.
	st = s.Status()
	for deadline := time.Now().Add(5 * time.Second); st.Peers[0].Announced && time.Now().Before(deadline); st = s.Status() {
		time.Sleep(time.Millisecond)
	}
	if st.Ready || st.Why != "backend unreachable" || st.Peers[0].Announced ||
		!strings.HasPrefix(st.String(), "not ready (backend unreachable); ") {
		t.Errorf("status %+v: %s", st, st)
	}
	ready.Store(true)
	if u := p.update(t); len(u.NLRI) != 1 {
		t.Errorf("announcement again %+v", u)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	if u := p.update(t); len(u.Withdrawn) != 1 {
		t.Errorf("withdrawal %+v", u)
	}
	ready.Store(true) // Withdraw is for good
	time.Sleep(20 * time.Millisecond)
	if st := s.Status(); st.Ready || st.Peers[0].Announced {
		t.Errorf("announced after Withdraw: %+v", st)
	}
	s.Close()
	m := p.next(t)
	n, err := ParseNotification(m.body)
	if m.typ != TypeNotification || err != nil || n.Code != ErrCodeCease || n.Subcode != CeaseAdminShutdown {
		t.Errorf("Close sent type %d %+v, want Cease", m.typ, n)
	}
}

// Detach closes the session without a NOTIFICATION; a peer that stops
// answering is dropped at the hold time and the speaker reconnects.
func TestSpeakerDetachAndHoldTimer(t *testing.T) {
	p := newFakePeer(t)
	s, err := New(&Config{ASN: 4200000001, RouterID: netip.MustParseAddr("10.99.161.11"), Peers: []Peer{p.peer()},
		Prefixes: pfx("10.99.175.1/32"), HoldTime: 3 * time.Second, ConnectRetry: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	p.accept(t, 3)
	if p.open.ASN != 4200000001 {
		t.Errorf("four-octet AS %d", p.open.ASN)
	}
	p.update(t) // the announcement
	// Say nothing: the speaker's hold timer (3 s) expires.
	deadline := time.After(10 * time.Second)
	for hold := false; !hold; {
		select {
		case m := <-p.msgs:
			if m.typ == TypeNotification {
				n, _ := ParseNotification(m.body)
				if n.Code != ErrCodeHoldTimer {
					t.Fatalf("notification %+v, want hold timer expired", n)
				}
				hold = true
			}
		case <-deadline:
			t.Fatal("the hold timer did not expire")
		}
	}
	p.accept(t, 90) // it comes back
	if u := p.update(t); len(u.NLRI) != 1 {
		t.Errorf("announcement %+v", u)
	}
	s.Detach()
	for {
		select {
		case m := <-p.msgs:
			if m.typ == TypeNotification {
				t.Fatal("Detach sent a NOTIFICATION")
			}
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && err == nil {
		t.Errorf("the connection is still open: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	ok := Config{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"), Peers: []Peer{{Addr: netip.MustParseAddr("10.0.0.2"), ASN: 65000}}}
	for _, tt := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no AS", func(c *Config) { c.ASN = 0 }},
		{"IPv6 router ID", func(c *Config) { c.RouterID = netip.MustParseAddr("::1") }},
		{"no peers", func(c *Config) { c.Peers = nil }},
		{"internal peer", func(c *Config) { c.Peers[0].ASN = 65001 }},
		{"hold time 2s", func(c *Config) { c.HoldTime = 2 * time.Second }},
		{"host bits", func(c *Config) { c.Prefixes = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")} }},
		{"IPv6 next hop for IPv4", func(c *Config) { c.NextHop = netip.MustParseAddr("fd00::1") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Peers = append([]Peer(nil), ok.Peers...)
			tt.mod(&c)
			if _, err := New(&c); !errors.Is(err, ErrConfig) {
				t.Errorf("New: %v, want ErrConfig", err)
			}
		})
	}
	if _, err := New(&ok); err != nil {
		t.Error(err)
	}
}

// A Speaker that is not ready when its session opens sends nothing, not
// even End-of-RIB (which would make a peer drop routes it keeps through a
// graceful restart), until it is ready.
func TestSpeakerEndOfRIBWaitsForReady(t *testing.T) {
	p := newFakePeer(t)
	var ready atomic.Bool
	s, err := New(&Config{ASN: 65001, RouterID: netip.MustParseAddr("10.99.161.11"), Peers: []Peer{p.peer()},
		Prefixes: pfx("10.99.175.1/32"), CheckInterval: 5 * time.Millisecond,
		Ready:  func() (bool, string) { return ready.Load(), "engine not running" },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()
	p.accept(t, 90)
	select {
	case m := <-p.msgs:
		t.Fatalf("message of type %d before the speaker was ready", m.typ)
	case <-time.After(100 * time.Millisecond):
	}
	ready.Store(true)
	if u := p.update(t); len(u.NLRI) != 1 {
		t.Errorf("announcement %+v", u)
	}
	if u := p.update(t); len(u.NLRI)+len(u.Withdrawn) != 0 || u.EndOfRIB6 {
		t.Errorf("want the IPv4 End-of-RIB, got %+v", u)
	}
}
