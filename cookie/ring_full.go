//go:build !js

package cookie

// Profile returns the profile the ring's fleet keys are derived for
// (RingConfig.Profile).
func (r *Ring) Profile() Profile { return r.prof }

// keyBit is the full-profile key bit of an epoch's key: its parity.
func keyBit(epoch int64) uint8 { return uint8(epoch & 1) }

// EncodeFull returns the full-profile cookie for a SYN on tuple t with
// sequence number sseq and options o, made with the current key (its key
// bit the parity of its epoch) in the current slot, and the bits for the
// SYN-ACK's TSval (FullTSval).
func (r *Ring) EncodeFull(t Tuple, sseq uint32, o FullOptions) (isn uint32, ts uint8, err error) {
	now := r.now()
	g := r.current(now)
	return g.cur.EncodeFull(t, sseq, o, WallSlot(now), keyBit(g.epoch))
}

// CheckFull checks a full-profile cookie (see Key.CheckFull) with the key
// its key bit names: the current key, or during the grace period after a
// rotation the previous one (whose epoch has the other parity). One MAC is
// computed whatever the key; a bit naming no key held now gives ReasonKey.
func (r *Ring) CheckFull(t Tuple, sseq, cookie, tsecr uint32, hasTS bool) (FullVerdict, error) {
	now := r.now()
	g := r.current(now)
	count := WallSlot(now)
	b := FullKeyBit(cookie)
	switch {
	case b == keyBit(g.epoch):
		return g.cur.CheckFull(t, sseq, cookie, count, tsecr, hasTS)
	case g.hasPrev && now.Before(g.prevUntil):
		return g.prev.CheckFull(t, sseq, cookie, count, tsecr, hasTS)
	}
	if _, err := t.family(); err != nil {
		return FullVerdict{}, err
	}
	f := uint32(FullFields(cookie))
	age := (count ^ f>>fullSlotShift) & 1
	return FullVerdict{Reason: ReasonKey, Count: count - age, Age: age}, nil
}
