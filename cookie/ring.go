//go:build !js

// The key ring and fleet keys are the daemon's: they read the clock and derive
// keys with HKDF-SHA256, so they stay out of the js/wasm build, where package
// time and the standard library's crypto would add about half a megabyte to
// the explainer's binary for nothing it shows.

package cookie

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultGrace returns how long a Ring keeps accepting the previous key after
// a rotation when RingConfig.Grace is zero: as long as a cookie made just
// before the rotation can still be valid, so no handshake in flight at a
// rotation is lost. That is one slot when rotate is a whole number of minutes
// (epochs then start on slot boundaries), else two slots (MaxAge).
func DefaultGrace(rotate time.Duration) time.Duration {
	if rotate > 0 && rotate%SlotPeriod == 0 {
		return SlotPeriod
	}
	return MaxAge * SlotPeriod
}

// RingConfig configures a Ring. The zero value is a ring with one random key
// that never rotates, on the system clock.
type RingConfig struct {
	// Now is the clock. Nil means time.Now. Time slots are wall-clock minutes
	// (WallSlot) and key epochs are Unix time / Rotate.
	Now func() time.Time

	// Rotate is the key period: a new key for every epoch of this length,
	// counted from the Unix epoch. Zero means one key for the ring's life.
	Rotate time.Duration

	// Grace is how long after a rotation the previous key is still accepted.
	// Zero means DefaultGrace(Rotate). It must not exceed Rotate, so Rotate
	// should be a whole number of minutes, at least one.
	Grace time.Duration

	// Key is the key to use when neither Rotate nor Fleet is set. Nil means a
	// random key.
	Key *Key

	// Fleet, when set, derives the key of every epoch from a master secret
	// that every proxy of a fleet shares, so they accept each other's
	// cookies. Without it each epoch gets a fresh random key.
	Fleet *FleetSecret

	// Profile is the cookie layout the ring's fleet keys are derived for
	// (see FleetSecret.ProfileEpochKey): proxies of a fleet that disagree
	// on it share no key. The zero value is ProfileLinux.
	Profile Profile
}

// Ring is a set of cookie keys with a clock and a rotation policy: it encodes
// with the current key and checks with the current key, then, during the grace
// period after a rotation, with the previous one. Reads take no lock; rotation
// happens on the first use after an epoch ends. A Ring is safe for concurrent use.
type Ring struct {
	now    func() time.Time
	rotate time.Duration
	grace  time.Duration
	fleet  *FleetSecret
	prof   Profile

	gen atomic.Pointer[generation]
	mu  sync.Mutex // serialises rotations
}

// generation is an immutable set of keys for one epoch.
type generation struct {
	epoch     int64
	cur, prev Key
	hasPrev   bool
	prevUntil time.Time // the previous key is accepted before this instant
}

// ErrGraceTooLong: RingConfig.Grace exceeds RingConfig.Rotate, which would
// need more than one previous key.
var ErrGraceTooLong = errors.New("cookie: grace period longer than the rotation period")

var errNegativePeriod = errors.New("cookie: negative rotation or grace period")

// NewRing returns a Ring configured by cfg; nil means the defaults.
func NewRing(cfg *RingConfig) (*Ring, error) {
	var c RingConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rotate < 0 || c.Grace < 0 {
		return nil, errNegativePeriod
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace(c.Rotate)
	}
	if c.Rotate > 0 && c.Grace > c.Rotate {
		return nil, ErrGraceTooLong
	}
	r := &Ring{now: c.Now, rotate: c.Rotate, grace: c.Grace, fleet: c.Fleet, prof: c.Profile}
	now := r.now()
	g := &generation{epoch: r.epoch(now)}
	switch {
	case c.Fleet != nil:
		g.cur = c.Fleet.ProfileEpochKey(r.prof, g.epoch, r.rotate)
		// A fleet node that starts inside a grace period accepts the
		// previous epoch's cookies too, like its peers.
		if r.rotate > 0 && now.Sub(r.epochStart(g.epoch)) < r.grace {
			g.prev, g.hasPrev = c.Fleet.ProfileEpochKey(r.prof, g.epoch-1, r.rotate), true
			g.prevUntil = r.epochStart(g.epoch).Add(r.grace)
		}
	case c.Key != nil && c.Rotate == 0:
		g.cur = *c.Key
	default:
		k, err := GenerateKey()
		if err != nil {
			return nil, err
		}
		g.cur = k
	}
	r.gen.Store(g)
	return r, nil
}

func (r *Ring) epoch(t time.Time) int64 {
	if r.rotate <= 0 {
		return 0
	}
	n := t.UnixNano()
	e := n / int64(r.rotate)
	if n < 0 && n%int64(r.rotate) != 0 {
		e--
	}
	return e
}

func (r *Ring) epochStart(e int64) time.Time {
	return time.Unix(0, e*int64(r.rotate))
}

// current returns the generation for time now, rotating if its epoch ended.
func (r *Ring) current(now time.Time) *generation {
	g := r.gen.Load()
	if r.rotate <= 0 || r.epoch(now) == g.epoch {
		return g
	}
	return r.rotateTo(now)
}

func (r *Ring) rotateTo(now time.Time) *generation {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.gen.Load()
	e := r.epoch(now)
	if e <= g.epoch { // another goroutine rotated, or the clock went back
		return g
	}
	n := &generation{epoch: e}
	if r.fleet != nil {
		n.cur = r.fleet.ProfileEpochKey(r.prof, e, r.rotate)
		n.prev, n.hasPrev = r.fleet.ProfileEpochKey(r.prof, e-1, r.rotate), true
	} else {
		k, err := GenerateKey()
		if err != nil {
			// No entropy: keep the old generation rather than fail
			// handshakes; the next call tries again.
			return g
		}
		n.cur = k
		if e == g.epoch+1 {
			// Only the key of the epoch just ended can have cookies in
			// flight; after a longer idle gap the old key is dropped.
			n.prev, n.hasPrev = g.cur, true
		}
	}
	n.prevUntil = r.epochStart(e).Add(r.grace)
	r.gen.Store(n)
	return n
}

// Slot returns the ring's current time slot.
func (r *Ring) Slot() uint32 { return WallSlot(r.now()) }

// Encode returns the cookie for a SYN on tuple t with sequence number sseq and
// client MSS mss, made with the current key in the current time slot.
func (r *Ring) Encode(t Tuple, sseq uint32, mss uint16) (uint32, error) {
	now := r.now()
	g := r.current(now)
	return g.cur.Encode(t, sseq, mss, WallSlot(now))
}

// Check checks the cookie of an ACK (see Key.Check) with the current key and,
// during the grace period after a rotation, with the previous key. The
// verdict for the current key is returned when both reject.
func (r *Ring) Check(t Tuple, sseq, cookie uint32) (Verdict, error) {
	now := r.now()
	g := r.current(now)
	count := WallSlot(now)
	v, err := g.cur.Check(t, sseq, cookie, count)
	if err != nil || v.Valid || !g.hasPrev || !now.Before(g.prevUntil) {
		return v, err
	}
	if pv, _ := g.prev.Check(t, sseq, cookie, count); pv.Valid {
		return pv, nil
	}
	return v, nil
}

// FleetSecretSize is the size of a fleet master secret in bytes.
const FleetSecretSize = 32

// FleetSecret is a master secret shared by the proxies of a fleet. Each
// derives the key of every epoch from it with HKDF-SHA256, so proxies that
// share it and agree on the time accept each other's cookies with no other
// coordination. It redacts itself when logged.
type FleetSecret struct {
	b [FleetSecretSize]byte
}

// NewFleetSecret returns the fleet secret b, which must be FleetSecretSize bytes.
func NewFleetSecret(b []byte) (FleetSecret, error) {
	if len(b) != FleetSecretSize {
		return FleetSecret{}, &KeySizeError{Size: len(b)}
	}
	var f FleetSecret
	copy(f.b[:], b)
	return f, nil
}

// EpochKey derives the cookie key of an epoch: HKDF-SHA256 of the master
// secret, with no salt and the info string
// "synproxy-lite cookie key v1" || BE64(period in ns) || BE64(epoch).
func (f FleetSecret) EpochKey(epoch int64, period time.Duration) Key {
	var info [27 + 16]byte
	n := copy(info[:], "synproxy-lite cookie key v1")
	binary.BigEndian.PutUint64(info[n:], uint64(period))
	binary.BigEndian.PutUint64(info[n+8:], uint64(epoch))
	b, err := hkdf.Key(sha256.New, f.b[:], nil, string(info[:]), KeySize)
	if err != nil {
		// Only possible for an output longer than 255 hash blocks.
		panic("cookie: hkdf: " + err.Error())
	}
	k, _ := NewKey(b)
	return k
}

// ProfileEpochKey derives the cookie key of an epoch for a cookie profile.
// For ProfileLinux it is EpochKey, so Linux-profile fleets keep the keys
// they always had; any other profile appends its name to the info string
// ("synproxy-lite cookie key v1" || BE64(period) || BE64(epoch) || "full"),
// so proxies that disagree on the profile never share a key and reject
// each other's cookies.
func (f FleetSecret) ProfileEpochKey(p Profile, epoch int64, period time.Duration) Key {
	if p == ProfileLinux {
		return f.EpochKey(epoch, period)
	}
	var info [27 + 16 + 8]byte
	n := copy(info[:], "synproxy-lite cookie key v1")
	binary.BigEndian.PutUint64(info[n:], uint64(period))
	binary.BigEndian.PutUint64(info[n+8:], uint64(epoch))
	n += 16
	n += copy(info[n:], p.String())
	b, err := hkdf.Key(sha256.New, f.b[:], nil, string(info[:n]), KeySize)
	if err != nil {
		panic("cookie: hkdf: " + err.Error())
	}
	k, _ := NewKey(b)
	return k
}

// String redacts the secret.
func (f FleetSecret) String() string { return "cookie.FleetSecret(REDACTED)" }

// GoString redacts the secret.
func (f FleetSecret) GoString() string { return f.String() }
