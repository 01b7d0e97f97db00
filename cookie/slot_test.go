package cookie

import "testing"

func TestKernelSlot(t *testing.T) {
	// §1.6 and §6: the slot a kernel has at boot, and an hour later. The
	// HZ 100 and 300 rows are ⌊(2^32 − 300·HZ)/(60·HZ)⌋ worked by hand; the
	// specification's figures for those two (715827, 238608) do not follow
	// its own formula, while its HZ 250 and 1000 figures do.
	for _, c := range []struct {
		hz   uint32
		boot uint32
	}{{250, 286326}, {1000, 71577}, {100, 715822}, {300, 238604}} {
		if got := KernelSlot(InitialJiffies(c.hz), c.hz); got != c.boot {
			t.Errorf("HZ %d: boot slot %d, want %d", c.hz, got, c.boot)
		}
	}
	if got := KernelSlot(InitialJiffies(250)+3600*250, 250); got != 286386 {
		t.Errorf("HZ 250 after 1 h: %d, want 286386", got)
	}
	if KernelSlot(12345, 0) != 0 {
		t.Error("HZ 0 must not divide by zero")
	}
}
