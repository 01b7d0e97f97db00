package engine

import (
	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// The full cookie profile (Config.Profile = cookie.ProfileFull). The
// SYN-ACK offers what the rule allows of the client's options whether or
// not the client sends timestamps: the ISN carries window scale, SACK and
// ECN, so they need no timestamp to come back. With timestamps the TSval's
// low 8 bits carry 8 more bits of the cookie's MAC, which the ACK's TSecr
// must echo.

// encodeFull completes the offer o for the SYN in w.seg under the full
// profile (window scale and SACK-permitted without timestamps too, the
// TSval) and returns the cookie.
func (w *worker) encodeFull(t cookie.Tuple, o *packet.Offer) (uint32, error) {
	s := &w.seg
	r := w.e.rule(s.v6)
	c := &s.pkt.Options
	fo := cookie.FullOptions{MSS: o.CookieMSS}
	if c.HasWScale && r.HasWScale {
		fo.WScale, fo.HasWScale = min(c.WScale, cookie.MaxWScale), true
		o.Options.HasWScale, o.Options.WScale = true, r.WScale
	}
	if c.SACKPermitted && r.SACKPerm {
		fo.SACK, o.Options.SACKPermitted = true, true
	}
	if s.pkt.Flags&(packet.FlagECE|packet.FlagCWR) == packet.FlagECE|packet.FlagCWR && r.ECN {
		fo.ECN = true
		o.Flags |= packet.FlagECE
	}
	isn, ts, err := w.e.cfg.Ring.EncodeFull(t, s.seq, fo)
	if o.Options.HasTS {
		o.Options.TSval = cookie.FullTSval(uint32(w.nowMS), ts)
	}
	return isn, err
}

// checkFull checks the ACK in w.seg under the full profile. The verdict is
// returned twice: as the profile's, and as the Linux profile's Verdict the
// rest of the ACK path reads (validity, reason, MSS, slot).
func (w *worker) checkFull(t cookie.Tuple) (cookie.FullVerdict, cookie.Verdict, error) {
	s := &w.seg
	ts := s.hasTS && w.e.rule(s.v6).Timestamp
	fv, err := w.e.cfg.Ring.CheckFull(t, s.seq-1, s.ack-1, s.tsecr, ts)
	v := cookie.Verdict{Valid: fv.Valid, Reason: fv.Reason, MSS: fv.Options.MSS, Index: fv.MSSIndex,
		Count: fv.Count, Age: fv.Age}
	return fv, v, err
}

// fullHandshake sets the options of h from a valid full-profile verdict:
// window scaling and SACK as the cookie carries them (the SYN-ACK offered
// them only when the rule allowed them), timestamps when the ACK has them.
func (w *worker) fullHandshake(h *Handshake, fv *cookie.FullVerdict, rule *packet.Rule) {
	s := &w.seg
	if s.hasTS && rule.Timestamp {
		h.Timestamps, h.TSval, h.TSecr = true, s.tsval, s.tsecr
	}
	h.SACKOK = fv.Options.SACK && rule.SACKPerm
	if fv.Options.HasWScale && rule.HasWScale {
		h.WScaleOK, h.ClientWScale, h.ServerWScale = true, fv.Options.WScale, rule.WScale
	}
}
