package handoff

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Histogram counts durations into fixed buckets with atomic counters, so
// that observing one allocates nothing and takes no lock. It is what a
// Proxy keeps of its handoff and backend connect times; a metrics exporter
// reads it with Snapshot. The zero value has no buckets (only the count
// and the sum); NewHistogram gives it some.
type Histogram struct {
	bounds []float64 // upper bounds in seconds, increasing
	counts []atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Uint64 // nanoseconds
}

// NewHistogram returns a Histogram whose buckets have the given upper
// bounds, in seconds, increasing.
func NewHistogram(bounds ...float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds))}
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	for i, b := range h.bounds {
		if s <= b {
			h.counts[i].Add(1)
			break
		}
	}
	h.count.Add(1)
	h.sum.Add(uint64(max(d, 0)))
}

// HistogramSnapshot is a Histogram read at one moment: the form of
// Prometheus' histograms (cumulative bucket counts by upper bound).
type HistogramSnapshot struct {
	// Count is the number of durations observed, Sum their total in
	// seconds.
	Count uint64
	Sum   float64
	// Buckets maps each upper bound (seconds) to the number of durations
	// at most that long (cumulative); +Inf is Count.
	Buckets map[float64]uint64
}

// Snapshot reads h. Durations observed while it reads may be counted in
// Count and not yet in a bucket, never the other way round.
func (h *Histogram) Snapshot() HistogramSnapshot {
	if h == nil {
		return HistogramSnapshot{}
	}
	s := HistogramSnapshot{Buckets: make(map[float64]uint64, len(h.bounds))}
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		s.Buckets[b] = cum
	}
	s.Count = max(h.count.Load(), cum)
	s.Sum = float64(h.sum.Load()) / float64(time.Second)
	return s
}

// Bucket bounds of a Proxy's histograms, in seconds.
var (
	// HandoffBuckets are those of the handoff time (Materialise: the
	// TCP_REPAIR socket made), 10 µs to 100 ms.
	HandoffBuckets = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1}
	// ConnectBuckets are those of the backend connect time, 100 µs to
	// 10 s (the default DialTimeout).
	ConnectBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
)

// Reasons a backend dial fails, as the label of a metric (DialReason).
const (
	DialRefused     = "refused"     // the backend's host answered with a reset: nothing listens
	DialTimeout     = "timeout"     // no answer within Limits.DialTimeout
	DialUnreachable = "unreachable" // no route, or the host or network is unreachable
	DialOther       = "other"
)

// DialReasons lists the reasons of DialReason, in the order of
// ProxyStats.DialFailuresBy.
var DialReasons = []string{DialRefused, DialTimeout, DialUnreachable, DialOther}

// DialReason classifies the error of a failed backend dial.
func DialReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return DialRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT),
		errors.As(err, &ne) && ne.Timeout():
		return DialTimeout
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ENETDOWN), errors.Is(err, syscall.EADDRNOTAVAIL):
		return DialUnreachable
	}
	return DialOther
}

func dialReasonIndex(reason string) int {
	for i, r := range DialReasons {
		if r == reason {
			return i
		}
	}
	return len(DialReasons) - 1
}

// BackendState is what a Proxy last learnt of its backend: from the
// dials of the connections it splices, and from Probe.
type BackendState struct {
	// LastOK is when a dial last succeeded; LastFailure when one last
	// failed, with LastErr its error. Zero times mean never.
	LastOK, LastFailure time.Time
	LastErr             error
}

// Reachable says whether the backend answered the last dial made within
// window before now: false when the last dial failed or none was made.
func (b BackendState) Reachable(now time.Time, window time.Duration) bool {
	return !b.LastOK.IsZero() && b.LastOK.After(b.LastFailure) && now.Sub(b.LastOK) <= window
}

// Last returns when the last dial, successful or not, was made.
func (b BackendState) Last() time.Time {
	if b.LastOK.After(b.LastFailure) {
		return b.LastOK
	}
	return b.LastFailure
}

// observer is a Proxy's record of its handoff and dial times, the
// handoffs in flight, the dial failures by reason and the backend's state.
type observer struct {
	handoffs *Histogram
	connects *Histogram
	inFlight atomic.Int64
	byReason [4]atomic.Uint64 // indexed as DialReasons
	lastOK   atomic.Int64     // unix nanoseconds
	failMu   sync.Mutex
	lastFail time.Time
	lastErr  error
	probeMu  sync.Mutex // one Probe at a time
}

func (o *observer) init() {
	o.handoffs = NewHistogram(HandoffBuckets...)
	o.connects = NewHistogram(ConnectBuckets...)
}

func (o *observer) dialed(start time.Time, err error) {
	now := time.Now()
	if err == nil {
		o.connects.Observe(now.Sub(start))
		o.lastOK.Store(now.UnixNano())
		return
	}
	o.failMu.Lock()
	o.lastFail, o.lastErr = now, err
	o.failMu.Unlock()
}

func (o *observer) state() BackendState {
	var b BackendState
	if ns := o.lastOK.Load(); ns != 0 {
		b.LastOK = time.Unix(0, ns)
	}
	o.failMu.Lock()
	b.LastFailure, b.LastErr = o.lastFail, o.lastErr
	o.failMu.Unlock()
	return b
}

// BackendState returns what the Proxy last learnt of its backend.
func (p *Proxy) BackendState() BackendState {
	p.init()
	return p.obs.state()
}

// Probe dials the backend as a connection's dial does (with the Proxy's
// Dial and mark, within Limits.DialTimeout or ctx's deadline), closes the
// connection at once and records the outcome in BackendState, unless a dial
// made within fresh already says how the backend is: then it dials
// nothing. It returns the state after. A readiness check calls it, so
// that an idle proxy still learns that its backend went away, or came
// back; the backend sees a connection that closes without a byte (without
// a PROXY header either).
func (p *Proxy) Probe(ctx context.Context, fresh time.Duration) BackendState {
	p.init()
	p.obs.probeMu.Lock()
	defer p.obs.probeMu.Unlock()
	now := time.Now()
	if b := p.obs.state(); now.Sub(b.Last()) <= fresh {
		return b
	}
	ctx, cancel := p.lim.dialContext(ctx)
	defer cancel()
	c, err := dial(ctx, p.dialer(), p.Backend)
	p.obs.dialed(now, err)
	if err == nil {
		c.Close()
	}
	return p.obs.state()
}
