package engine

import (
	"encoding/binary"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/monotonic"
)

// The policy's part of a worker's per-packet path.

// pass is the verdict of a packet the engine lets be: given back to the
// kernel, or on a tap driver dropped (the kernel has its own copy).
func (e *Engine) pass() driver.Verdict {
	if e.cfg.Tap {
		return driver.VerdictDrop
	}
	return driver.VerdictAccept
}

// limited is the verdict of a SYN over a limit: dropped, or in monitor
// mode let be (the limit was counted as hit).
func (e *Engine) limited() driver.Verdict {
	if e.pol.p.Mode == ModeMonitor {
		return e.pass()
	}
	return driver.VerdictDrop
}

// synPolicy decides a SYN before its cookie: let through to the service
// (on demand, not engaged) or dropped over its source's limit. done is
// false when the SYN goes on to be answered.
func (w *worker) synPolicy() (v driver.Verdict, done bool) {
	pol := w.e.pol
	if pol.p.Mode == ModeOnDemand && !pol.ctrs.Engaged.Load() {
		pol.ctrs.SYNPassed.Add(1)
		return w.e.pass(), true
	}
	if pol.synLim != nil {
		k := pol.key(w.seg.src)
		if !pol.synLim.take(&k, w.nowUS) {
			pol.ctrs.SYNLimited.Add(1)
			return w.e.limited(), true
		}
	}
	return 0, false
}

// reflectOK takes a token of the reflection budget of dst's prefix, and
// counts a SYN-ACK the budget withholds.
func (w *worker) reflectOK(dst netip.Addr) bool {
	pol := w.e.pol
	if pol.reflLm == nil {
		return true
	}
	k := pol.key(dst)
	if pol.reflLm.take(&k, w.nowUS) {
		return true
	}
	pol.ctrs.ReflectLimited.Add(1)
	return false
}

// monitorSYN counts the SYN-ACK a monitoring engine would send, and
// remembers the SYN (its tuple and sequence number, in the slot a SYN-ACK
// to re-send would take) so that its handshake ACK counts as one it would
// accept.
func (w *worker) monitorSYN(t cookie.Tuple) driver.Verdict {
	w.e.pol.ctrs.MonitorSYNACKs.Add(1)
	if w.pend != nil {
		p := &w.pend[w.flows.slot(&t, len(w.pend))]
		p.tuple, p.due, p.n = t, 0, 0 // never re-sent
		binary.BigEndian.PutUint32(p.pkt[:4], w.seg.seq)
	}
	return w.e.pass()
}

// monitorACK counts what a monitoring engine would do with an ACK: a
// segment of a connection it would have handed over, the handshake ACK of
// a SYN it saw (same tuple, the next sequence number: it would accept the
// cookie and hand the connection over), or an ACK it would refuse. The client answered the service's SYN-ACK, so
// no cookie is checked: the SYN seen stands for it.
func (w *worker) monitorACK(t cookie.Tuple) driver.Verdict {
	c, pc := &w.e.ctrs, &w.e.pol.ctrs
	if f := w.flows.find(&t, w.nowMS); f != nil {
		f.expires = w.nowMS + flowTTL
		c.Established.Add(1)
		return w.e.pass()
	}
	if w.pend != nil {
		if p := &w.pend[w.flows.slot(&t, len(w.pend))]; p.tuple == t && binary.BigEndian.Uint32(p.pkt[:4])+1 == w.seg.seq {
			p.tuple = cookie.Tuple{}
			pc.MonitorValid.Add(1)
			pc.MonitorHandoffs.Add(1)
			w.flows.add(&t, w.nowMS, w.nowMS)
			return w.e.pass()
		}
	}
	if w.seg.flags&flagFIN != 0 {
		c.Strays.Add(1)
	} else {
		pc.MonitorInvalid.Add(1)
	}
	return w.e.pass()
}

// monoMS is the workers' clock, in ms.
func monoMS() int64 {
	return monotonic.NS() / 1e6
}
