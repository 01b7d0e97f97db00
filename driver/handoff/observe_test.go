package handoff

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	h := NewHistogram(.001, .01, .1)
	for _, d := range []time.Duration{500 * time.Microsecond, time.Millisecond, 5 * time.Millisecond, time.Second} {
		h.Observe(d)
	}
	s := h.Snapshot()
	want := map[float64]uint64{.001: 2, .01: 3, .1: 3}
	for b, n := range want {
		if s.Buckets[b] != n {
			t.Errorf("bucket le=%v: %d, want %d", b, s.Buckets[b], n)
		}
	}
	if s.Count != 4 || s.Sum < 1.0065 || s.Sum > 1.0066 {
		t.Errorf("count %d sum %v, want 4 and 1.0065", s.Count, s.Sum)
	}
	if n := testing.AllocsPerRun(100, func() { h.Observe(time.Millisecond) }); n != 0 {
		t.Errorf("Observe allocates %v times", n)
	}
	var nilH *Histogram
	if s := nilH.Snapshot(); s.Count != 0 {
		t.Errorf("nil histogram: %+v", s)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestDialReason(t *testing.T) {
	op := func(errno error) error {
		return &OpError{Op: "dial backend", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{op(syscall.ECONNREFUSED), DialRefused},
		{op(syscall.EHOSTUNREACH), DialUnreachable},
		{op(syscall.ENETUNREACH), DialUnreachable},
		{op(syscall.ETIMEDOUT), DialTimeout},
		{&OpError{Op: "dial backend", Err: &net.OpError{Op: "dial", Err: timeoutErr{}}}, DialTimeout},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), DialTimeout},
		{op(syscall.EACCES), DialOther},
		{errors.New("no such host"), DialOther},
	} {
		if got := DialReason(tc.err); got != tc.want {
			t.Errorf("DialReason(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func TestBackendStateReachable(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		b    BackendState
		want bool
	}{
		{"never dialled", BackendState{}, false},
		{"ok recently", BackendState{LastOK: now.Add(-time.Second)}, true},
		{"ok long ago", BackendState{LastOK: now.Add(-time.Minute)}, false},
		{"failed after ok", BackendState{LastOK: now.Add(-2 * time.Second), LastFailure: now.Add(-time.Second)}, false},
		{"ok after failure", BackendState{LastOK: now.Add(-time.Second), LastFailure: now.Add(-2 * time.Second)}, true},
	} {
		if got := tc.b.Reachable(now, 10*time.Second); got != tc.want {
			t.Errorf("%s: Reachable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestProbe probes a listener, then the same port closed.
func TestProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip("PROBE NOT TESTED: no loopback listener:", err)
	}
	px := &Proxy{Backend: ln.Addr().String()}
	defer px.Close()
	b := px.Probe(context.Background(), 0)
	if !b.Reachable(time.Now(), time.Minute) {
		t.Fatalf("backend listening, probe says %+v", b)
	}
	if b2 := px.Probe(context.Background(), time.Hour); b2 != b {
		t.Errorf("a fresh state was probed again: %+v then %+v", b, b2)
	}
	ln.Close()
	b = px.Probe(context.Background(), 0)
	if b.Reachable(time.Now(), time.Minute) || DialReason(b.LastErr) != DialRefused {
		t.Fatalf("backend closed, probe says %+v", b)
	}
	if st := px.Stats(); st.DialFailures != 0 || st.ConnectSeconds.Count != 1 {
		t.Errorf("a probe is a connect (timed) but no connection (no dial failure counted): stats %+v", st)
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := NewHistogram(ConnectBuckets...)
	b.ReportAllocs()
	for b.Loop() {
		h.Observe(3 * time.Millisecond)
	}
}
