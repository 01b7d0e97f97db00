package handoff

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ErrRefused is what every refusal of Proxy.Handoff wraps: a limit of
// Limits was reached, so no socket was made. The handshake is not lost:
// the client still holds its connection and retransmits (its data, or an
// ACK to a repeated SYN-ACK), and that retransmission passes the cookie
// check again and gets in once there is room. A caller must therefore not
// remember the connection as handed over, nor count it as failed.
var ErrRefused = errors.New("handoff: refused")

// RefusedError is a refusal of Proxy.Handoff; Reason names the limit.
// The refusals are the package's variables ErrMaxConns, ErrPerSource and
// ErrMaxDials, so returning one allocates nothing and errors.Is tells
// them apart.
type RefusedError struct {
	// Reason names the limit, as the label of a metric: "max_conns",
	// "per_source" or "dials".
	Reason string
}

func (e *RefusedError) Error() string { return "handoff: refused: " + e.Reason }

// Unwrap returns ErrRefused.
func (e *RefusedError) Unwrap() error { return ErrRefused }

var (
	// ErrMaxConns refuses a handoff at Limits.MaxConns open connections.
	ErrMaxConns = &RefusedError{Reason: "max_conns"}
	// ErrPerSource refuses a handoff at Limits.MaxConnsPerSource open
	// connections from the client's source prefix.
	ErrPerSource = &RefusedError{Reason: "per_source"}
	// ErrMaxDials refuses a handoff at Limits.MaxDials backend dials in
	// flight (a slow or black-holed backend).
	ErrMaxDials = &RefusedError{Reason: "dials"}
)

// FDsPerConn is what one proxied connection costs in file descriptors:
// the client's socket, the backend's, and the two pipes (two descriptors
// each) that splice(2) moves the bytes of each direction through.
const FDsPerConn = 6

// FDReserve is the number of descriptors DefaultMaxConns leaves to the
// rest of the process: the packet sockets and queues, the nft and metrics
// sockets, the log, a graceful restart's pipes.
const FDReserve = 128

// Limits bound what a Proxy holds, so that clients that complete
// handshakes (two packets each, no state on their side) cannot exhaust the
// process. The zero value of each field means its default.
type Limits struct {
	// MaxConns is how many handed-over connections may be open at once
	// (from Handoff until both sockets are closed; connections taken on by
	// Adopt count too, without being refused). A Handoff beyond it is
	// refused with ErrMaxConns. Zero means DefaultMaxConns(): derived from
	// the descriptor limit, so that the process never reaches EMFILE.
	// Negative means no limit.
	MaxConns int

	// MaxConnsPerSource is how many connections may be open at once from
	// one source: the client addresses that share their first
	// SourcePrefix4 (IPv4) or SourcePrefix6 (IPv6) bits. A Handoff beyond
	// it is refused with ErrPerSource. The counts sit in a table of
	// SourceSlots counters, indexed by a keyed hash of the masked prefix,
	// allocated once: two sources whose prefixes share a slot share its
	// count, so a collision can only refuse a source early (as if it had
	// the other's connections too), never let one exceed the limit. Zero
	// or negative means no limit (and no table): clients behind one NAT
	// share an address.
	MaxConnsPerSource int

	// SourcePrefix4 and SourcePrefix6 are the prefix lengths that make a
	// source: 32 counts every IPv4 address apart, 64 every IPv6 /64 (what
	// one host or one customer usually holds). Zero means 32 and 64.
	SourcePrefix4, SourcePrefix6 int

	// IdleTimeout closes a connection whose both directions moved no data
	// for that long: no byte received or sent on either socket (the
	// kernel's TCP_INFO says when each last did). Zero means none.
	IdleTimeout time.Duration

	// KeepAlive is the idle time after which TCP keepalive probes are
	// sent, on the client's socket and the backend's; the probes are
	// repeated every KeepAlive/4, four times, before the kernel resets a
	// peer that went away. Zero means 60 seconds; negative disables
	// keepalive.
	KeepAlive time.Duration

	// UserTimeout is TCP_USER_TIMEOUT on both sockets: how long data sent
	// may remain unacknowledged (a peer that vanished, or a client that
	// keeps a zero window without answering its probes) before the kernel
	// closes the connection. Zero means 2 minutes; negative leaves the
	// kernel's default (retransmissions for about 15 minutes).
	UserTimeout time.Duration

	// DialTimeout bounds the dial of the backend; a connection whose dial
	// fails is closed (the client sees a reset or the end of stream).
	// Zero means 10 seconds.
	DialTimeout time.Duration

	// MaxDials is how many backend dials may be in flight at once; a
	// Handoff beyond it is refused with ErrMaxDials, so a black-holed
	// backend costs at most MaxDials waiting connections. Zero means 256;
	// negative means no limit.
	MaxDials int
}

// Limit defaults.
const (
	DefaultSourcePrefix4 = 32
	DefaultSourcePrefix6 = 64
	DefaultKeepAlive     = 60 * time.Second
	DefaultUserTimeout   = 2 * time.Minute
	DefaultDialTimeout   = 10 * time.Second
	DefaultMaxDials      = 256
	// SourceSlots is the size of the per-source counting table.
	SourceSlots = 1 << 16
)

// DefaultMaxConns is what a zero Limits.MaxConns means: the descriptors
// the process may open (the soft RLIMIT_NOFILE, which the Go runtime
// raises to the hard limit at start), less FDReserve, divided by
// FDsPerConn; at least 1, at most 1<<20. With the common hard limit of
// 524288 it is 87,360; with 1024 it is 149.
func DefaultMaxConns() int {
	n := (nofile() - FDReserve) / FDsPerConn
	return max(1, min(n, 1<<20))
}

// resolve returns l with its defaults applied.
func (l *Limits) resolve() Limits {
	var r Limits
	if l != nil {
		r = *l
	}
	if r.MaxConns == 0 {
		r.MaxConns = DefaultMaxConns()
	}
	if r.SourcePrefix4 <= 0 || r.SourcePrefix4 > 32 {
		r.SourcePrefix4 = DefaultSourcePrefix4
	}
	if r.SourcePrefix6 <= 0 || r.SourcePrefix6 > 128 {
		r.SourcePrefix6 = DefaultSourcePrefix6
	}
	if r.KeepAlive == 0 {
		r.KeepAlive = DefaultKeepAlive
	}
	if r.UserTimeout == 0 {
		r.UserTimeout = DefaultUserTimeout
	}
	if r.DialTimeout <= 0 {
		r.DialTimeout = DefaultDialTimeout
	}
	if r.MaxDials == 0 {
		r.MaxDials = DefaultMaxDials
	}
	return r
}

// ProxyStats are a Proxy's gauges and counters (Proxy.Stats).
type ProxyStats struct {
	// Conns is the number of connections open now; MaxConns the limit in
	// force (negative: none).
	Conns, MaxConns int
	// Dials is the number of backend dials in flight.
	Dials int
	// Refused counts the refused handoffs by reason.
	RefusedMaxConns, RefusedPerSource, RefusedDials uint64
	// DialFailures counts the backend dials that failed (refused, timed
	// out, unreachable), each of which closed its client connection.
	DialFailures uint64
	// IdleClosed counts the connections closed by Limits.IdleTimeout.
	IdleClosed uint64
	// DialFailuresBy counts the failed dials by reason, indexed as
	// DialReasons (refused, timeout, unreachable, other); they sum to
	// DialFailures.
	DialFailuresBy [4]uint64
	// Handoffs is the number of handoffs in flight: connections being
	// materialised (Materialise) now.
	Handoffs int
	// HandoffSeconds is the time each handoff took to materialise its
	// socket (refused ones excluded), ConnectSeconds the time each
	// successful backend dial took, Probe's included (HandoffBuckets,
	// ConnectBuckets).
	HandoffSeconds, ConnectSeconds HistogramSnapshot
}

// limiter is a Proxy's accounting of its limits. conns, dials and src are
// guarded by the Proxy's mu.
type limiter struct {
	l            Limits // defaults applied
	log          *slog.Logger
	conns, dials int
	src          []uint32 // per-source counts; nil without a per-source limit
	seed         maphash.Seed

	refusedMax, refusedSrc, refusedDials atomic.Uint64
	dialFailures, idleClosed             atomic.Uint64

	logMu   sync.Mutex
	logLast time.Time
	logged  uint64 // dialFailures when logLast was set
}

// hold is what a connection holds of the limits, released when it ends.
type hold struct {
	counted bool  // counted in conns
	slot    int32 // its per-source slot, or -1
	dial    bool  // a dial in flight is counted for it
}

func (m *limiter) init(l *Limits, log *slog.Logger) {
	m.l = l.resolve()
	m.log = log
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.l.MaxConnsPerSource > 0 {
		m.src = make([]uint32, SourceSlots)
		m.seed = maphash.MakeSeed()
	}
}

// sourceSlot is the per-source slot of a client address.
func (m *limiter) sourceSlot(a netip.Addr) int32 {
	a = a.Unmap()
	bits := m.l.SourcePrefix6
	if a.Is4() {
		bits = m.l.SourcePrefix4
	}
	b := a.As16()
	// Mask in place: bits counts from the address's first byte (As16
	// of an IPv4 address puts it in the last 4 bytes).
	start := 0
	if a.Is4() {
		start = 12
	}
	for i := start; i < 16; i++ {
		n := bits - (i-start)*8
		switch {
		case n <= 0:
			b[i] = 0
		case n < 8:
			b[i] &= byte(0xff << (8 - n))
		}
	}
	return int32(maphash.Comparable(m.seed, b) % SourceSlots)
}

// admit checks the limits for a new connection from client and takes its
// share of them. The caller holds the Proxy's mu.
func (m *limiter) admit(client netip.Addr) (hold, error) {
	h := hold{slot: -1}
	if m.l.MaxConns > 0 && m.conns >= m.l.MaxConns {
		m.refusedMax.Add(1)
		return h, ErrMaxConns
	}
	if m.l.MaxDials > 0 && m.dials >= m.l.MaxDials {
		m.refusedDials.Add(1)
		return h, ErrMaxDials
	}
	if m.src != nil {
		h.slot = m.sourceSlot(client)
		if int(m.src[h.slot]) >= m.l.MaxConnsPerSource {
			m.refusedSrc.Add(1)
			return hold{slot: -1}, ErrPerSource
		}
		m.src[h.slot]++
	}
	m.conns++
	m.dials++
	h.counted, h.dial = true, true
	return h, nil
}

// adopt counts a connection taken on from another process: it is open
// whatever the limits say. The caller holds the Proxy's mu.
func (m *limiter) adopt(h *hold, client netip.Addr) {
	h.counted = true
	m.conns++
	h.slot = -1
	if m.src != nil && client.IsValid() {
		h.slot = m.sourceSlot(client)
		m.src[h.slot]++
	}
}

// release gives back what h holds. The caller holds the Proxy's mu.
func (m *limiter) release(h *hold) {
	m.dialDone(h)
	if h.counted {
		m.conns--
		h.counted = false
	}
	if h.slot >= 0 && m.src != nil {
		m.src[h.slot]--
		h.slot = -1
	}
}

// dialDone gives back h's dial in flight. The caller holds the Proxy's mu.
func (m *limiter) dialDone(h *hold) {
	if h.dial {
		m.dials--
		h.dial = false
	}
}

// dialFailed counts a failed backend dial and logs it at warn level, at
// most once every 5 seconds (with the count of those not logged).
func (m *limiter) dialFailed(client netip.AddrPort, err error) {
	n := m.dialFailures.Add(1)
	m.logMu.Lock()
	defer m.logMu.Unlock()
	if !m.logLast.IsZero() && time.Since(m.logLast) < 5*time.Second {
		return
	}
	m.log.Warn("backend dial failed; the client's connection is closed (further failures within 5s are only counted)",
		"client", client.String(), "reason", DialReason(err), "err", err, "failures_since_last_log", n-m.logged, "backend_dial_failures_total", n)
	m.logLast, m.logged = time.Now(), n
}

// dialContext bounds a backend dial by DialTimeout.
func (m *limiter) dialContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.l.DialTimeout)
}

// Stats returns the Proxy's gauges and counters. It can be called at any
// time, from any goroutine.
func (p *Proxy) Stats() ProxyStats {
	p.init()
	p.mu.Lock()
	st := ProxyStats{Conns: p.lim.conns, Dials: p.lim.dials, MaxConns: p.lim.l.MaxConns}
	p.mu.Unlock()
	st.RefusedMaxConns = p.lim.refusedMax.Load()
	st.RefusedPerSource = p.lim.refusedSrc.Load()
	st.RefusedDials = p.lim.refusedDials.Load()
	st.DialFailures = p.lim.dialFailures.Load()
	st.IdleClosed = p.lim.idleClosed.Load()
	for i := range st.DialFailuresBy {
		st.DialFailuresBy[i] = p.obs.byReason[i].Load()
	}
	st.Handoffs = int(max(p.obs.inFlight.Load(), 0))
	st.HandoffSeconds = p.obs.handoffs.Snapshot()
	st.ConnectSeconds = p.obs.connects.Snapshot()
	return st
}

// tune sets keepalive and TCP_USER_TIMEOUT on the sockets of s and starts
// its idle watch; the returned stop ends the watch.
func (m *limiter) tune(s *splice) (stop func()) {
	for _, c := range []net.Conn{s.a, s.b} {
		setTimeouts(c, m.l.KeepAlive, m.l.UserTimeout)
	}
	if m.l.IdleTimeout <= 0 {
		return func() {}
	}
	return m.watchIdle(s)
}

// watchIdle closes s once neither of its sockets moved data for
// IdleTimeout. It looks when the timeout could first have expired, and
// again when it could next, so a busy connection costs one timer wake-up
// per IdleTimeout.
func (m *limiter) watchIdle(s *splice) (stop func()) {
	start := time.Now()
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		idle := time.Since(start)
		s.mu.Lock()
		pausing := s.pausing
		conns := []net.Conn{s.a, s.b}
		s.mu.Unlock()
		for _, c := range conns {
			if d, ok := sinceData(c); ok && d < idle {
				idle = d
			}
		}
		if pausing || idle < m.l.IdleTimeout {
			t.Reset(max(m.l.IdleTimeout-idle, time.Second/10))
			return
		}
		stopped = true
		m.idleClosed.Add(1)
		s.closeBoth()
	}
	mu.Lock()
	t = time.AfterFunc(m.l.IdleTimeout, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
