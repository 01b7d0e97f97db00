//go:build !js

package cookie

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// synctest bubbles start at 2000-01-01 00:00:00 UTC, a slot and epoch
// boundary for every period used here.

func TestRingStatic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := mustKey(t, specKey)
		r, err := NewRing(&RingConfig{Key: &k})
		if err != nil {
			t.Fatal(err)
		}
		tp := knownAnswers[0].t
		c, _ := r.Encode(tp, 1000, 1460)
		if want, _ := k.Encode(tp, 1000, 1460, WallSlot(time.Now())); c != want {
			t.Fatalf("ring cookie %08x, key cookie %08x", c, want)
		}
		time.Sleep(119 * time.Second)
		if v, _ := r.Check(tp, 1000, c); !v.Valid || v.Age != 1 {
			t.Errorf("after 119 s: %+v", v)
		}
		time.Sleep(2 * time.Second)
		if v, _ := r.Check(tp, 1000, c); v.Valid || v.Reason != ReasonStale {
			t.Errorf("after 121 s: %+v, want stale", v)
		}
	})
}

// TestRingRotation: a cookie made just before a rotation is accepted after it
// through the previous key, only during the grace period.
func TestRingRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := NewRing(&RingConfig{Rotate: 5 * time.Minute, Grace: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		tp := knownAnswers[4].t
		time.Sleep(5*time.Minute - time.Second) // last second of epoch 0
		before, _ := r.Encode(tp, 7, 1440)
		time.Sleep(21 * time.Second) // 20 s into epoch 1
		after, _ := r.Encode(tp, 7, 1440)
		if after == before {
			t.Fatal("the key did not change at the rotation")
		}
		if v, _ := r.Check(tp, 7, before); !v.Valid || v.Age != 1 {
			t.Errorf("old cookie within grace: %+v, want valid at age 1", v)
		}
		if v, _ := r.Check(tp, 7, after); !v.Valid || v.Age != 0 {
			t.Errorf("new cookie: %+v", v)
		}
		time.Sleep(20 * time.Second) // 40 s into epoch 1: slot still accepts, grace over
		if v, _ := r.Check(tp, 7, before); v.Valid {
			t.Errorf("old cookie after grace: %+v, want rejected", v)
		}
	})
}

// TestRingDefaultGraceKeepsInFlight: with the defaults, every cookie made in
// the last slot before a rotation stays valid as long as its slot allows.
func TestRingDefaultGraceKeepsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := NewRing(&RingConfig{Rotate: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		tp := knownAnswers[0].t
		time.Sleep(59 * time.Second)
		c, _ := r.Encode(tp, 1, 1300)
		time.Sleep(60 * time.Second) // last second of the next slot and epoch
		if v, _ := r.Check(tp, 1, c); !v.Valid || v.MSS != 1300 {
			t.Errorf("in-flight cookie 60 s after the rotation: %+v", v)
		}
	})
}

func TestRingIdleGapDropsOldKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := NewRing(&RingConfig{Rotate: time.Minute})
		g0 := r.gen.Load()
		time.Sleep(3 * time.Minute)
		r.Slot()
		tp := knownAnswers[0].t
		c, _ := r.Encode(tp, 1, 1460)
		g := r.gen.Load()
		if g.epoch != g0.epoch+3 || g.hasPrev {
			t.Errorf("after an idle gap: epoch %d (from %d), hasPrev %v", g.epoch, g0.epoch, g.hasPrev)
		}
		if v, _ := r.Check(tp, 1, c); !v.Valid {
			t.Errorf("%+v", v)
		}
	})
}

func TestRingConfigErrors(t *testing.T) {
	if _, err := NewRing(&RingConfig{Rotate: time.Minute, Grace: 2 * time.Minute}); !errors.Is(err, ErrGraceTooLong) {
		t.Errorf("grace > rotate: %v", err)
	}
	if _, err := NewRing(&RingConfig{Rotate: -time.Second}); err == nil {
		t.Error("negative rotation accepted")
	}
	if _, err := NewRing(nil); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestFleet: proxies sharing a fleet secret accept each other's cookies across
// rotations; a proxy with another secret does not.
func TestFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		master := make([]byte, FleetSecretSize)
		master[0] = 1
		f, _ := NewFleetSecret(master)
		a, _ := NewRing(&RingConfig{Rotate: time.Minute, Fleet: &f})
		time.Sleep(30 * time.Second)
		b, _ := NewRing(&RingConfig{Rotate: time.Minute, Fleet: &f}) // started later
		master[0] = 2
		g, _ := NewFleetSecret(master)
		other, _ := NewRing(&RingConfig{Rotate: time.Minute, Fleet: &g})
		tp := knownAnswers[0].t
		c, _ := a.Encode(tp, 99, 1460)
		if v, _ := b.Check(tp, 99, c); !v.Valid {
			t.Errorf("peer rejected a fleet cookie: %+v", v)
		}
		if v, _ := other.Check(tp, 99, c); v.Valid {
			t.Error("a ring with another fleet secret accepted the cookie")
		}
		time.Sleep(40 * time.Second) // both rotated: 10 s into the next epoch
		if v, _ := b.Check(tp, 99, c); !v.Valid || v.Age != 1 {
			t.Errorf("peer after rotation: %+v", v)
		}
		// A node that starts inside the grace period accepts it too.
		late, _ := NewRing(&RingConfig{Rotate: time.Minute, Fleet: &f})
		if v, _ := late.Check(tp, 99, c); !v.Valid {
			t.Errorf("node started in the grace period: %+v", v)
		}
		// Epoch keys are deterministic and differ per epoch and period.
		if f.EpochKey(5, time.Minute) != f.EpochKey(5, time.Minute) ||
			f.EpochKey(5, time.Minute) == f.EpochKey(6, time.Minute) ||
			f.EpochKey(5, time.Minute) == f.EpochKey(5, 2*time.Minute) {
			t.Error("epoch keys are not a function of (secret, epoch, period)")
		}
	})
}

func TestRingConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := NewRing(&RingConfig{Rotate: time.Minute})
		tp := knownAnswers[0].t
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 200 {
					c, _ := r.Encode(tp, uint32(w*1000+i), 1460)
					if v, _ := r.Check(tp, uint32(w*1000+i), c); !v.Valid {
						t.Errorf("worker %d step %d: %+v", w, i, v)
					}
					time.Sleep(time.Second)
				}
			})
		}
		wg.Wait()
	})
}

// TestKeyString: keys and fleet secrets print redacted in every build (the
// log/slog form is in redact_slog_test.go).
func TestKeyString(t *testing.T) {
	k := mustKey(t, specKey)
	f, _ := NewFleetSecret(make([]byte, 32))
	for _, s := range []string{k.String(), k.GoString(), f.String(), f.GoString(), fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, f)} {
		if len(s) == 0 || strings.Contains(s, specKey) || strings.Contains(s, "0001020304") {
			t.Errorf("not redacted: %q", s)
		}
	}
}
