package driver

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// Handshake is a client's proven handshake, as the engine hands it over.
type Handshake struct {
	// Tuple is the connection: Client is the remote end.
	Tuple cookie.Tuple
	// ClientISN and ServerISN are the initial sequence numbers (the
	// server's is the cookie). The first data byte of each side has ISN+1.
	ClientISN, ServerISN uint32
	// MSS is the MSS the cookie decoded: the client's, rounded down to the
	// cookie table.
	MSS uint16
	// WScaleOK says window scaling was negotiated; ClientWScale is the
	// client's shift, ServerWScale ours (the advertised --wscale).
	WScaleOK                   bool
	ClientWScale, ServerWScale uint8
	// SACKOK says SACK was negotiated.
	SACKOK bool
	// Timestamps says the timestamp option was negotiated; TSval is the
	// client's clock as of the ACK, TSecr our clock (the cookie TSval) it
	// echoes.
	Timestamps   bool
	TSval, TSecr uint32
	// Window is the ACK's raw window field (scale it by ClientWScale).
	Window uint16
	// Payload is data that rode on the ACK. It is valid only during the
	// Handoff call. The engine gives the ACK back to the kernel after a
	// successful handoff, so the new socket receives this data again; a
	// Handoff need not queue it.
	Payload []byte
}

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
	// Handoff receives every proven handshake.
	Handoff Handoff
	// MSS and MSS6 are the MSS advertised to IPv4 and IPv6 clients (the
	// synproxy rule's "mss"). Zero means 1460 and 1440; a negative value
	// (see NoMSS) sends no MSS option.
	MSS, MSS6 int
	// WScale is the window-scale shift advertised (the rule's "wscale"),
	// and WScaleOff disables window scaling. Window scaling, like SACK,
	// needs timestamps (they carry it through the cookie).
	WScale    uint8
	WScaleOff bool
	// NoTimestamp and NoSACK switch the rule's "timestamp" and "sack-perm"
	// off.
	NoTimestamp, NoSACK bool
	// TTL is the IPv4 TTL and IPv6 hop limit of the SYN-ACKs. Zero means 64.
	TTL uint8
	// Logger receives start/stop and error summaries, never one line per
	// packet. Nil means slog.Default().
	Logger *slog.Logger
}

// NoMSS as Config.MSS or MSS6 sends SYN-ACKs without an MSS option.
const NoMSS = -1

// Engine is the SYN proxy's packet engine.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	drv     Driver
	ctrs    Counters
	wg      sync.WaitGroup
	workers []*worker
}

// New returns an engine running on d's queues once Run is called.
func New(d Driver, cfg *Config) (*Engine, error) {
	if cfg == nil || cfg.Port == 0 || cfg.Ring == nil || cfg.Handoff == nil {
		return nil, errors.New("driver: engine needs Port, Ring and Handoff")
	}
	c := *cfg
	if c.MSS == 0 {
		c.MSS = 1460
	}
	if c.MSS6 == 0 {
		c.MSS6 = 1440
	}
	if c.MSS > 0xffff || c.MSS6 > 0xffff {
		return nil, errors.New("driver: MSS out of range")
	}
	if c.WScale > cookie.MaxWScale {
		return nil, errors.New("driver: window scale above 14")
	}
	if c.TTL == 0 {
		c.TTL = 64
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return &Engine{cfg: c, log: c.Logger, drv: d}, nil
}

// Counters returns the engine's counters.
func (e *Engine) Counters() *Counters { return &e.ctrs }

// Driver returns the driver the engine runs on.
func (e *Engine) Driver() Driver { return e.drv }

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
	<-ctx.Done()
	err := e.drv.Close()
	e.wg.Wait()
	e.log.Info("engine stopped", "syn_received", e.ctrs.SYNReceived.Load(),
		"cookie_valid", e.ctrs.CookieValid.Load(), "cookie_invalid", e.ctrs.CookieInvalid.Load())
	return err
}

const recentSlots = 4096

// recent remembers the tuples handed over in the last few seconds, so that
// segments of a connection that were queued before its socket existed go to
// that socket instead of being handed over twice.
type recent struct {
	tuple   cookie.Tuple
	expires int64
}

type worker struct {
	e      *Engine
	q      Queue
	id     int
	pkts   []Packet
	tx     [][]byte
	txbuf  []byte
	seg    segment
	hs     Handshake
	recent []recent
	nowMS  int64
}

const txSlot = 128 // bytes per SYN-ACK: 40 IPv6 + 40 TCP fits

func newWorker(e *Engine, q Queue, id int) *worker {
	b := q.BatchSize()
	return &worker{e: e, q: q, id: id, pkts: make([]Packet, b), tx: make([][]byte, 0, b),
		txbuf: make([]byte, b*txSlot), recent: make([]recent, recentSlots)}
}

func (w *worker) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var lastErr time.Time
	for {
		n, err := w.q.ReadBatch(w.pkts)
		if err != nil {
			if errors.Is(err, ErrClosed) {
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
			w.e.ctrs.SYNACKSent.Add(uint64(sent))
			if err != nil {
				w.e.ctrs.TxErrors.Add(uint64(len(w.tx) - sent))
				if time.Since(lastErr) > 10*time.Second {
					w.e.log.Warn("transmit failed", "queue", w.id, "err", err)
					lastErr = time.Now()
				}
			}
		}
		if err := w.q.Release(w.pkts[:n]); err != nil && time.Since(lastErr) > 10*time.Second {
			w.e.log.Warn("verdict failed", "queue", w.id, "err", err)
			lastErr = time.Now()
		}
	}
}

// process decides the verdicts of a batch and queues the SYN-ACKs.
func (w *worker) process(n int) {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	w.nowMS = ts.Nano() / 1e6
	w.tx = w.tx[:0]
	for i := range w.pkts[:n] {
		w.pkts[i].Verdict = w.handle(w.pkts[i].Data)
	}
}

// handle decides one packet.
func (w *worker) handle(b []byte) Verdict {
	c := &w.e.ctrs
	c.Packets.Add(1)
	s := &w.seg
	if r := s.parse(b); r != parseOK {
		c.countMalformed(r)
		return VerdictDrop
	}
	if s.dport != w.e.cfg.Port {
		// Not ours: the rules never queue it, give it back untouched.
		c.Passed.Add(1)
		return VerdictAccept
	}
	t := cookie.Tuple{Client: netip.AddrPortFrom(s.src, s.sport), Server: netip.AddrPortFrom(s.dst, s.dport)}
	switch {
	case s.flags&(flagSYN|flagACK|flagRST|flagFIN) == flagSYN:
		return w.syn(t)
	case s.flags&flagRST != 0:
		// A reset for a connection with no socket: the kernel ignores it.
		c.Passed.Add(1)
		return VerdictAccept
	case s.flags&(flagSYN|flagACK) == flagACK:
		return w.ack(t)
	}
	c.Malformed.Add(1)
	c.MalformedFlags.Add(1)
	return VerdictDrop
}

func (w *worker) syn(t cookie.Tuple) Verdict {
	c := &w.e.ctrs
	cfg := &w.e.cfg
	s := &w.seg
	c.SYNReceived.Add(1)
	if w.lookup(t) {
		c.ConnReopened.Add(1)
	}
	var mssEnc uint16
	if s.hasMSS {
		mssEnc = s.mss
	}
	isn, err := cfg.Ring.Encode(t, s.seq, mssEnc)
	if err != nil {
		c.Malformed.Add(1)
		c.MalformedHeader.Add(1)
		return VerdictDrop
	}
	var o synackOpts
	adv := cfg.MSS
	if s.v6 {
		adv = cfg.MSS6
	}
	if s.hasMSS && adv > 0 {
		o.mss = uint16(adv)
	}
	if s.hasTS && !cfg.NoTimestamp {
		wsOK := s.hasWS && !cfg.WScaleOff
		o.ts = true
		o.sack = s.sackOK && !cfg.NoSACK
		o.ws = wsOK
		o.wscale = cfg.WScale
		o.tsval = cookie.TSval(uint32(w.nowMS), cookie.TSOptions{WScale: s.wscale, HasWScale: wsOK, SACK: o.sack})
		o.tsecr = s.tsval
	}
	if len(w.tx) < cap(w.tx) {
		i := len(w.tx)
		pkt := appendSYNACK(w.txbuf[i*txSlot:(i+1)*txSlot], s, isn, &o, cfg.TTL)
		w.tx = append(w.tx, pkt)
	}
	return VerdictDrop
}

func (w *worker) ack(t cookie.Tuple) Verdict {
	c := &w.e.ctrs
	cfg := &w.e.cfg
	s := &w.seg
	if w.lookup(t) {
		// Queued before its socket existed (or a retransmitted handshake
		// ACK): the socket takes it now.
		c.CookieRetrans.Add(1)
		return VerdictAccept
	}
	v, err := cfg.Ring.Check(t, s.seq-1, s.ack-1)
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
		return VerdictDrop
	}
	c.CookieValid.Add(1)
	h := &w.hs
	*h = Handshake{Tuple: t, ClientISN: s.seq - 1, ServerISN: s.ack - 1, MSS: v.MSS,
		Window: s.window, Payload: s.payload}
	if s.hasTS && !cfg.NoTimestamp {
		o := cookie.DecodeTSecr(s.tsecr)
		h.Timestamps, h.TSval, h.TSecr = true, s.tsval, s.tsecr
		h.SACKOK = o.SACK && !cfg.NoSACK
		if o.HasWScale && !cfg.WScaleOff {
			h.WScaleOK, h.ClientWScale, h.ServerWScale = true, o.WScale, cfg.WScale
		}
	}
	if err := cfg.Handoff.Handoff(h); err != nil {
		c.HandoffFailed.Add(1)
		w.e.logHandoffErr(err)
		return VerdictDrop
	}
	c.HandedOver.Add(1)
	w.remember(t)
	// Give the ACK to the kernel: the new socket takes it, with any data.
	return VerdictAccept
}

func slot(t *cookie.Tuple) int {
	a := t.Client.Addr().As16()
	h := uint32(2166136261)
	for _, x := range a {
		h = (h ^ uint32(x)) * 16777619
	}
	h = (h ^ uint32(t.Client.Port())) * 16777619
	h = (h ^ uint32(t.Server.Port())) * 16777619
	return int(h % recentSlots)
}

const recentTTL = 5000 // ms

func (w *worker) lookup(t cookie.Tuple) bool {
	r := &w.recent[slot(&t)]
	return r.tuple == t && r.expires > w.nowMS
}

func (w *worker) remember(t cookie.Tuple) {
	w.recent[slot(&t)] = recent{tuple: t, expires: w.nowMS + recentTTL}
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
