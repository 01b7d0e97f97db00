//go:build !js

package cookie

import (
	"testing"
	"time"
)

func TestWallSlot(t *testing.T) {
	for _, c := range []struct {
		unix int64
		want uint32
	}{{0, 0}, {59, 0}, {60, 1}, {1_800_000_000, 30_000_000}, {-1, 1<<32 - 1}, {-60, 1<<32 - 1}, {-61, 1<<32 - 2}} {
		if got := WallSlot(time.Unix(c.unix, 0)); got != c.want {
			t.Errorf("WallSlot(%d) = %d, want %d", c.unix, got, c.want)
		}
	}
}
