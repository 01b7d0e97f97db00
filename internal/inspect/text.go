package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// WriteJSON writes the report as one JSON object per line: each malformed or
// skipped frame, each handshake, and the summary.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, is := range rep.issues {
		if err := enc.Encode(is); err != nil {
			return err
		}
	}
	for _, h := range rep.hs {
		if err := enc.Encode(h); err != nil {
			return err
		}
	}
	return enc.Encode(rep.sum)
}

// WriteText writes the report for a reader: the skipped frames, each
// handshake with its segments, timestamp cookie, synproxy shape and cookie
// check, and a summary line.
func (rep *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	rep.writeText(ew)
	return ew.err
}

// errWriter keeps the first write error and drops later writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

func (rep *Report) writeText(w io.Writer) {
	for _, is := range rep.issues {
		if is.Type == "skipped" {
			fmt.Fprintf(w, "frame %d: skipped: %s\n", is.Frame, is.Error)
		} else {
			fmt.Fprintf(w, "frame %d: malformed, skipped: %s\n", is.Frame, is.Error)
		}
	}
	for i, h := range rep.hs {
		fmt.Fprintf(w, "handshake %d: %s -> %s (%s)\n", i+1, h.Client, h.Server, strings.ToUpper(h.Family[:2])+h.Family[2:])
		if h.SYN != nil {
			writeSeg(w, "SYN", h.SYN)
		} else {
			fmt.Fprintln(w, "  SYN      not in the capture")
		}
		if sa := h.SYNACK; sa != nil {
			writeSeg(w, "SYN-ACK", &sa.segment)
			if tc := sa.TSCookie; tc != nil {
				ws := "no window scaling"
				if tc.WScale != nil {
					ws = fmt.Sprintf("wscale %d", *tc.WScale)
				}
				fmt.Fprintf(w, "           timestamp cookie: bits %#02x = %s, SACK %v, ECN %v; clock %d ms", tc.Bits, ws, tc.SACK, tc.ECN, tc.ClockMs)
				if tc.Consistent != nil {
					if *tc.Consistent {
						fmt.Fprint(w, "; matches the SYN's options")
					} else {
						fmt.Fprint(w, "; does NOT match the SYN's options")
					}
				}
				fmt.Fprintln(w)
			} else {
				fmt.Fprintln(w, "           no timestamp: window scale, SACK and ECN are not remembered")
			}
			if sa.Synproxy.Recognised {
				fmt.Fprintf(w, "           synproxy shape: recognised (rule has: %s)\n", orNone(sa.Synproxy.Rule))
			} else {
				fmt.Fprintf(w, "           synproxy shape: not recognised: %s\n", strings.Join(sa.Synproxy.Mismatches, "; "))
			}
		} else {
			fmt.Fprintln(w, "  SYN-ACK  not in the capture")
		}
		if h.ACK != nil {
			writeSeg(w, "ACK", &h.ACK.segment)
			if !h.ACK.EchoesCookie {
				fmt.Fprintln(w, "           its seq is not the SYN's seq + 1")
			}
		}
		if c := h.Cookie; c != nil && c.fullCk != nil {
			writeFullCookie(w, c)
		} else if c != nil {
			fmt.Fprintf(w, "  cookie   slot %d (mod 256)", c.Slot8)
			if c.CheckSlot != nil {
				fmt.Fprintf(w, ", checked in slot %d (%s)", *c.CheckSlot, c.CheckSlotSource)
			}
			if c.Valid {
				fmt.Fprintf(w, ": valid, MSS %d (index %d), made in slot %d, age %d\n", c.MSS, *c.MSSIndex, *c.Slot, *c.Age)
			} else {
				fmt.Fprintf(w, ": NOT valid (%s)\n", c.Reason)
			}
			if c.Note != "" {
				fmt.Fprintf(w, "           %s\n", c.Note)
			}
		} else if h.SYNACK != nil && !rep.keyed {
			fmt.Fprintln(w, "  cookie   not checked (no --key)")
		}
	}
	s := rep.sum
	fmt.Fprintf(w, "%s: %d frames, %d TCP, %d handshakes, %d malformed, %d fragments, %d not TCP\n",
		s.Format, s.Frames, s.TCP, s.Handshakes, s.Malformed, s.Fragments, s.NotTCP)
	if s.Stopped != "" {
		fmt.Fprintf(w, "reading stopped early: %s\n", s.Stopped)
	}
}

func orNone(s string) string {
	if s == "" {
		return "no options"
	}
	return s
}

func writeSeg(w io.Writer, name string, s *segment) {
	fmt.Fprintf(w, "  %-8s frame %d %s seq %d", name, s.Frame, s.Time.UTC().Format("15:04:05.000000"), s.Seq)
	if s.pkt.Flags&packet.FlagACK != 0 {
		fmt.Fprintf(w, " ack %d", s.Ack)
	}
	fmt.Fprintf(w, " %s win %d ttl %d, %s, checksum %s", s.Flags, s.Window, s.TTL, s.Options, s.Checksum)
	if s.Retransmits > 0 {
		fmt.Fprintf(w, ", %d retransmission(s)", s.Retransmits)
	}
	fmt.Fprintln(w)
}
