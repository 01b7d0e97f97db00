package bgp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Peer is a BGP neighbour the Speaker connects to.
type Peer struct {
	// Addr is the peer's address; Port its BGP port (0 means 179).
	Addr netip.Addr
	Port uint16
	// ASN is the peer's AS number; its OPEN must carry it. 0 accepts any
	// (an AS other than the Speaker's: sessions are external).
	ASN uint32
	// LocalAddr, if valid, is the address the session is opened from.
	LocalAddr netip.Addr
}

func (p Peer) String() string {
	port := p.Port
	if port == 0 {
		port = 179
	}
	return netip.AddrPortFrom(p.Addr, port).String()
}

// Config configures a Speaker. A nil *Config is not valid: ASN, RouterID
// and Peers are required.
type Config struct {
	// ASN is the Speaker's AS number (four octets allowed).
	ASN uint32
	// RouterID is the Speaker's BGP identifier, an IPv4 address unique
	// among the peer's neighbours.
	RouterID netip.Addr
	// Peers are the neighbours the prefixes are announced to.
	Peers []Peer
	// Prefixes are announced while the Speaker is ready: typically the
	// service's /32 and /128, held on the node's loopback.
	Prefixes []netip.Prefix
	// NextHop is the next hop of the IPv4 prefixes. The zero value means
	// the session's own address when the session runs over IPv4.
	NextHop netip.Addr
	// NextHop6 is the next hop of the IPv6 prefixes. The zero value means
	// the session's own address when the session runs over IPv6; with an
	// IPv4 session, IPv6 prefixes are not announced without it.
	NextHop6 netip.Addr
	// Communities are attached to every announcement (RFC 1997: AS in the
	// high 16 bits, value in the low 16).
	Communities []uint32
	// HoldTime is the hold time offered in OPEN; the session uses the
	// smaller of both sides'. Zero means 90 s; it is at least 3 s.
	HoldTime time.Duration
	// ConnectRetry is the wait between two attempts to open a session.
	// Zero means 5 s.
	ConnectRetry time.Duration
	// GracefulRestart, if positive, is the restart time sent in the
	// graceful restart capability (RFC 4724): a peer that supports it
	// keeps the routes, marked stale, for that long after the session
	// closes without a NOTIFICATION (Detach, or the process dying), until
	// a new session sends them again. Zero sends no capability: the peer
	// withdraws the routes as soon as the session ends.
	GracefulRestart time.Duration
	// Ready, if set, is asked every CheckInterval whether the node can
	// serve: the prefixes are announced while it says yes and withdrawn
	// while it says no (why is logged). Nil means always ready.
	Ready func() (ready bool, why string)
	// CheckInterval is how often Ready is asked. Zero means 1 s.
	CheckInterval time.Duration
	// Logger receives session and announcement events (never one per
	// message). Nil means slog.Default().
	Logger *slog.Logger
}

// State is a session's state (RFC 4271 section 8; Active is folded into
// Connect, since the Speaker does not listen).
type State int32

// Session states.
const (
	StateIdle State = iota
	StateConnect
	StateOpenSent
	StateOpenConfirm
	StateEstablished
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateConnect:
		return "connect"
	case StateOpenSent:
		return "opensent"
	case StateOpenConfirm:
		return "openconfirm"
	case StateEstablished:
		return "established"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// PeerStatus is one session as Status reports it.
type PeerStatus struct {
	Peer      Peer
	State     State
	Announced bool // the prefixes are announced on this session now
}

// Status is the Speaker's state for metrics and readiness.
type Status struct {
	// Ready is the last answer of Config.Ready, false after Withdraw.
	Ready bool
	// Why is the reason given with the last "not ready".
	Why   string
	Peers []PeerStatus
}

// String summarises st in one line, for a readiness endpoint or a log:
// "ready; 10.0.0.1:179 established announced", or "not ready (why); ...".
func (st Status) String() string {
	var b strings.Builder
	if st.Ready {
		b.WriteString("ready")
	} else {
		b.WriteString("not ready")
		if st.Why != "" {
			b.WriteString(" (" + st.Why + ")")
		}
	}
	for i, p := range st.Peers {
		if i == 0 {
			b.WriteString("; ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(p.Peer.String() + " " + p.State.String())
		if p.Announced {
			b.WriteString(" announced")
		}
	}
	return b.String()
}

// Speaker announces a node's prefixes to its peers while the node is
// ready. Its methods are safe for concurrent use.
type Speaker struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	ready     bool
	why       string
	withdrawn bool // Withdraw was called
	sessions  []*session

	ctx    context.Context
	cancel context.CancelFunc
	mode   atomic.Int32 // how sessions end: modeCease or modeDetach
	wg     sync.WaitGroup
	once   sync.Once
}

const (
	modeCease = iota
	modeDetach
)

type session struct {
	peer      Peer
	state     atomic.Int32
	announced atomic.Bool
	kick      chan struct{}
}

// ErrConfig is returned by New for an invalid Config; the message says
// which field.
var ErrConfig = errors.New("bgp: invalid configuration")

// New checks cfg and returns a Speaker that has not started.
func New(cfg *Config) (*Speaker, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: nil", ErrConfig)
	}
	c := *cfg
	bad := func(format string, a ...any) (*Speaker, error) {
		return nil, fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.ASN == 0 || c.ASN == ASTrans:
		return bad("AS number %d", c.ASN)
	case !c.RouterID.Is4() || c.RouterID.IsUnspecified():
		return bad("router ID %v is not an IPv4 address", c.RouterID)
	case len(c.Peers) == 0:
		return bad("no peers")
	case c.HoldTime != 0 && c.HoldTime < 3*time.Second || c.HoldTime > 65535*time.Second:
		return bad("hold time %v (3s-65535s)", c.HoldTime)
	case c.GracefulRestart < 0 || c.GracefulRestart > 4095*time.Second:
		return bad("graceful restart time %v (0-4095s)", c.GracefulRestart)
	case c.NextHop.IsValid() && !c.NextHop.Is4():
		return bad("IPv4 next hop %v", c.NextHop)
	case c.NextHop6.IsValid() && (!c.NextHop6.Is6() || c.NextHop6.Is4In6()):
		return bad("IPv6 next hop %v", c.NextHop6)
	}
	for _, p := range c.Peers {
		if !p.Addr.IsValid() {
			return bad("peer without an address")
		}
		if p.ASN == c.ASN {
			return bad("peer %v is in the Speaker's own AS %d: only external sessions are supported", p, p.ASN)
		}
	}
	for _, p := range c.Prefixes {
		if !p.IsValid() || p.Addr().Is4In6() || p != p.Masked() {
			return bad("prefix %v", p)
		}
	}
	if c.HoldTime == 0 {
		c.HoldTime = 90 * time.Second
	}
	if c.ConnectRetry <= 0 {
		c.ConnectRetry = 5 * time.Second
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	s := &Speaker{cfg: c, log: c.Logger}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, p := range c.Peers {
		s.sessions = append(s.sessions, &session{peer: p, kick: make(chan struct{}, 1)})
	}
	return s, nil
}

// Start asks Ready once, then opens the sessions and watches Ready in the
// background until Close or Detach.
func (s *Speaker) Start() {
	s.check()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.cfg.CheckInterval)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
				s.check()
			}
		}
	}()
	for _, ss := range s.sessions {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runSession(ss)
		}()
	}
}

// check asks Ready and, when the answer changes, has every session
// announce or withdraw.
func (s *Speaker) check() {
	ready, why := true, ""
	if s.cfg.Ready != nil {
		ready, why = s.cfg.Ready()
	}
	s.mu.Lock()
	if s.withdrawn {
		s.mu.Unlock()
		return
	}
	changed := ready != s.ready || why != s.why
	was := s.ready
	s.ready, s.why = ready, why
	s.mu.Unlock()
	if !changed {
		return
	}
	switch {
	case ready && !was:
		s.log.Info("bgp: ready, announcing", "prefixes", s.cfg.Prefixes)
	case !ready && was:
		s.log.Warn("bgp: not ready, withdrawing", "why", why, "prefixes", s.cfg.Prefixes)
	case !ready:
		s.log.Warn("bgp: not ready", "why", why)
	}
	s.kickAll()
}

func (s *Speaker) kickAll() {
	for _, ss := range s.sessions {
		select {
		case ss.kick <- struct{}{}:
		default:
		}
	}
}

// wanted reports whether the prefixes should be announced now.
func (s *Speaker) wanted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready && !s.withdrawn
}

// Withdraw withdraws the prefixes from every peer for good (a daemon
// about to drain) and waits until each established session has sent the
// withdrawal, or ctx ends. The sessions stay up.
func (s *Speaker) Withdraw(ctx context.Context) error {
	s.mu.Lock()
	first := !s.withdrawn
	s.withdrawn, s.ready, s.why = true, false, "withdrawn"
	s.mu.Unlock()
	if first {
		s.log.Info("bgp: withdrawing", "prefixes", s.cfg.Prefixes)
	}
	s.kickAll()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		pending := false
		for _, ss := range s.sessions {
			if ss.announced.Load() && State(ss.state.Load()) == StateEstablished {
				pending = true
			}
		}
		if !pending {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close ends the sessions with a NOTIFICATION (Cease, administrative
// shutdown), after which the peers withdraw the routes, and waits for the
// Speaker's goroutines. It is idempotent.
func (s *Speaker) Close() error {
	s.stop(modeCease)
	return nil
}

// Detach closes the sessions without a NOTIFICATION and waits for the
// Speaker's goroutines: a peer told of graceful restart keeps the routes
// for the restart time, until a new Speaker (a new process) announces
// them again. Without GracefulRestart it is the same as Close, less the
// NOTIFICATION.
func (s *Speaker) Detach() {
	s.stop(modeDetach)
}

func (s *Speaker) stop(mode int32) {
	s.once.Do(func() {
		s.mode.Store(mode)
		s.cancel()
	})
	s.wg.Wait()
}

// Status returns the readiness and the sessions' states.
func (s *Speaker) Status() Status {
	s.mu.Lock()
	st := Status{Ready: s.ready && !s.withdrawn, Why: s.why}
	s.mu.Unlock()
	for _, ss := range s.sessions {
		st.Peers = append(st.Peers, PeerStatus{Peer: ss.peer, State: State(ss.state.Load()),
			Announced: ss.announced.Load()})
	}
	return st
}

func (s *Speaker) runSession(ss *session) {
	for {
		err := s.session(ss)
		up := State(ss.state.Load()) == StateEstablished
		ss.state.Store(int32(StateIdle))
		ss.announced.Store(false)
		if s.ctx.Err() != nil {
			if up {
				s.log.Info("bgp: session closed", "peer", ss.peer.String())
			}
			return
		}
		if up {
			s.log.Warn("bgp: session down", "peer", ss.peer.String(), "err", err)
		} else {
			s.log.Debug("bgp: cannot open session", "peer", ss.peer.String(), "err", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.cfg.ConnectRetry):
		}
	}
}

type msg struct {
	typ  uint8
	body []byte
}

// readMessages reads messages from r until it fails; the error is the
// last thing sent.
func readMessages(r io.Reader, out chan<- msg, errc chan<- error, done <-chan struct{}) {
	buf := make([]byte, 0, 2*MaxMessage)
	tmp := make([]byte, MaxMessage)
	for {
		typ, body, n, err := ParseMessage(buf)
		if err == nil {
			m := msg{typ, append([]byte(nil), body...)}
			buf = buf[:copy(buf, buf[n:])]
			select {
			case out <- m:
				continue
			case <-done:
				return
			}
		}
		if err != ErrShort {
			errc <- err
			return
		}
		k, err := r.Read(tmp)
		buf = append(buf, tmp[:k]...)
		if err != nil {
			errc <- err
			return
		}
	}
}

// session runs one connection to the peer until it fails or the Speaker
// stops.
func (s *Speaker) session(ss *session) (err error) {
	ss.state.Store(int32(StateConnect))
	d := net.Dialer{Timeout: max(s.cfg.ConnectRetry, 3*time.Second)}
	if ss.peer.LocalAddr.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: ss.peer.LocalAddr.AsSlice()}
	}
	conn, err := d.DialContext(s.ctx, "tcp", ss.peer.String())
	if err != nil {
		return err
	}
	defer conn.Close()
	local, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	localAddr := local.Addr().Unmap()
	write := func(b []byte) error {
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := conn.Write(b)
		return err
	}
	notify := func(code, sub uint8) {
		write(AppendNotification(nil, &Notification{Code: code, Subcode: sub}))
	}
	open := &Open{ASN: s.cfg.ASN, HoldTime: uint16(s.cfg.HoldTime / time.Second), RouterID: s.cfg.RouterID}
	has4, has6 := false, false
	for _, p := range s.cfg.Prefixes {
		has4, has6 = has4 || p.Addr().Is4(), has6 || p.Addr().Is6()
	}
	if has4 || !has6 {
		open.Capabilities = append(open.Capabilities, Capability{CapMultiprotocol, []byte{0, AFIIPv4, 0, SAFIUnicast}})
	}
	if has6 {
		open.Capabilities = append(open.Capabilities, Capability{CapMultiprotocol, []byte{0, AFIIPv6, 0, SAFIUnicast}})
	}
	open.Capabilities = append(open.Capabilities, Capability{CapFourOctetAS, binary.BigEndian.AppendUint32(nil, s.cfg.ASN)})
	if gr := s.cfg.GracefulRestart; gr > 0 {
		// Restart state bit set: after a restart the peer must not wait
		// for our End-of-RIB before advertising its own (we learn none).
		t := uint16(gr/time.Second) | 0x8000
		v := []byte{byte(t >> 8), byte(t)}
		for _, f := range open.Families() {
			v = append(v, byte(f[0]>>8), byte(f[0]), byte(f[1]), 0x80) // forwarding state preserved
		}
		open.Capabilities = append(open.Capabilities, Capability{CapGracefulRestart, v})
	}
	b, err := AppendOpen(nil, open)
	if err != nil {
		return err
	}
	if err := write(b); err != nil {
		return err
	}
	ss.state.Store(int32(StateOpenSent))

	msgs, errc, done := make(chan msg), make(chan error, 1), make(chan struct{})
	defer close(done)
	go readMessages(conn, msgs, errc, done)
	hold := time.NewTimer(4 * time.Minute) // RFC 4271's large value until OPEN
	defer hold.Stop()
	var holdTime time.Duration
	var keep <-chan time.Time
	var families map[[2]uint16]bool
	// endOfRIB sends the End-of-RIB marker of each family (RFC 4724
	// section 2) once, after the first announcement: a peer that keeps
	// this node's routes as stale through a graceful restart drops them
	// at End-of-RIB, so a new process that is not ready yet must not
	// send it (the peer drops them at the restart time if it never is).
	eorSent := false
	endOfRIB := func() error {
		if eorSent || !ss.announced.Load() {
			return nil
		}
		eorSent = true
		if families[[2]uint16{AFIIPv4, SAFIUnicast}] {
			b, _ := AppendUpdate(nil, &Update{})
			if err := write(b); err != nil {
				return err
			}
		}
		if families[[2]uint16{AFIIPv6, SAFIUnicast}] && has6 {
			b, _ := AppendUpdate(nil, &Update{EndOfRIB6: true})
			if err := write(b); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		select {
		case <-s.ctx.Done():
			if s.mode.Load() == modeCease {
				notify(ErrCodeCease, CeaseAdminShutdown)
			}
			return s.ctx.Err()
		case err := <-errc:
			var pe *ParseError
			if errors.As(err, &pe) {
				notify(pe.Code, pe.Subcode)
			}
			return err
		case <-hold.C:
			notify(ErrCodeHoldTimer, 0)
			return errors.New("bgp: hold timer expired")
		case <-keep:
			if err := write(AppendKeepalive(nil)); err != nil {
				return err
			}
		case <-ss.kick:
			if State(ss.state.Load()) == StateEstablished {
				if err := s.sync(ss, write, localAddr, families); err != nil {
					return err
				}
				if err := endOfRIB(); err != nil {
					return err
				}
			}
		case m := <-msgs:
			if holdTime > 0 {
				hold.Reset(holdTime)
			}
			st := State(ss.state.Load())
			switch {
			case m.typ == TypeNotification:
				n, err := ParseNotification(m.body)
				if err != nil {
					return err
				}
				return n
			case m.typ == TypeOpen && st == StateOpenSent:
				po, err := ParseOpen(m.body)
				if err != nil {
					var pe *ParseError
					if errors.As(err, &pe) {
						notify(pe.Code, pe.Subcode)
					}
					return err
				}
				if ss.peer.ASN != 0 && po.ASN != ss.peer.ASN || po.ASN == s.cfg.ASN {
					notify(ErrCodeOpen, 2)
					return fmt.Errorf("bgp: peer %v says it is AS %d", ss.peer, po.ASN)
				}
				if _, ok := po.Capability(CapFourOctetAS); !ok {
					notify(ErrCodeOpen, 7)
					return fmt.Errorf("bgp: peer %v lacks the four-octet AS capability", ss.peer)
				}
				families = map[[2]uint16]bool{}
				for _, f := range po.Families() {
					families[f] = true
				}
				holdTime = min(s.cfg.HoldTime, time.Duration(po.HoldTime)*time.Second)
				if holdTime > 0 {
					hold.Reset(holdTime)
					tk := time.NewTicker(holdTime / 3)
					defer tk.Stop()
					keep = tk.C
				} else {
					hold.Stop()
				}
				if err := write(AppendKeepalive(nil)); err != nil {
					return err
				}
				ss.state.Store(int32(StateOpenConfirm))
			case m.typ == TypeKeepalive && st == StateOpenConfirm:
				ss.state.Store(int32(StateEstablished))
				s.log.Info("bgp: session established", "peer", ss.peer.String(), "hold_time", holdTime,
					"ipv6", families[[2]uint16{AFIIPv6, SAFIUnicast}])
				if err := s.sync(ss, write, localAddr, families); err != nil {
					return err
				}
				if err := endOfRIB(); err != nil {
					return err
				}
			case m.typ == TypeKeepalive && st == StateEstablished:
			case m.typ == TypeUpdate && st == StateEstablished:
				if _, err := ParseUpdate(m.body); err != nil {
					var pe *ParseError
					if errors.As(err, &pe) {
						notify(pe.Code, pe.Subcode)
					}
					return err
				}
			default:
				notify(ErrCodeFSM, 0)
				return fmt.Errorf("bgp: message type %d in state %v", m.typ, st)
			}
		}
	}
}

// sync sends the UPDATE that makes the session's announcement what
// wanted says, if it is not already.
func (s *Speaker) sync(ss *session, write func([]byte) error, local netip.Addr, families map[[2]uint16]bool) error {
	want := s.wanted()
	if want == ss.announced.Load() {
		return nil
	}
	u := &Update{ASPath: []uint32{s.cfg.ASN}, Communities: s.cfg.Communities,
		NextHop: s.cfg.NextHop, NextHop6: s.cfg.NextHop6}
	if !u.NextHop.IsValid() && local.Is4() {
		u.NextHop = local
	}
	if !u.NextHop6.IsValid() && local.Is6() {
		u.NextHop6 = local
	}
	var v4, v6 []netip.Prefix
	for _, p := range s.cfg.Prefixes {
		switch {
		case p.Addr().Is4() && families[[2]uint16{AFIIPv4, SAFIUnicast}] && u.NextHop.IsValid():
			v4 = append(v4, p)
		case p.Addr().Is6() && families[[2]uint16{AFIIPv6, SAFIUnicast}] && u.NextHop6.IsValid():
			v6 = append(v6, p)
		}
	}
	if want {
		u.NLRI, u.Reach6 = v4, v6
	} else {
		u = &Update{Withdrawn: v4, Unreach6: v6}
	}
	if len(v4)+len(v6) > 0 {
		b, err := AppendUpdate(nil, u)
		if err != nil {
			return err
		}
		if err := write(b); err != nil {
			return err
		}
	}
	ss.announced.Store(want)
	what := "withdrawn"
	if want {
		what = "announced"
	}
	s.log.Info("bgp: "+what, "peer", ss.peer.String(), "ipv4", v4, "ipv6", v6)
	return nil
}
