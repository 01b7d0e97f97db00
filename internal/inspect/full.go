package inspect

import (
	"fmt"
	"io"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// fullCk is what a full-profile cookie adds to cookieCk: the options it
// carries.
type fullCk struct {
	WScale    *uint8 `json:"wscale,omitempty"` // absent: no window scaling
	SACK      bool   `json:"sack"`
	ECN       bool   `json:"ecn"`
	KeyBit    uint8  `json:"key_bit"`
	TSChecked bool   `json:"tsval_checked"` // the SYN-ACK's TSval bits were checked too
}

// checkFullCookie checks the ISN of h's SYN-ACK as a full-profile cookie
// (synproxy-lite run --cookie-profile full): in slot o.CheckSlot when
// o.HasCheckSlot, else in the wall-clock slots around the capture time (the
// profile is synproxy-lite's, whose slots are Unix minutes). The SYN-ACK's
// TSval, when it has one, must carry the MAC's 8 further bits. It returns
// nil when no slot matches, leaving the Linux profile's verdict.
func checkFullCookie(o *Options, h *handshake) *cookieCk {
	sa := h.SYNACK
	t := cookie.Tuple{Client: h.client, Server: h.server}
	key := o.Key
	if t.Is6() {
		key = o.Key6
	}
	sseq := sa.Ack - 1
	if h.SYN != nil {
		sseq = h.SYN.Seq
	}
	ts, hasTS := sa.pkt.Options.TSval, sa.pkt.Options.HasTS
	try := func(count uint32) (cookie.FullVerdict, bool) {
		v, err := key.CheckFull(t, sseq, sa.ISN, count, ts, hasTS)
		return v, err == nil && v.Valid
	}
	var cands []uint32
	src := "flag"
	switch {
	case o.HasCheckSlot:
		cands = []uint32{o.CheckSlot}
	case !sa.Time.IsZero():
		src = "wall-clock"
		ws := cookie.WallSlot(sa.Time)
		for d := -searchWall; d <= searchWall; d++ {
			cands = append(cands, ws+uint32(d))
		}
	}
	for i, count := range cands {
		v, ok := try(count)
		if !ok {
			continue
		}
		c := &cookieCk{Profile: "full", Slot8: uint8(v.Count), CheckSlot: ptr(count), CheckSlotSource: src, Valid: true,
			Reason: v.Reason.String(), MSS: v.Options.MSS, MSSIndex: ptr(v.MSSIndex), Slot: ptr(v.Count), Age: ptr(v.Age),
			fullCk: &fullCk{SACK: v.Options.SACK, ECN: v.Options.ECN, KeyBit: v.KeyBit, TSChecked: v.TSChecked}}
		if v.Options.HasWScale {
			c.WScale = ptr(v.Options.WScale)
		}
		if h.SYN != nil {
			var mss uint16
			if h.SYN.pkt.Options.HasMSS {
				mss = h.SYN.pkt.Options.MSS
			}
			w := cookie.FullMSSIndex(mss, t.Is6())
			c.WantIndex = ptr(w)
			if w != v.MSSIndex {
				c.Note = fmt.Sprintf("decodes MSS index %d but the SYN's MSS maps to index %d", v.MSSIndex, w)
			}
		}
		bits := cookie.FullMACBits
		if hasTS {
			bits += cookie.FullTSBits
		}
		c.Note = joinNote(c.Note, fmt.Sprintf("a full-profile cookie (synproxy-lite --cookie-profile full); %d slot(s) tried, fluke chance %.1e",
			i+1, float64(i+1)/float64(uint64(1)<<bits)))
		return c
	}
	return nil
}

// writeFullCookie is the text line of a full-profile cookie.
func writeFullCookie(w io.Writer, c *cookieCk) {
	ws := "none"
	if c.WScale != nil {
		ws = fmt.Sprint(*c.WScale)
	}
	fmt.Fprintf(w, "  cookie   profile full, count %d (%s): valid, MSS %d (index %d), wscale %s, SACK %v, ECN %v, key bit %d, made in slot %d, age %d\n",
		*c.CheckSlot, c.CheckSlotSource, c.MSS, *c.MSSIndex, ws, c.SACK, c.ECN, c.KeyBit, *c.Slot, *c.Age)
	if c.Note != "" {
		fmt.Fprintf(w, "           %s\n", c.Note)
	}
}
