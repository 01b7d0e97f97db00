package cookie

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
