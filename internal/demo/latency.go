package demo

import (
	"slices"
	"sync"
	"time"
)

// latencies keeps every sample and the start of the current window. It is
// safe for concurrent use.
type latencies struct {
	mu      sync.Mutex
	samples []time.Duration
	from    int
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.samples = append(l.samples, d)
	l.mu.Unlock()
}

// window returns p50 and p99 of the samples since the last call.
func (l *latencies) window() (p50, p99 time.Duration) {
	l.mu.Lock()
	s := slices.Clone(l.samples[l.from:])
	l.from = len(l.samples)
	l.mu.Unlock()
	return percentiles(s)
}

// all returns p50 and p99 of every sample.
func (l *latencies) all() (p50, p99 time.Duration) {
	l.mu.Lock()
	s := slices.Clone(l.samples)
	l.mu.Unlock()
	return percentiles(s)
}

// percentiles returns the 50th and 99th percentiles of s (nearest rank,
// rounding down), sorting s; zeros for an empty s.
func percentiles(s []time.Duration) (p50, p99 time.Duration) {
	if len(s) == 0 {
		return 0, 0
	}
	slices.Sort(s)
	return s[(len(s)-1)*50/100], s[(len(s)-1)*99/100]
}
