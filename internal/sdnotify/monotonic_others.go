//go:build !linux

package sdnotify

// monotonicUsec: only Linux has systemd's CLOCK_MONOTONIC.
func monotonicUsec() (uint64, bool) { return 0, false }
