package inspect

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// segment is what the report keeps of one TCP segment.
type segment struct {
	Frame       int        `json:"frame"`
	Time        time.Time  `json:"time"`
	Seq         uint32     `json:"seq"`
	Ack         uint32     `json:"ack"`
	Flags       string     `json:"flags"`
	Window      uint16     `json:"window"`
	TTL         uint8      `json:"ttl"`
	Checksum    string     `json:"checksum"` // ok, partial (offload: pseudo-header only), bad
	Options     tcpOptions `json:"options"`
	Retransmits int        `json:"retransmits,omitempty"`

	pkt     packet.Packet // a copy (fields only; the bytes are not kept)
	optsRaw []byte
}

// tcpOptions are a segment's TCP options as the report shows them.
type tcpOptions struct {
	MSS        *uint16 `json:"mss,omitempty"`
	WScale     *uint8  `json:"wscale,omitempty"`
	WScaleRaw  *uint8  `json:"wscale_raw,omitempty"` // when clamped
	SACKPerm   bool    `json:"sack_perm,omitempty"`
	TSval      *uint32 `json:"tsval,omitempty"`
	TSecr      *uint32 `json:"tsecr,omitempty"`
	SACKBlocks int     `json:"sack_blocks,omitempty"`
	Malformed  bool    `json:"malformed,omitempty"`
	Raw        string  `json:"raw"`
}

func newOptions(o *packet.Options, raw []byte) tcpOptions {
	r := tcpOptions{SACKPerm: o.SACKPermitted, SACKBlocks: int(o.NumSACK), Malformed: o.Malformed, Raw: hex.EncodeToString(raw)}
	if o.HasMSS {
		r.MSS = ptr(o.MSS)
	}
	if o.HasWScale {
		r.WScale = ptr(o.WScale)
		if o.WScaleRaw != o.WScale {
			r.WScaleRaw = ptr(o.WScaleRaw)
		}
	}
	if o.HasTS {
		r.TSval, r.TSecr = ptr(o.TSval), ptr(o.TSecr)
	}
	return r
}

func ptr[T any](v T) *T { return &v }

func (o tcpOptions) String() string {
	var s []string
	if o.MSS != nil {
		s = append(s, fmt.Sprintf("mss %d", *o.MSS))
	}
	if o.SACKPerm {
		s = append(s, "sack-perm")
	}
	if o.TSval != nil {
		s = append(s, fmt.Sprintf("ts %d/%d", *o.TSval, *o.TSecr))
	}
	if o.WScale != nil {
		if o.WScaleRaw != nil {
			s = append(s, fmt.Sprintf("wscale %d (sent %d)", *o.WScale, *o.WScaleRaw))
		} else {
			s = append(s, fmt.Sprintf("wscale %d", *o.WScale))
		}
	}
	if o.SACKBlocks > 0 {
		s = append(s, fmt.Sprintf("sack %d blocks", o.SACKBlocks))
	}
	if o.Malformed {
		s = append(s, "MALFORMED")
	}
	if len(s) == 0 {
		return "no options"
	}
	return strings.Join(s, ", ")
}

func newSegment(frame int, ts time.Time, p *packet.Packet) *segment {
	s := &segment{Frame: frame, Time: ts, Seq: p.Seq, Ack: p.Ack, Flags: p.Flags.String(), Window: p.Window, TTL: p.TTL, pkt: *p}
	switch {
	case p.VerifyChecksums() == nil:
		s.Checksum = "ok"
	case p.PartialTCPChecksum() && (p.Version == 6 || packet.Sum(p.IPHeader(), 0) == 0xffff):
		s.Checksum = "partial"
	default:
		s.Checksum = "bad"
	}
	s.optsRaw = append([]byte(nil), p.TCPHeader()[packet.TCPHeaderLen:]...)
	s.Options = newOptions(&p.Options, s.optsRaw)
	return s
}

// handshake is one connection attempt: client SYN, SYN-ACK, client ACK.
type handshake struct {
	Type   string    `json:"type"` // "handshake"
	Client string    `json:"client"`
	Server string    `json:"server"`
	Family string    `json:"family"`
	SYN    *segment  `json:"syn,omitempty"`
	SYNACK *synack   `json:"synack,omitempty"`
	ACK    *ackInfo  `json:"ack,omitempty"`
	Cookie *cookieCk `json:"cookie,omitempty"`

	client, server netip.AddrPort
	order          int
}

type synack struct {
	segment
	ISN      uint32    `json:"isn"`
	TSCookie *tsCookie `json:"ts_cookie,omitempty"`
	Synproxy shape     `json:"synproxy"`
}

type tsCookie struct {
	Bits    uint8  `json:"bits"`
	WScale  *uint8 `json:"wscale,omitempty"` // nil: the SYN had no window scaling (nibble 15)
	SACK    bool   `json:"sack"`
	ECN     bool   `json:"ecn"`
	ClockMs uint32 `json:"clock_ms"` // TSval without the 6 option bits
	// Consistent: the bits say what the SYN offered and the SYN-ACK echoes
	// (only judged when the SYN is in the capture).
	Consistent *bool `json:"consistent,omitempty"`
}

type shape struct {
	Recognised bool     `json:"recognised"`
	Mismatches []string `json:"mismatches,omitempty"`
	Rule       string   `json:"rule,omitempty"` // what the rule has at least
}

type ackInfo struct {
	segment
	EchoesCookie bool `json:"echoes_cookie"` // ack = ISN+1 and seq = SYN seq+1
}

// cookieCk is the cookie check of a handshake, in the words of cookie
// check --json and of the metrics: slot is the slot the cookie was made in,
// age how many slots later it was checked, reason the reason label of
// synproxy_lite_cookie_invalid_total.
type cookieCk struct {
	// Profile is "full" for a full-profile cookie (see fullCk), empty for
	// the Linux profile's.
	Profile         string  `json:"profile,omitempty"`
	Slot8           uint8   `json:"slot_mod_256"`
	CheckSlot       *uint32 `json:"check_slot,omitempty"`
	CheckSlotSource string  `json:"check_slot_source,omitempty"` // flag, wall-clock, kernel search
	Valid           bool    `json:"valid"`
	Reason          string  `json:"reason,omitempty"` // stale, hash, tuple, unknown-slot; none when valid
	MSS             uint16  `json:"mss,omitempty"`
	MSSIndex        *uint8  `json:"mss_index,omitempty"`
	WantIndex       *uint8  `json:"syn_mss_index,omitempty"` // index the SYN's MSS maps to
	Slot            *uint32 `json:"slot,omitempty"`
	Age             *uint32 `json:"age,omitempty"`
	Note            string  `json:"note,omitempty"`
	*fullCk
}

type frameIssue struct {
	Type  string `json:"type"` // "malformed" or "skipped"
	Frame int    `json:"frame"`
	Error string `json:"error"`
}

type summary struct {
	Type       string `json:"type"` // "summary"
	Format     string `json:"format"`
	Frames     int    `json:"frames"`
	TCP        int    `json:"tcp"`
	Handshakes int    `json:"handshakes"`
	Malformed  int    `json:"malformed"`
	NotTCP     int    `json:"not_tcp"`
	Fragments  int    `json:"fragments"`
	Stopped    string `json:"stopped,omitempty"` // why reading ended early
}

// Report is what Read found in a capture: its handshakes, the frames it
// skipped, and a summary.
type Report struct {
	hs     []*handshake
	issues []frameIssue
	sum    summary
	keyed  bool  // cookies were checked (Options.Key was set)
	err    error // why reading stopped before the end of the capture
}

// CaptureError is a capture that could not be read to its end: a record
// cut short (a truncated file) or damaged. The report covers the frames
// before it.
type CaptureError struct {
	Frame int // the frame that could not be read
	Err   error
}

func (e *CaptureError) Error() string {
	if errors.Is(e.Err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("inspect: the capture ends in the middle of frame %d (the file is truncated); the report covers frames 1-%d", e.Frame, e.Frame-1)
	}
	return fmt.Sprintf("inspect: frame %d cannot be read (%v); the report covers frames 1-%d", e.Frame, e.Err, e.Frame-1)
}

func (e *CaptureError) Unwrap() error { return e.Err }

// Err returns a *CaptureError when the capture could not be read to its
// end, nil when it was (or when ctx ended the reading: see the summary).
func (rep *Report) Err() error { return rep.err }

// Options say how to check the cookies of a capture's handshakes. Nil
// Options, or a nil Key, check none.
type Options struct {
	// Key is the cookie secret (the kernel's syncookie_secret, in memory
	// order): every SYN-ACK's ISN is checked as a cookie for its SYN.
	Key *cookie.Key
	// Key6 is the secret for IPv6 handshakes when it differs (a kernel keeps
	// a second one, syncookie6_secret); nil means Key.
	Key6 *cookie.Key
	// CheckSlot is the time slot the cookies are checked in, used when
	// HasCheckSlot is set: jiffies_64 / (60·HZ) for a kernel, Unix time /
	// 60 for synproxy-lite. Without it the slot is searched for (see the
	// package documentation).
	CheckSlot    uint32
	HasCheckSlot bool
}

type flowKey struct{ client, server netip.AddrPort }

// Read reads a capture (pcap or pcapng) from r to its end, or until ctx is
// done, and reports every TCP handshake in it. Malformed frames are reported
// and skipped; an error means r is not a capture that can be read at all.
func Read(ctx context.Context, r io.Reader, o *Options) (*Report, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.Key6 == nil {
		opts.Key6 = opts.Key
	}
	cr, format, err := openCapture(r)
	if err != nil {
		return nil, err
	}
	rep := &Report{sum: summary{Type: "summary", Format: format}, keyed: opts.Key != nil}
	flows := map[flowKey]*handshake{}
	var p packet.Packet
	for frame := 1; ; frame++ {
		if ctx.Err() != nil {
			rep.sum.Stopped = ctx.Err().Error()
			break
		}
		data, ci, lt, err := cr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rep.sum.Stopped = fmt.Sprintf("frame %d: %v", frame, err)
			rep.issues = append(rep.issues, frameIssue{"malformed", frame, "capture record: " + err.Error()})
			rep.sum.Malformed++
			rep.err = &CaptureError{Frame: frame, Err: err}
			break
		}
		rep.sum.Frames++
		err = decodeFrame(&p, data, lt)
		switch {
		case err == nil:
		case errors.Is(err, packet.ErrNotTCP) || errors.Is(err, packet.ErrNotIP):
			rep.sum.NotTCP++
			continue
		case errors.Is(err, packet.ErrFragment):
			rep.sum.Fragments++
			rep.issues = append(rep.issues, frameIssue{"skipped", frame, err.Error()})
			continue
		default:
			msg := err.Error()
			if ci.CaptureLength < ci.Length {
				msg += fmt.Sprintf(" (captured %d of %d bytes: snap length)", ci.CaptureLength, ci.Length)
			}
			rep.sum.Malformed++
			rep.issues = append(rep.issues, frameIssue{"malformed", frame, msg})
			continue
		}
		rep.sum.TCP++
		rep.track(flows, frame, ci.Timestamp, &p)
	}
	for _, h := range rep.hs {
		h.analyse(&opts)
	}
	rep.sum.Handshakes = len(rep.hs)
	return rep, nil
}

// track files a TCP segment into its handshake.
func (rep *Report) track(flows map[flowKey]*handshake, frame int, ts time.Time, p *packet.Packet) {
	src, dst := p.SrcAddrPort(), p.DstAddrPort()
	syn, ack, rst := p.Flags&packet.FlagSYN != 0, p.Flags&packet.FlagACK != 0, p.Flags&packet.FlagRST != 0
	switch {
	case syn && !ack && !rst:
		k := flowKey{src, dst}
		if h := flows[k]; h != nil && h.SYN != nil && h.SYN.Seq == p.Seq && h.SYNACK == nil {
			h.SYN.Retransmits++
			return
		}
		h := &handshake{Type: "handshake", client: src, server: dst, order: len(rep.hs)}
		h.SYN = newSegment(frame, ts, p)
		flows[k] = h
		rep.hs = append(rep.hs, h)
	case syn && ack && !rst:
		k := flowKey{dst, src}
		h := flows[k]
		if h != nil && h.SYNACK != nil {
			if h.SYNACK.Seq == p.Seq {
				h.SYNACK.Retransmits++
				return
			}
			h = nil // a new exchange on the same tuple
		}
		if h == nil || (h.SYN != nil && p.Ack != h.SYN.Seq+1) {
			h = &handshake{Type: "handshake", client: dst, server: src, order: len(rep.hs)}
			flows[k] = h
			rep.hs = append(rep.hs, h)
		}
		h.SYNACK = &synack{segment: *newSegment(frame, ts, p), ISN: p.Seq}
	case ack && !syn && !rst:
		h := flows[flowKey{src, dst}]
		if h == nil || h.SYNACK == nil || h.ACK != nil || p.Ack != h.SYNACK.ISN+1 {
			return
		}
		a := &ackInfo{segment: *newSegment(frame, ts, p)}
		a.EchoesCookie = h.SYN == nil || p.Seq == h.SYN.Seq+1
		h.ACK = a
	}
}

// analyse fills in what can be said about the SYN-ACK and, with a key, the
// cookie.
func (h *handshake) analyse(o *Options) {
	h.Client, h.Server = h.client.String(), h.server.String()
	h.Family = "ipv4"
	if h.client.Addr().Is6() {
		h.Family = "ipv6"
	}
	if h.SYNACK == nil {
		return
	}
	sa := h.SYNACK
	var syn *packet.Packet
	if h.SYN != nil {
		syn = &h.SYN.pkt
	}
	if sa.pkt.Options.HasTS {
		tsval := sa.pkt.Options.TSval
		d := cookie.DecodeTSecr(tsval)
		tc := &tsCookie{Bits: uint8(tsval & cookie.TSBitsMask), SACK: d.SACK, ECN: d.ECN, ClockMs: tsval &^ cookie.TSBitsMask}
		if d.HasWScale {
			tc.WScale = ptr(d.WScale)
		}
		if syn != nil {
			c := &syn.Options
			want := cookie.TSOptions{HasWScale: c.HasWScale && sa.pkt.Options.HasWScale, WScale: c.WScale,
				SACK: c.SACKPermitted && sa.pkt.Options.SACKPermitted,
				ECN:  sa.pkt.Flags&packet.FlagECE != 0}
			tc.Consistent = ptr(want.Bits() == uint32(tc.Bits))
		}
		sa.TSCookie = tc
	}
	sa.Synproxy = newShape(sa.pkt.SynproxyShape(syn, sa.optsRaw))
	if o.Key != nil {
		h.Cookie = checkCookie(o, h)
		if !h.Cookie.Valid {
			// Not a Linux-profile cookie: perhaps the full profile's.
			if c := checkFullCookie(o, h); c != nil {
				h.Cookie = c
			}
		}
	}
}

// newShape is the report's form of a packet.Shape: the rule as the words of
// an nft synproxy statement.
func newShape(s packet.Shape) shape {
	r := shape{Recognised: s.Recognised, Mismatches: s.Mismatches}
	if s.Recognised {
		var rule []string
		if s.Rule.HasMSS {
			rule = append(rule, fmt.Sprintf("mss %d", s.Rule.MSS))
		}
		if s.Rule.HasWScale {
			rule = append(rule, fmt.Sprintf("wscale %d", s.Rule.WScale))
		}
		if s.Rule.Timestamp {
			rule = append(rule, "timestamp")
		}
		if s.Rule.SACKPerm {
			rule = append(rule, "sack-perm")
		}
		r.Rule = strings.Join(rule, " ")
	}
	return r
}
