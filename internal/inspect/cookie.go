package inspect

import (
	"fmt"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// Search bounds for a slot that Options.CheckSlot does not give.
const (
	searchUptime = 365 * 24 * 60 // slots: a year of kernel uptime
	searchWall   = 2             // slots either side of the capture's wall-clock slot
)

var searchHZ = []uint32{250, 1000, 300, 100}

// checkCookie checks the ISN of h's SYN-ACK as a cookie: in slot
// o.CheckSlot when o.HasCheckSlot, else in the slot a search finds.
func checkCookie(o *Options, h *handshake) *cookieCk {
	sa := h.SYNACK
	t := cookie.Tuple{Client: h.client, Server: h.server}
	v6 := t.Is6()
	key := o.Key
	if v6 {
		key = o.Key6
	}
	sseq := sa.Ack - 1
	if h.SYN != nil {
		sseq = h.SYN.Seq
	}
	isn := sa.ISN
	c := &cookieCk{}
	// The slot byte (and r) do not depend on the checker's slot.
	tr, err := key.Trace(t, sseq, isn, o.CheckSlot)
	if err != nil {
		c.Reason, c.Note = "tuple", err.Error() // the metrics' word for a tuple the check refuses
		return c
	}
	c.Slot8 = uint8(tr.SlotByte())
	want := -1
	if h.SYN != nil {
		// synproxy encodes the client's MSS option, 0 (index 0) without one.
		var mss uint16
		if h.SYN.pkt.Options.HasMSS {
			mss = h.SYN.pkt.Options.MSS
		}
		w := cookie.MSSIndex(mss, v6)
		c.WantIndex, want = ptr(w), int(w)
	}
	verdict := func(count uint32, v cookie.Verdict) {
		c.CheckSlot, c.Valid = ptr(count), v.Valid
		// As cookie check --json: the age always (for a stale cookie the
		// 8-bit distance), the slot once the age is accepted.
		c.Age = ptr(v.Age)
		if !v.Valid {
			c.Reason = v.Reason.String()
		}
		if v.Valid || v.Reason == cookie.ReasonMSSIndex {
			c.Slot = ptr(v.Count)
		}
		if v.Valid {
			c.MSS, c.MSSIndex = v.MSS, ptr(v.Index)
			if want >= 0 && int(v.Index) != want {
				c.Note = fmt.Sprintf("decodes MSS index %d but the SYN's MSS maps to index %d", v.Index, want)
			}
		}
	}
	if o.HasCheckSlot {
		c.CheckSlotSource = "flag"
		verdict(o.CheckSlot, tr.Verdict)
		return c
	}
	// No count: look for a full slot with these low 8 bits whose hash #1
	// gives a valid MSS index (the SYN's, when the SYN was captured). Every
	// candidate has the cookie's slot byte, so the check sees age 0 and
	// decodes the index with that slot's hash #1.
	match := func(count uint32) (cookie.Verdict, bool) {
		tr, _ := key.Trace(t, sseq, isn, count)
		if want >= 0 {
			return tr.Verdict, int(tr.Index) == want
		}
		return tr.Verdict, tr.Index < 4
	}
	per := 4.0 // chance of a fluke per candidate, over 2^24
	if want >= 0 {
		per = 1
	}
	tried := 0
	at := sa.Time
	if !at.IsZero() {
		ws := cookie.WallSlot(at)
		for d := -searchWall; d <= searchWall; d++ {
			cand := ws + uint32(d)
			if uint8(cand) != c.Slot8 {
				continue
			}
			tried++
			if v, ok := match(cand); ok {
				verdict(cand, v)
				c.CheckSlotSource = "wall-clock"
				c.Note = joinNote(c.Note, fmt.Sprintf("slot inferred from the capture time (Unix minutes, as synproxy-lite counts); %d candidate(s) tried, fluke chance %.1e", tried, float64(tried)*per/(1<<24)))
				return c
			}
		}
	}
	for _, hz := range searchHZ {
		base := cookie.KernelSlot(cookie.InitialJiffies(hz), hz)
		first := base + uint32(c.Slot8-uint8(base))
		for cand := first; cand-base < searchUptime; cand += 256 {
			tried++
			if v, ok := match(cand); ok {
				verdict(cand, v)
				c.CheckSlotSource = fmt.Sprintf("kernel search (HZ %d)", hz)
				c.Note = joinNote(c.Note, fmt.Sprintf("slot inferred by search: a kernel at HZ %d about %s after boot; %d candidates tried, fluke chance %.1e; pass --check-slot for a definitive check",
					hz, time.Duration(cand-base)*time.Minute, tried, float64(tried)*per/(1<<24)))
				return c
			}
		}
	}
	c.Reason = "unknown-slot"
	c.Note = fmt.Sprintf("no slot with low byte %d matched near the capture time nor in a year of kernel uptime (%d candidates): a wrong key, a forged or non-cookie ISN, or an unusual clock; pass --check-slot to check a specific slot", c.Slot8, tried)
	return c
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
