// Package monotonic reads CLOCK_MONOTONIC: the engine's clock, and the
// clock of bpf_ktime_get_ns, which the drivers' eBPF programs compare the
// proofs of proven sources with.
package monotonic

import "golang.org/x/sys/unix"

// NS returns CLOCK_MONOTONIC in nanoseconds. It does not allocate.
func NS() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
