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

// KernelSlot returns the time slot a Linux kernel uses when its 64-bit jiffies
// counter reads jiffies64 and it runs at hz ticks a second:
// jiffies_64 / (60·HZ), truncated to 32 bits.
func KernelSlot(jiffies64 uint64, hz uint32) uint32 {
	if hz == 0 {
		return 0
	}
	return uint32(jiffies64 / (60 * uint64(hz)))
}

// InitialJiffies returns the value a kernel's jiffies_64 starts from at boot:
// 2^32 - 300·HZ, so that 32-bit jiffies wrap five minutes after boot.
func InitialJiffies(hz uint32) uint64 {
	return 1<<32 - 300*uint64(hz)
}
