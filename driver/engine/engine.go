package engine

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/monotonic"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// Handshake is a client's proven handshake, as the engine hands it over: the
// type driver/handoff materialises. Its Payload (data that rode on the ACK)
// is valid only during the Handoff call; the engine gives the ACK back to the
// kernel after a successful handoff, so the new socket sees that data again
// and a Handoff need not queue it.
type Handshake = handoff.Handshake

// Handoff turns a proven handshake into a connection. It is called on the
// worker that received the ACK and must return promptly: the kernel socket
// must exist when it returns (the ACK is then given to the kernel), and any
// slow work (dialling a backend) belongs in another goroutine.
type Handoff interface {
	Handoff(h *Handshake) error
}

// HandoffFunc adapts a function to Handoff.
type HandoffFunc func(h *Handshake) error

// Handoff implements Handoff.
func (f HandoffFunc) Handoff(h *Handshake) error { return f(h) }

// Config configures an Engine. Port, Ring and Handoff are required.
type Config struct {
	// Port is the protected TCP port.
	Port uint16
	// Ring makes and checks the cookies.
	Ring *cookie.Ring
	// Profile is the cookie layout (see profile.go): cookie.ProfileLinux,
	// the zero value, keeps window scale and SACK only for clients that
	// send timestamps; cookie.ProfileFull keeps them in the ISN for every
	// client.
	Profile cookie.Profile
	// Handoff receives every proven handshake.
	Handoff Handoff
	// Rule4 and Rule6 are the synproxy rules for IPv4 and IPv6 clients:
	// the options the SYN-ACK offers (MSS, window scale, timestamp,
	// SACK-permitted) and its TTL or hop limit, as an nft synproxy
	// statement spells them. The handed-over connection keeps what the
	// rule allowed: window scaling and SACK only when the rule has them
	// (under the Linux profile they need timestamps, which carry them
	// through the cookie; the full profile carries them in the ISN). A rule
	// without an MSS option (HasMSS false) sends none; TTL 0 means
	// packet.DefaultTTL. ECN is refused: a handed-over socket cannot carry
	// it. Nil means DefaultRule(false) and DefaultRule(true).
	Rule4, Rule6 *packet.Rule
	// SYNACKRetries is how often a SYN-ACK is sent again, after 1, 2, 4, ...
	// seconds, while no valid ACK for it arrived: it recovers a handshake
	// whose ACK was lost when the client waits for the server to speak
	// first (a Linux client answers the repeated SYN-ACK with an ACK that
	// carries the cookie). The pending SYN-ACKs sit in a fixed table per
	// worker (PendingSlots entries): a flood overwrites it, memory stays
	// flat. Re-sends are bounded by ResendMaxSYNRate. Zero means 3;
	// negative disables re-sending.
	SYNACKRetries int
	// PendingSlots is the size of each worker's table of SYN-ACKs that may
	// be re-sent. Zero means 1024.
	PendingSlots int
	// ResendMaxSYNRate bounds what a spoofed SYN can reflect: a worker
	// re-sends SYN-ACKs only while it receives at most this many SYNs a
	// second (in the current second and the one before); above it every
	// SYN is answered exactly once, and the SYN-ACKs pending from such a
	// second are never re-sent. While re-sending, a worker sends at most
	// 64 re-sent SYN-ACKs per quarter of a second. Zero means 1000.
	ResendMaxSYNRate int
	// FlowSlots is the size of each worker's memory of the connections it
	// handed over (see docs/handoff.md, "One handshake, one connection"):
	// a segment of a remembered connection is never checked as a cookie
	// again. A connection is remembered for ten minutes after the last
	// segment the worker saw of it, or until a fuller table reuses its
	// slot for a newer one. Zero means 16384 (56 bytes each).
	FlowSlots int
	// Logger receives start/stop and error summaries, never one line per
	// packet. Nil means slog.Default().
	Logger *slog.Logger
	// Policy is the protection policy (see Policy): per-source limits,
	// the reflection budget, monitor and on-demand modes. Nil means
	// ModeProtect without limits.
	Policy *Policy
	// Tap says the driver taps packets below netfilter (afpacket): the
	// kernel has its own copy of every packet the rules let through, so
	// a packet the engine lets be is dropped (not given back), and the
	// allow and deny lists are the engine's to honour (Policy.Allow,
	// Policy.Deny).
	Tap bool
}

// DefaultRule returns the rule a nil Config.Rule4 (v6 false) or Rule6 (v6
// true) means: mss 1460 (IPv4) or 1440 (IPv6), wscale 7, timestamp,
// sack-perm, TTL 64.
func DefaultRule(v6 bool) packet.Rule {
	r := packet.Rule{MSS: 1460, HasMSS: true, WScale: 7, HasWScale: true, Timestamp: true, SACKPerm: true,
		TTL: packet.DefaultTTL}
	if v6 {
		r.MSS = 1440
	}
	return r
}

// SYNACKWindow is the window of the engine's SYN-ACKs. The kernel's
// synproxy announces 0, because it connects to the server only after the
// ACK and cannot take data before. The engine makes the socket the moment
// the cookie is proven, so it lets the client send at once: a client whose
// handshake ACK is lost (a full queue under a flood) then proves the cookie
// with its first data segment, which carries the ACK's sequence numbers.
// Against a zero window such a client would send nothing but zero-window
// probes, whose sequence number is one below the ACK's, so that no cookie
// check can tell them from an ACK with another ISN: it would hang. Like
// every SYN window it is not scaled.
const SYNACKWindow = 65535

// Engine is the SYN proxy's packet engine.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	drv  driver.Driver
	ctrs Counters
	// rule4 and rule6 are the SYN-ACK rules for IPv4 and IPv6 clients.
	rule4, rule6 packet.Rule
	// seed keys the hash of the workers' flow tables, so that nobody
	// outside can aim at one slot.
	seed    [2]uint64
	wg      sync.WaitGroup
	workers []*worker
	pol     *policy
}

// New returns an engine running on d's queues once Run is called.
func New(d driver.Driver, cfg *Config) (*Engine, error) {
	if cfg == nil || cfg.Port == 0 || cfg.Ring == nil || cfg.Handoff == nil {
		return nil, errors.New("engine: needs Port, Ring and Handoff")
	}
	if cfg.Profile != cookie.ProfileLinux && cfg.Profile != cookie.ProfileFull {
		return nil, errors.New("engine: unknown cookie profile")
	}
	c := *cfg
	e := &Engine{drv: d, rule4: DefaultRule(false), rule6: DefaultRule(true), seed: newSeed()}
	if c.Rule4 != nil {
		e.rule4 = *c.Rule4
	}
	if c.Rule6 != nil {
		e.rule6 = *c.Rule6
	}
	c.Rule4, c.Rule6 = &e.rule4, &e.rule6
	for _, r := range []*packet.Rule{&e.rule4, &e.rule6} {
		if r.HasWScale && r.WScale > cookie.MaxWScale {
			return nil, errors.New("engine: window scale above 14")
		}
		if r.ECN {
			return nil, errors.New("engine: a rule with ECN cannot be served (a handed-over socket cannot carry it)")
		}
		if r.TTL == 0 {
			r.TTL = packet.DefaultTTL
		}
	}
	if c.SYNACKRetries == 0 {
		c.SYNACKRetries = 3
	}
	if c.SYNACKRetries > 8 {
		return nil, errors.New("engine: SYNACKRetries above 8")
	}
	if c.PendingSlots <= 0 {
		c.PendingSlots = 1024
	}
	if c.ResendMaxSYNRate <= 0 {
		c.ResendMaxSYNRate = 1000
	}
	if c.FlowSlots <= 0 {
		c.FlowSlots = 16384
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	pol, err := newPolicy(c.Policy, c.Tap, e.seed, c.Logger)
	if err != nil {
		return nil, err
	}
	e.cfg, e.log, e.pol = c, c.Logger, pol
	return e, nil
}

// Counters returns the engine's counters.
func (e *Engine) Counters() *Counters { return &e.ctrs }

// Driver returns the driver the engine runs on.
func (e *Engine) Driver() driver.Driver { return e.drv }

// Run starts one worker per queue, each locked to its OS thread, and blocks
// until ctx is done; then it closes the driver and waits for the workers.
func (e *Engine) Run(ctx context.Context) error {
	qs := e.drv.Queues()
	for i, q := range qs {
		w := newWorker(e, q, i)
		e.workers = append(e.workers, w)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			w.run()
		}()
	}
	e.log.Info("engine started", "driver", e.drv.Name(), "queues", len(qs), "port", e.cfg.Port)
	// Wake idle workers so that SYN-ACKs are re-sent on time.
	tick := time.NewTicker(wakeEvery * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			e.pol.tick(monoMS())
			if e.cfg.SYNACKRetries < 0 {
				continue
			}
			for _, q := range qs {
				if wq, ok := q.(driver.Waker); ok {
					wq.Wake()
				}
			}
		}
	}
	err := e.drv.Close()
	e.wg.Wait()
	e.log.Info("engine stopped", "syn_received", e.ctrs.SYNReceived.Load(),
		"cookie_valid", e.ctrs.CookieValid.Load(), "cookie_invalid", e.ctrs.CookieInvalid.Load())
	return err
}

// pending is a SYN-ACK that may be sent again.
type pending struct {
	tuple cookie.Tuple
	due   int64 // ms; 0: free
	tries uint8
	n     uint8
	pkt   [txSlot]byte
}

type worker struct {
	e                *Engine
	q                driver.Queue
	id               int
	pkts             []driver.Packet
	tx               [][]byte // SYN-ACKs, then re-sent SYN-ACKs, then window updates
	txbuf            []byte
	acks             [][]byte
	ackbuf           []byte
	nSYNACK, nResent int
	seg              segment
	hs               Handshake
	flows            flowTable
	pend             []pending
	// nextScan is when the pending table is next looked at (ms).
	nextScan int64
	nowMS    int64
	nowUS    int64 // the same clock in µs, for the policy's buckets
	// The SYN rate, which decides whether SYN-ACKs are re-sent: the SYNs
	// of the second that began at synWin (ms) and of the second before.
	synWin          int64
	synCur, synPrev int
}

const (
	// txSlot is the room for one SYN-ACK or window update: an Ethernet
	// header with two VLAN tags, 40 IPv6 and 40 TCP fit.
	txSlot    = 128
	wakeEvery = 250 // ms between wake-ups of idle workers
	// resendBudget caps the SYN-ACKs a worker re-sends per scan.
	resendBudget = 64
)

func newWorker(e *Engine, q driver.Queue, id int) *worker {
	b := q.BatchSize()
	w := &worker{e: e, q: q, id: id, pkts: make([]driver.Packet, b), tx: make([][]byte, 0, 2*b+resendBudget),
		txbuf: make([]byte, (b+resendBudget)*txSlot), acks: make([][]byte, 0, b), ackbuf: make([]byte, b*txSlot),
		flows: newFlowTable(e.cfg.FlowSlots, e.seed)}
	if e.cfg.SYNACKRetries > 0 {
		w.pend = make([]pending, e.cfg.PendingSlots)
	}
	return w
}

func (w *worker) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var lastErr time.Time
	for {
		n, err := w.q.ReadBatch(w.pkts)
		if err != nil {
			if errors.Is(err, driver.ErrClosed) {
				return
			}
			if time.Since(lastErr) > 10*time.Second {
				w.e.log.Warn("receive failed", "queue", w.id, "err", err)
				lastErr = time.Now()
			}
			continue
		}
		w.process(n)
		if len(w.tx) > 0 {
			sent, err := w.q.WriteBatch(w.tx)
			c := &w.e.ctrs
			k := min(sent, w.nSYNACK)
			c.SYNACKSent.Add(uint64(k))
			sent -= k
			k = min(sent, w.nResent)
			c.SYNACKResent.Add(uint64(k))
			c.WindowUpdates.Add(uint64(sent - k))
			if err != nil && !errors.Is(err, driver.ErrClosed) {
				w.e.ctrs.TxErrors.Add(uint64(len(w.tx) - sent))
				if time.Since(lastErr) > 10*time.Second {
					w.e.log.Warn("transmit failed", "queue", w.id, "err", err)
					lastErr = time.Now()
				}
			}
		}
		if err := w.q.Release(w.pkts[:n]); err != nil && !errors.Is(err, driver.ErrClosed) && time.Since(lastErr) > 10*time.Second {
			w.e.log.Warn("verdict failed", "queue", w.id, "err", err)
			lastErr = time.Now()
		}
	}
}

// process decides the verdicts of a batch and queues the SYN-ACKs.
func (w *worker) process(n int) {
	now := monotonic.NS()
	w.nowMS = now / 1e6
	w.nowUS = now / 1e3
	if d := w.nowMS - w.synWin; d >= 1000 {
		w.synPrev = w.synCur
		if d >= 2000 {
			w.synPrev = 0
		}
		w.synCur, w.synWin = 0, w.nowMS
	}
	w.tx = w.tx[:0]
	w.acks = w.acks[:0]
	for i := range w.pkts[:n] {
		p := &w.pkts[i]
		p.Verdict = w.handle(p.Data, p.Link)
	}
	w.nSYNACK = len(w.tx)
	if w.pend != nil && w.nowMS >= w.nextScan {
		w.resend()
		w.nextScan = w.nowMS + wakeEvery
	}
	w.nResent = len(w.tx) - w.nSYNACK
	w.tx = append(w.tx, w.acks...)
}

// quiet reports whether the worker's SYN rate allows re-sending: at most
// ResendMaxSYNRate SYNs in the current second and in the one before.
func (w *worker) quiet() bool {
	limit := w.e.cfg.ResendMaxSYNRate
	return w.synCur <= limit && w.synPrev <= limit
}

// resend queues the pending SYN-ACKs that are due, within the budget. Under
// a flood (not quiet) the due ones are forgotten instead: a SYN-ACK that
// was pending during a flood is never sent again, so that each SYN of a
// flood is answered once. A pending SYN-ACK is due at most a second after
// it was last sent and the scan runs every wakeEvery, so the flood's second
// is still the current or the previous one when its SYN-ACKs fall due.
func (w *worker) resend() {
	retries := uint8(w.e.cfg.SYNACKRetries)
	quiet := w.quiet()
	k := 0 // re-send slots of txbuf follow the batch's SYN-ACK slots
	for i := range w.pend {
		p := &w.pend[i]
		if p.due == 0 || p.due > w.nowMS {
			continue
		}
		if !quiet {
			p.due = 0
			continue
		}
		if k == resendBudget {
			return
		}
		if !w.reflectOK(p.tuple.Client.Addr()) {
			p.due = 0
			continue
		}
		off := (w.q.BatchSize() + k) * txSlot
		k++
		w.tx = append(w.tx, append(w.txbuf[off:off], p.pkt[:p.n]...))
		p.tries++
		if p.tries >= retries {
			p.due = 0
		} else {
			p.due = w.nowMS + int64(1000)<<p.tries
		}
	}
}

// remember the SYN-ACK just built, for re-sending, unless the SYN rate
// rules re-sending out.
func (w *worker) pendAdd(t cookie.Tuple, pkt []byte) {
	if w.pend == nil || len(pkt) > txSlot || !w.quiet() {
		return
	}
	p := &w.pend[w.flows.slot(&t, len(w.pend))]
	p.tuple, p.due, p.tries, p.n = t, w.nowMS+1000, 0, uint8(len(pkt))
	copy(p.pkt[:], pkt)
}

// pendDone forgets the SYN-ACK of t: its ACK arrived or the client reset.
func (w *worker) pendDone(t cookie.Tuple) {
	if w.pend == nil {
		return
	}
	if p := &w.pend[w.flows.slot(&t, len(w.pend))]; p.tuple == t {
		p.due = 0
	}
}

// handle decides one packet, b behind a link header of type link.
func (w *worker) handle(b []byte, link driver.Link) driver.Verdict {
	c := &w.e.ctrs
	c.Packets.Add(1)
	s := &w.seg
	if r := s.parse(b, link); r != parseOK {
		c.countMalformed(r)
		return driver.VerdictDrop
	}
	if s.dport != w.e.cfg.Port {
		// Not ours: the rules never queue it, give it back untouched.
		c.Passed.Add(1)
		return driver.VerdictAccept
	}
	if w.e.pol.tap && w.e.pol.listed(s.src) {
		return driver.VerdictDrop // the rules did what the lists say
	}
	t := cookie.Tuple{Client: netip.AddrPortFrom(s.src, s.sport), Server: netip.AddrPortFrom(s.dst, s.dport)}
	switch {
	case s.flags&(flagSYN|flagACK|flagRST|flagFIN) == flagSYN:
		return w.syn(t)
	case s.flags&flagRST != 0:
		// A reset for a connection with no socket: the kernel ignores it.
		w.pendDone(t)
		c.Passed.Add(1)
		return driver.VerdictAccept
	case s.flags&(flagSYN|flagACK) == flagACK:
		return w.ack(t)
	}
	c.Malformed.Add(1)
	c.MalformedFlags.Add(1)
	return driver.VerdictDrop
}

func (w *worker) syn(t cookie.Tuple) driver.Verdict {
	c := &w.e.ctrs
	cfg := &w.e.cfg
	s := &w.seg
	c.SYNReceived.Add(1)
	w.synCur++
	if f := w.flows.find(&t, w.nowMS); f != nil {
		// A new connection on the tuple of one handed over before: its
		// handshake ACK must be checked, not taken for a segment of the
		// old one.
		c.ConnReopened.Add(1)
		f.expires = 0
	}
	if v, done := w.synPolicy(); done {
		return v
	}
	o := w.e.rule(s.v6).Offer(&s.pkt)
	var isn uint32
	var err error
	if cfg.Profile == cookie.ProfileFull {
		isn, err = w.encodeFull(t, &o)
	} else {
		isn, err = cfg.Ring.Encode(t, s.seq, o.CookieMSS)
		if o.Options.HasTS {
			o.Options.TSval = cookie.TSval(uint32(w.nowMS), cookie.TSOptions(o.TS))
		}
	}
	if err != nil {
		c.Malformed.Add(1)
		c.MalformedHeader.Add(1)
		return driver.VerdictDrop
	}
	if !w.reflectOK(s.src) {
		return w.e.limited()
	}
	if w.e.pol.p.Mode == ModeMonitor {
		return w.monitorSYN(t)
	}
	if len(w.tx) < cap(w.tx) {
		i := len(w.tx)
		seg := packet.SYNACK(&s.pkt, isn, &o)
		seg.Window = SYNACKWindow
		pkt, err := packet.AppendReply(w.txbuf[i*txSlot:i*txSlot:(i+1)*txSlot], &s.pkt, &seg)
		if err != nil {
			c.TxErrors.Add(1)
			return driver.VerdictDrop
		}
		w.tx = append(w.tx, pkt)
		w.pendAdd(t, pkt)
	}
	return driver.VerdictDrop
}

// ack decides a segment with ACK and without SYN or RST: the handshake ACK
// of a new connection, or a segment of one that exists or existed.
func (w *worker) ack(t cookie.Tuple) driver.Verdict {
	c := &w.e.ctrs
	cfg := &w.e.cfg
	s := &w.seg
	if w.e.pol.p.Mode == ModeMonitor {
		return w.monitorACK(t)
	}
	if f := w.flows.find(&t, w.nowMS); f != nil {
		f.expires = w.nowMS + flowTTL
		if w.nowMS < f.handed+recentTTL {
			// Queued before its socket existed (or a retransmitted
			// handshake ACK): the socket takes it now.
			c.CookieRetrans.Add(1)
			return driver.VerdictAccept
		}
		// A segment of a connection handed over earlier, which reaches
		// the engine on a driver that taps below netfilter (the kernel
		// has its own copy for the socket) or, on a netfilter queue,
		// once the socket is no longer an ordinary one (TIME_WAIT) or is
		// gone. A FIN is given to the kernel, so that a socket in
		// TIME_WAIT answers it; anything else is left to the kernel's
		// copy or dropped, as the kernel would reset it.
		c.Established.Add(1)
		if s.flags&flagFIN != 0 {
			return driver.VerdictAccept
		}
		return driver.VerdictDrop
	}
	if s.flags&flagFIN != 0 {
		// A handshake ACK never carries a FIN: a FIN ends a connection,
		// it never opens one (whatever its numbers say about the
		// cookie). Of a connection the engine does not know.
		c.Strays.Add(1)
		return driver.VerdictDrop
	}
	var v cookie.Verdict
	var fv cookie.FullVerdict
	var err error
	if cfg.Profile == cookie.ProfileFull {
		fv, v, err = w.checkFull(t)
	} else {
		v, err = cfg.Ring.Check(t, s.seq-1, s.ack-1)
	}
	if err != nil || !v.Valid {
		c.CookieInvalid.Add(1)
		switch {
		case err != nil:
			c.InvalidMalformed.Add(1)
		case v.Reason == cookie.ReasonStale:
			c.InvalidStale.Add(1)
		default:
			c.InvalidHash.Add(1)
		}
		return driver.VerdictDrop
	}
	c.CookieValid.Add(1)
	h := &w.hs
	*h = Handshake{Tuple: t, ClientISN: s.seq - 1, ServerISN: s.ack - 1, MSS: v.MSS,
		Window: s.window, Payload: s.payload}
	rule := w.e.rule(s.v6)
	if cfg.Profile == cookie.ProfileFull {
		w.fullHandshake(h, &fv, rule)
	} else if s.hasTS && rule.Timestamp {
		o := cookie.DecodeTSecr(s.tsecr)
		h.Timestamps, h.TSval, h.TSecr = true, s.tsval, s.tsecr
		h.SACKOK = o.SACK && rule.SACKPerm
		if o.HasWScale && rule.HasWScale {
			h.WScaleOK, h.ClientWScale, h.ServerWScale = true, o.WScale, rule.WScale
		}
	}
	if err := cfg.Handoff.Handoff(h); err != nil {
		if errors.Is(err, handoff.ErrRefused) {
			// At a limit: no socket. Neither remembered nor failed, and
			// the SYN-ACK stays pending: the client's retransmission (or
			// its ACK to the repeated SYN-ACK) is checked again.
			c.countRefused(err)
			w.e.logRefused(err)
			return driver.VerdictDrop
		}
		if errors.Is(err, handoff.ErrExists) {
			// The connection has its socket: this segment is one of
			// it whose numbers pass the check (it has sent as many
			// bytes as it received), or a handshake ACK handed over
			// once already. It goes to that socket; nothing failed.
			c.CookieRetrans.Add(1)
			w.flows.add(&t, w.nowMS, w.nowMS-recentTTL)
			w.pendDone(t)
			return driver.VerdictAccept
		}
		c.HandoffFailed.Add(1)
		w.e.logHandoffErr(err)
		return driver.VerdictDrop
	}
	c.HandedOver.Add(1)
	w.flows.add(&t, w.nowMS, w.nowMS)
	w.pendDone(t)
	// Announce the socket's window, now with the scale in force (the
	// SYN-ACK's window is unscaled), as the kernel's synproxy opens its
	// zero window once the backend answered.
	if len(w.acks) < cap(w.acks) {
		window := uint16(0xffff)
		if h.WScaleOK {
			window >>= h.ServerWScale
		}
		i := len(w.acks)
		if a := appendACK(w.ackbuf[i*txSlot:i*txSlot:(i+1)*txSlot], s, h.ServerISN+1, h.ClientISN+1, window,
			h.Timestamps, h.TSecr, h.TSval, rule.TTL); a != nil {
			w.acks = append(w.acks, a)
		}
	}
	// Give the ACK to the kernel: the new socket takes it, with any data.
	return driver.VerdictAccept
}

// rule returns the synproxy rule for IPv4 or IPv6 clients.
func (e *Engine) rule(v6 bool) *packet.Rule {
	if v6 {
		return &e.rule6
	}
	return &e.rule4
}

var handoffLogMu sync.Mutex
var handoffLogLast time.Time

func (e *Engine) logHandoffErr(err error) {
	handoffLogMu.Lock()
	defer handoffLogMu.Unlock()
	if time.Since(handoffLogLast) < 5*time.Second {
		return
	}
	handoffLogLast = time.Now()
	e.log.Warn("handoff failed (further failures within 5s are only counted)", "err", err,
		"handoff_failed_total", e.ctrs.HandoffFailed.Load())
}

var refusedLogMu sync.Mutex
var refusedLogLast time.Time

func (e *Engine) logRefused(err error) {
	refusedLogMu.Lock()
	defer refusedLogMu.Unlock()
	if time.Since(refusedLogLast) < 5*time.Second {
		return
	}
	refusedLogLast = time.Now()
	e.log.Warn("handoff refused at a limit; the ACK is dropped, the client's retransmission tries again "+
		"(further refusals within 5s are only counted)", "err", err,
		"handoffs_refused_total", e.ctrs.HandoffRefused.Load())
}
