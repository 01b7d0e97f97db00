//go:build !js

// The wall-clock slot needs package time, whose initialisation alone adds
// about 230 KB to a js/wasm binary; the explainer reads the browser's clock
// and passes the slot to the pure functions instead.

package cookie

import "time"

// SlotPeriod is the length of one time slot: the kernel's
// TCP_SYNCOOKIE_PERIOD, 60 seconds of jiffies.
const SlotPeriod = 60 * time.Second

// WallSlot returns the wall-clock time slot of t: Unix seconds / 60. Proxies
// with synchronised clocks agree on it, which fleet keys rely on.
func WallSlot(t time.Time) uint32 {
	s := t.Unix()
	q := s / 60
	if s < 0 && s%60 != 0 {
		q--
	}
	return uint32(q)
}
