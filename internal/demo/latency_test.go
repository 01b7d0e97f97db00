package demo

import (
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var s []time.Duration
		for _, x := range v {
			s = append(s, time.Duration(x)*time.Millisecond)
		}
		return s
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	for _, tc := range []struct {
		name     string
		in       []time.Duration
		p50, p99 time.Duration
	}{
		{"empty", nil, 0, 0},
		{"one", ms(7), 7 * time.Millisecond, 7 * time.Millisecond},
		{"two", ms(9, 1), 1 * time.Millisecond, 1 * time.Millisecond},
		{"three", ms(3, 1, 2), 2 * time.Millisecond, 2 * time.Millisecond},
		{"hundred", ms(hundred...), 50 * time.Millisecond, 99 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p50, p99 := percentiles(tc.in)
			if p50 != tc.p50 || p99 != tc.p99 {
				t.Errorf("percentiles = %v, %v; want %v, %v", p50, p99, tc.p50, tc.p99)
			}
		})
	}
}

func TestLatenciesWindow(t *testing.T) {
	var l latencies
	for _, d := range []time.Duration{3, 1, 2} {
		l.add(d)
	}
	if p50, _ := l.window(); p50 != 2 {
		t.Errorf("first window p50 %v, want 2", p50)
	}
	if p50, p99 := l.window(); p50 != 0 || p99 != 0 {
		t.Errorf("empty window: %v, %v", p50, p99)
	}
	l.add(10)
	if p50, _ := l.window(); p50 != 10 {
		t.Errorf("second window p50 %v, want 10", p50)
	}
	if p50, p99 := l.all(); p50 != 2 || p99 != 3 {
		t.Errorf("all: %v, %v; want 2, 3", p50, p99)
	}
}
