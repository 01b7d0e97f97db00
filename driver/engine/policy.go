package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dchest/siphash"
)

// The protection policy: per-source SYN limits, the reflection budget,
// monitor and on-demand modes, and (for a driver that taps packets below
// netfilter, where the nft sets cannot keep them away from the engine) the
// allow and deny lists. Everything here is fixed memory made at New and
// atomics on the per-packet path: nothing is allocated per packet.

// Mode is what the engine does with the SYNs it receives.
type Mode uint8

const (
	// ModeProtect answers every SYN with a cookie SYN-ACK (the default).
	ModeProtect Mode = iota
	// ModeMonitor answers nothing and hands nothing over: every packet
	// goes on to the service untouched, while the engine counts what it
	// would have done (SYN-ACKs, cookies accepted and refused, handoffs,
	// limits hit).
	ModeMonitor
	// ModeOnDemand lets SYNs through to the service's own listener until
	// the SYN rate to the port crosses Policy.EngageRate, then answers them
	// with cookies until it has stayed below Policy.ReleaseRate for
	// Policy.Hold.
	ModeOnDemand
)

var modeNames = []string{"protect", "monitor", "on-demand"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// ParseMode parses "protect", "monitor" or "on-demand".
func ParseMode(s string) (Mode, error) {
	if i := slices.Index(modeNames, s); i >= 0 {
		return Mode(i), nil
	}
	return 0, fmt.Errorf("engine: unknown mode %q (protect, monitor or on-demand)", s)
}

// Defaults of Policy.
const (
	// DefaultReflectRate is the reflection budget a daemon runs with
	// unless told otherwise: SYN-ACKs per second towards one source
	// prefix. A flood spoofed from one victim's address makes the proxy
	// send that victim at most this many SYN-ACKs a second (plus the
	// burst), about 75 kB/s of IPv4 SYN-ACKs.
	DefaultReflectRate = 1000
	// DefaultPolicySlots is the number of buckets of each limit's table.
	DefaultPolicySlots = 65536
	// DefaultHold is how long the SYN rate must stay below ReleaseRate
	// before an on-demand engine lets SYNs through again.
	DefaultHold = 10 * time.Second
)

// Policy is the engine's protection policy. The zero Policy (or a nil
// Config.Policy) is ModeProtect without limits.
type Policy struct {
	// Mode is protect, monitor or on-demand.
	Mode Mode

	// SYNRate limits the SYNs of one source prefix (Prefix4, Prefix6) to
	// this many a second, a token bucket of SYNBurst tokens (zero means
	// SYNRate). A SYN over the limit is dropped unanswered and counted.
	// Zero means no limit.
	SYNRate, SYNBurst int

	// ReflectRate limits the SYN-ACKs sent (and re-sent) towards one
	// source prefix to this many a second, a token bucket of ReflectBurst
	// tokens (zero means ReflectRate): the reflection budget. A SYN whose
	// SYN-ACK is over the budget is dropped unanswered and counted. Zero
	// means no budget (the library's default; the daemon's is
	// DefaultReflectRate).
	ReflectRate, ReflectBurst int

	// Prefix4 and Prefix6 are the prefix lengths that make one source for
	// both limits. Zero means 32 and 64: an IPv6 host gets a /64 and can
	// pick any address in it.
	Prefix4, Prefix6 int

	// Slots is the number of buckets of each limit: a hash of the source
	// prefix picks one, so memory is fixed (8 bytes a bucket) whatever the
	// number of sources. Sources that share a bucket share its tokens.
	// Zero means DefaultPolicySlots; it is rounded up to a power of two.
	Slots int

	// EngageRate is the SYN rate (SYNs a second to the port, all
	// sources, as Engine.ObserveSYNs is told) at which an on-demand engine
	// starts answering with cookies.
	// ReleaseRate (zero means EngageRate/2) is the rate it must stay below
	// for Hold (zero means DefaultHold) before it stops.
	EngageRate, ReleaseRate int
	Hold                    time.Duration

	// Allow and Deny are the lists an engine on a driver that taps below
	// netfilter (Config.Tap) consults itself: it leaves the packets of
	// those sources alone (the nft rules let allowed ones through to the
	// service and drop denied ones). On a queueing driver the nft sets keep
	// them away from the engine and these are not consulted.
	Allow, Deny []netip.Prefix
}

// PolicyCounters count what the policy did. Read them at any time.
type PolicyCounters struct {
	SYNLimited     atomic.Uint64 // SYNs dropped over their source's SYN limit
	ReflectLimited atomic.Uint64 // SYNs left unanswered and re-sends skipped: the reflection budget
	ListAllowed    atomic.Uint64 // packets of allowed sources a tap driver showed the engine (left alone)
	ListDenied     atomic.Uint64 // packets of denied sources a tap driver showed the engine (dropped)

	// Monitor mode: what the engine would have done.
	MonitorSYNACKs  atomic.Uint64 // SYN-ACKs it would have sent
	MonitorValid    atomic.Uint64 // handshake ACKs it would have accepted (their SYN was seen)
	MonitorInvalid  atomic.Uint64 // ACKs it would have refused (no SYN seen: no cookie could match)
	MonitorHandoffs atomic.Uint64 // connections it would have handed over

	// On-demand mode.
	Engaged     atomic.Bool   // cookies are engaged now
	Engagements atomic.Uint64 // times cookies engaged
	SYNPassed   atomic.Uint64 // SYNs let through to the service while not engaged
}

// policy is an engine's policy state.
type policy struct {
	p              Policy
	tap            bool
	synLim, reflLm *buckets
	lists          atomic.Pointer[prefixLists]
	ctrs           PolicyCounters

	// On-demand: the SYNs of the current second (all workers), the
	// second's start (ms) and the last time the rate was at or above
	// ReleaseRate (ms).
	odMu     sync.Mutex
	odSYNs   atomic.Int64
	odWin    atomic.Int64
	odAbove  int64
	odLogger *slog.Logger
}

func newPolicy(p *Policy, tap bool, seed [2]uint64, log *slog.Logger) (*policy, error) {
	pol := &policy{tap: tap, odLogger: log}
	if p != nil {
		pol.p = *p
	}
	c := &pol.p
	switch {
	case c.Mode > ModeOnDemand:
		return nil, errors.New("engine: unknown Policy.Mode")
	case c.SYNRate < 0 || c.SYNBurst < 0 || c.ReflectRate < 0 || c.ReflectBurst < 0:
		return nil, errors.New("engine: negative Policy rate or burst")
	case c.Prefix4 < 0 || c.Prefix4 > 32 || c.Prefix6 < 0 || c.Prefix6 > 128:
		return nil, errors.New("engine: Policy.Prefix4 must be 0-32 and Prefix6 0-128")
	case c.Slots < 0 || c.Slots > 1<<24:
		return nil, errors.New("engine: Policy.Slots must be 0-16777216")
	case c.Mode == ModeOnDemand && c.EngageRate <= 0:
		return nil, errors.New("engine: on-demand mode needs Policy.EngageRate")
	case c.ReleaseRate < 0 || c.ReleaseRate > c.EngageRate || c.Hold < 0:
		return nil, errors.New("engine: Policy.ReleaseRate must be 0-EngageRate and Hold not negative")
	}
	if c.Prefix4 == 0 {
		c.Prefix4 = 32
	}
	if c.Prefix6 == 0 {
		c.Prefix6 = 64
	}
	if c.Slots == 0 {
		c.Slots = DefaultPolicySlots
	}
	if c.ReleaseRate == 0 {
		c.ReleaseRate = c.EngageRate / 2
	}
	if c.Hold == 0 {
		c.Hold = DefaultHold
	}
	if c.SYNRate > 0 {
		pol.synLim = newBuckets(c.Slots, c.SYNRate, c.SYNBurst, seed)
	}
	if c.ReflectRate > 0 {
		pol.reflLm = newBuckets(c.Slots, c.ReflectRate, c.ReflectBurst, seed)
	}
	pol.setLists(c.Allow, c.Deny)
	return pol, nil
}

// key is a source's prefix as bytes: the address masked to Prefix4 or
// Prefix6, and the family.
func (pol *policy) key(a netip.Addr) (k [17]byte) {
	bits := pol.p.Prefix4
	if a.Is6() {
		bits, k[16] = pol.p.Prefix6, 6
	}
	b := a.As16()
	if a.Is4() {
		bits += 96
	}
	for i := range 16 {
		switch n := bits - 8*i; {
		case n <= 0:
			b[i] = 0
		case n < 8:
			b[i] &= 0xff << (8 - n)
		}
	}
	copy(k[:16], b[:])
	return k
}

// buckets is a fixed table of token buckets, one per hashed source prefix,
// shared by the workers. Each holds the theoretical arrival time of the
// generic cell rate algorithm (microseconds): a packet conforms when that
// time is at most burst intervals ahead of now, and pushes it one interval
// on. Over any window of T seconds one bucket lets at most burst + rate*T
// packets through, however the workers interleave.
type buckets struct {
	tat      []atomic.Int64
	mask     uint64
	interval int64 // µs per token
	tau      int64 // µs: (burst-1) intervals
	k0, k1   uint64
}

func newBuckets(slots, rate, burst int, seed [2]uint64) *buckets {
	n := 1
	for n < slots {
		n <<= 1
	}
	if burst <= 0 {
		burst = rate
	}
	interval := max(int64(1e6)/int64(rate), 1)
	return &buckets{tat: make([]atomic.Int64, n), mask: uint64(n - 1), interval: interval,
		tau: int64(burst-1) * interval, k0: seed[0] ^ 0x706f6c696379, k1: seed[1]}
}

// take takes a token of k's bucket at nowUS, and reports whether there
// was one.
func (b *buckets) take(k *[17]byte, nowUS int64) bool {
	s := &b.tat[siphash.Hash(b.k0, b.k1, k[:])&b.mask]
	for {
		tat := s.Load()
		t := max(tat, nowUS)
		if t-nowUS > b.tau {
			return false
		}
		if s.CompareAndSwap(tat, t+b.interval) {
			return true
		}
	}
}

// prefixLists are the allow and deny lists as sorted, merged ranges of
// 16-byte addresses (IPv4 mapped), for a binary search that allocates
// nothing.
type prefixLists struct {
	allow, deny [][2][16]byte
}

func toRanges(ps []netip.Prefix) [][2][16]byte {
	var rs [][2][16]byte
	for _, p := range ps {
		p = p.Masked()
		if !p.IsValid() {
			continue
		}
		bits := p.Bits()
		if p.Addr().Is4() {
			bits += 96
		}
		lo := p.Addr().As16()
		hi := lo
		for i := bits; i < 128; i++ {
			hi[i/8] |= 0x80 >> (i % 8)
		}
		rs = append(rs, [2][16]byte{lo, hi})
	}
	slices.SortFunc(rs, func(x, y [2][16]byte) int { return slices.Compare(x[0][:], y[0][:]) })
	var out [][2][16]byte
	for _, r := range rs {
		if n := len(out); n > 0 && slices.Compare(r[0][:], out[n-1][1][:]) <= 0 {
			if slices.Compare(r[1][:], out[n-1][1][:]) > 0 {
				out[n-1][1] = r[1]
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

func inRanges(rs [][2][16]byte, a *[16]byte) bool {
	// The last range that starts at or before a holds it, if any does.
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if compare16(&rs[m][0], a) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && compare16(&rs[lo-1][1], a) >= 0
}

func compare16(x, y *[16]byte) int {
	for i := 0; i < 16; i += 8 {
		a, b := binary.BigEndian.Uint64(x[i:]), binary.BigEndian.Uint64(y[i:])
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
	}
	return 0
}

func (pol *policy) setLists(allow, deny []netip.Prefix) {
	if len(allow) == 0 && len(deny) == 0 {
		pol.lists.Store(nil)
		return
	}
	pol.lists.Store(&prefixLists{allow: toRanges(allow), deny: toRanges(deny)})
}

// listed reports whether a tap driver's packet from src belongs to a listed
// source, counting it.
func (pol *policy) listed(src netip.Addr) bool {
	l := pol.lists.Load()
	if l == nil {
		return false
	}
	a := src.As16()
	switch {
	case inRanges(l.deny, &a):
		pol.ctrs.ListDenied.Add(1)
	case inRanges(l.allow, &a):
		pol.ctrs.ListAllowed.Add(1)
	default:
		return false
	}
	return true
}

// observe counts n SYNs to the port at nowMS and reports whether the
// cookies are engaged.
func (pol *policy) observe(nowMS, n int64) bool {
	if nowMS-pol.odWin.Load() >= 1000 {
		pol.rollOnDemand(nowMS)
	}
	if t := pol.odSYNs.Add(n); t >= int64(pol.p.EngageRate) && !pol.ctrs.Engaged.Load() {
		pol.engage(nowMS, t)
	}
	return pol.ctrs.Engaged.Load()
}

// engage engages the cookies: n SYNs arrived in the current second.
func (pol *policy) engage(nowMS, n int64) {
	pol.odMu.Lock()
	defer pol.odMu.Unlock()
	c := &pol.ctrs
	if c.Engaged.Load() {
		return
	}
	c.Engaged.Store(true)
	c.Engagements.Add(1)
	pol.odAbove = nowMS
	pol.odLogger.Warn("on-demand: SYN rate crossed the threshold, cookies engaged",
		"syns", n, "within_ms", nowMS-pol.odWin.Load(), "engage_rate", pol.p.EngageRate)
}

// rollOnDemand ends the current second: a second at or above ReleaseRate
// holds the cookies engaged for another Hold; once Hold passed without
// one, they are released.
func (pol *policy) rollOnDemand(nowMS int64) {
	pol.odMu.Lock()
	defer pol.odMu.Unlock()
	if nowMS-pol.odWin.Load() < 1000 {
		return // another worker rolled it
	}
	c := &pol.ctrs
	if pol.odSYNs.Swap(0) >= int64(pol.p.ReleaseRate) {
		pol.odAbove = nowMS
	}
	pol.odWin.Store(nowMS)
	if c.Engaged.Load() && nowMS-pol.odAbove >= pol.p.Hold.Milliseconds() {
		c.Engaged.Store(false)
		pol.odLogger.Warn("on-demand: SYN rate below the release threshold, cookies disengaged",
			"release_rate", pol.p.ReleaseRate, "hold", pol.p.Hold.String())
	}
}

// tick lets an idle on-demand engine release its cookies: with no SYN at
// all no worker rolls the second over.
func (pol *policy) tick(nowMS int64) {
	if pol.p.Mode == ModeOnDemand && nowMS-pol.odWin.Load() >= 1000 {
		pol.rollOnDemand(nowMS)
	}
}

// PolicyCounters returns the counters of the engine's policy.
func (e *Engine) PolicyCounters() *PolicyCounters { return &e.pol.ctrs }

// Policy returns the policy in force, defaults applied.
func (e *Engine) Policy() Policy { return e.pol.p }

// ObserveSYNs tells an on-demand engine (ModeOnDemand) that n SYNs to the
// port arrived since the last call, counted where they are seen whether
// or not the engine sees them (the nft rules' counter, nft.ReadCounts), and
// reports whether the cookies are engaged: at EngageRate SYNs within a
// second they engage; after Hold with every second below ReleaseRate they
// release. The engine answers SYNs only while engaged; the caller moves
// the SYNs between the service and the engine to match (nft.SetEngaged).
// Call it often (every 100 ms, say) so that a flood engages the cookies
// within its first second.
func (e *Engine) ObserveSYNs(n int) bool {
	if e.pol.p.Mode != ModeOnDemand {
		return false
	}
	return e.pol.observe(monoMS(), int64(n))
}

// ObserveOverflow tells an on-demand engine that the service's listener
// overflowed (its SYN or accept queue was full and the kernel dropped a
// SYN, or answered it with the kernel's own cookie): the cookies engage as
// if EngageRate SYNs had arrived, and stay engaged for Hold after the last
// overflow.
func (e *Engine) ObserveOverflow() bool {
	if e.pol.p.Mode != ModeOnDemand {
		return false
	}
	return e.pol.observe(monoMS(), int64(e.pol.p.EngageRate))
}

// SetLists replaces the allow and deny lists the engine consults on a
// driver that taps below netfilter (Config.Tap); on a queueing driver the
// nft sets hold them and the engine ignores these. Safe at any time.
func (e *Engine) SetLists(allow, deny []netip.Prefix) { e.pol.setLists(allow, deny) }
