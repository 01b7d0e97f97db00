package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

func init() {
	register("inspect", "list the TCP handshakes of a pcap/pcapng capture and decode their SYN cookies", runInspect)
}

const inspectUsage = `usage:
  synproxy-lite inspect FILE [--key HEX64 [--key6 HEX64]] [--count N] [--json]

Reads a capture (pcap or pcapng; Ethernet, raw IP, Linux cooked or loopback
link types) and prints every TCP handshake in it: the SYN's options; the
SYN-ACK's ISN and TSval decoded as far as possible without the key (the
timestamp-cookie bits, whether it echoes the SYN's options, whether it has
the shape of an nftables synproxy SYN-ACK); the client's ACK.

--key HEX64  the cookie secret (the kernel's syncookie_secret, in memory
             order): checks every SYN-ACK's ISN as a cookie for its SYN.
--key6 HEX64 the secret for IPv6 handshakes when it differs (a kernel keeps
             a second one, syncookie6_secret); default: --key.
--count N    the time slot of the handshakes: jiffies_64 / (60·HZ) for a
             kernel, Unix time / 60 for synproxy-lite. A cookie is valid in
             the slot it was made in and the next. Without --count the check
             recovers the slot's low 8 bits from the cookie and searches the
             full slot near the capture's wall-clock time and over kernel
             uptimes up to a year (HZ 100, 250, 300, 1000); a match found that
             way is reported as inferred, with its chance of being a fluke.
--json       one JSON object per line: each handshake, each malformed frame,
             and a summary.

Malformed and truncated frames are reported and skipped.
`

type inspectOpts struct {
	file     string
	key      *cookie.Key
	key6     *cookie.Key
	count    uint32
	hasCount bool
	json     bool
}

func parseInspectArgs(args []string) (inspectOpts, error) {
	var o inspectOpts
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	key := fs.String("key", "", "")
	key6 := fs.String("key6", "", "")
	count := fs.String("count", "", "")
	fs.BoolVar(&o.json, "json", false, "")
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		return o, fmt.Errorf("want one capture file, got %d", len(files))
	}
	o.file = files[0]
	if *key != "" {
		k, err := cookie.ParseKey(*key)
		if err != nil {
			return o, fmt.Errorf("--key: %v", err)
		}
		o.key, o.key6 = &k, &k
	}
	if *key6 != "" {
		if o.key == nil {
			return o, errors.New("--key6 needs --key")
		}
		k, err := cookie.ParseKey(*key6)
		if err != nil {
			return o, fmt.Errorf("--key6: %v", err)
		}
		o.key6 = &k
	}
	if *count != "" {
		c, err := parseUint("count", *count, math.MaxUint32)
		if err != nil {
			return o, err
		}
		o.count, o.hasCount = uint32(c), true
	}
	return o, nil
}

func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseInspectArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, inspectUsage)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite inspect: %v\n%s", err, inspectUsage)
		return exitUsage
	}
	f, err := os.Open(o.file)
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite inspect: %v\n", err)
		return exitFailure
	}
	defer f.Close()
	rep, err := inspectCapture(ctx, f, &o)
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite inspect: %s: %v\n", o.file, err)
		return exitFailure
	}
	if o.json {
		rep.writeJSON(stdout)
	} else {
		rep.writeText(stdout, &o)
	}
	return exitOK
}

// captureReader reads frames with the link type each was captured on.
type captureReader interface {
	next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error)
}

type pcapReader struct{ r *pcapgo.Reader }

func (p pcapReader) next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := p.r.ReadPacketData()
	return data, ci, p.r.LinkType(), err
}

type ngReader struct{ r *pcapgo.NgReader }

func (p ngReader) next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := p.r.ReadPacketData()
	if err != nil {
		return nil, ci, 0, err
	}
	intf, ierr := p.r.Interface(ci.InterfaceIndex)
	if ierr != nil {
		return data, ci, p.r.LinkType(), nil
	}
	return data, ci, intf.LinkType, nil
}

// errReaderPanic wraps a panic of the capture readers: gopacket's pcapng
// reader divides by a zero timestamp resolution on some malformed files.
var errReaderPanic = errors.New("capture reader failed on a malformed file")

func recoverReader(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", errReaderPanic, r)
	}
}

// safeReader turns panics of the reader it wraps into errors.
type safeReader struct{ r captureReader }

func (s safeReader) next() (data []byte, ci gopacket.CaptureInfo, lt layers.LinkType, err error) {
	defer recoverReader(&err)
	return s.r.next()
}

// openCapture tells pcap from pcapng by the first four bytes.
func openCapture(r io.Reader) (cr captureReader, format string, err error) {
	defer recoverReader(&err)
	cr, format, err = openCaptureUnsafe(r)
	if err == nil {
		cr = safeReader{cr}
	}
	return cr, format, err
}

func openCaptureUnsafe(r io.Reader) (captureReader, string, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, "", fmt.Errorf("not a capture file: %v", err)
	}
	switch binary.BigEndian.Uint32(magic) {
	case 0x0a0d0d0a:
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, "", fmt.Errorf("pcapng: %v", err)
		}
		return ngReader{ng}, "pcapng", nil
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, "", fmt.Errorf("pcap: %v", err)
		}
		return pcapReader{pr}, "pcap", nil
	}
	return nil, "", fmt.Errorf("not a pcap or pcapng file (magic %x)", magic)
}

// linkTypeLinuxSLL2 is LINKTYPE_LINUX_SLL2 (276, what "tcpdump -i any"
// writes today) as gopacket delivers it: its LinkType is 8 bits wide, so 276
// arrives as 20, a value no other link type uses.
const linkTypeLinuxSLL2 = layers.LinkType(276 & 0xff)

var errLinkType = errors.New("unsupported link type")

// decodeFrame decodes a captured frame of link type lt into p.
func decodeFrame(p *packet.Packet, data []byte, lt layers.LinkType) error {
	switch lt {
	case layers.LinkTypeEthernet:
		return p.Decode(data, packet.LinkEthernet)
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12, 14: // 12/14: DLT_RAW on some systems
		return p.Decode(data, packet.LinkIP)
	case layers.LinkTypeLinuxSLL: // 16-byte cooked header, protocol at 14
		if len(data) < 16 {
			return p.Decode(nil, packet.LinkIP)
		}
		if et := binary.BigEndian.Uint16(data[14:]); et != packet.EtherTypeIPv4 && et != packet.EtherTypeIPv6 {
			return packet.ErrNotIP
		}
		return p.Decode(data[16:], packet.LinkIP)
	case linkTypeLinuxSLL2: // 20-byte cooked header, protocol at 0
		if len(data) < 20 {
			return p.Decode(nil, packet.LinkIP)
		}
		if et := binary.BigEndian.Uint16(data); et != packet.EtherTypeIPv4 && et != packet.EtherTypeIPv6 {
			return packet.ErrNotIP
		}
		return p.Decode(data[20:], packet.LinkIP)
	case layers.LinkTypeNull, layers.LinkTypeLoop: // 4-byte address family
		if len(data) < 4 {
			return p.Decode(nil, packet.LinkIP)
		}
		return p.Decode(data[4:], packet.LinkIP)
	}
	return fmt.Errorf("%w %d", errLinkType, lt)
}

// segment is what the report keeps of one TCP segment.
type segment struct {
	Frame       int       `json:"frame"`
	Time        time.Time `json:"time"`
	Seq         uint32    `json:"seq"`
	Ack         uint32    `json:"ack"`
	Flags       string    `json:"flags"`
	Window      uint16    `json:"window"`
	TTL         uint8     `json:"ttl"`
	Checksum    string    `json:"checksum"` // ok, partial (offload: pseudo-header only), bad
	Options     options   `json:"options"`
	Retransmits int       `json:"retransmits,omitempty"`

	pkt     packet.Packet // a copy (fields only; the bytes are not kept)
	optsRaw []byte
}

type options struct {
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

func newOptions(o *packet.Options, raw []byte) options {
	r := options{SACKPerm: o.SACKPermitted, SACKBlocks: int(o.NumSACK), Malformed: o.Malformed, Raw: hex.EncodeToString(raw)}
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

func (o options) String() string {
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

type cookieCk struct {
	Slot8       uint8   `json:"slot_mod_256"`
	Count       *uint32 `json:"count,omitempty"`
	CountSource string  `json:"count_source,omitempty"` // flag, wall-clock, kernel search
	Valid       bool    `json:"valid"`
	Reason      string  `json:"reason"`
	MSS         uint16  `json:"mss,omitempty"`
	MSSIndex    *uint8  `json:"mss_index,omitempty"`
	WantIndex   *uint8  `json:"syn_mss_index,omitempty"` // index the SYN's MSS maps to
	MadeIn      *uint32 `json:"made_in,omitempty"`
	Age         *uint32 `json:"age,omitempty"`
	Note        string  `json:"note,omitempty"`
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

type report struct {
	hs     []*handshake
	issues []frameIssue
	sum    summary
}

type flowKey struct{ client, server netip.AddrPort }

func inspectCapture(ctx context.Context, r io.Reader, o *inspectOpts) (*report, error) {
	cr, format, err := openCapture(r)
	if err != nil {
		return nil, err
	}
	rep := &report{sum: summary{Type: "summary", Format: format}}
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
		h.analyse(o)
	}
	rep.sum.Handshakes = len(rep.hs)
	return rep, nil
}

// track files a TCP segment into its handshake.
func (rep *report) track(flows map[flowKey]*handshake, frame int, ts time.Time, p *packet.Packet) {
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
func (h *handshake) analyse(o *inspectOpts) {
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
	sa.Synproxy = synproxyShape(syn, &sa.pkt, sa.optsRaw)
	if o.key != nil {
		h.Cookie = checkCookie(o, h)
	}
}

// synproxyShape compares a SYN-ACK with what the kernel's synproxy sends
// (IP header, window, flags, option order and padding, options consistent
// with the SYN's).
func synproxyShape(syn, sa *packet.Packet, raw []byte) shape {
	var bad []string
	miss := func(format string, a ...any) { bad = append(bad, fmt.Sprintf(format, a...)) }
	if sa.Version == 4 {
		if sa.ID != 0 {
			miss("IPv4 ID %d (synproxy: 0)", sa.ID)
		}
		if sa.IPFlags != packet.IPv4DontFragment {
			miss("IPv4 flags %#x (synproxy: DF only)", sa.IPFlags)
		}
		if sa.TOS != 0 {
			miss("TOS %#x (synproxy: 0)", sa.TOS)
		}
		if sa.TCPOffset-sa.IPOffset != packet.IPv4HeaderLen {
			miss("IPv4 options")
		}
	} else {
		if sa.TOS != 0 || sa.FlowLabel != 0 {
			miss("traffic class %#x, flow label %#x (synproxy: 0, 0)", sa.TOS, sa.FlowLabel)
		}
		if sa.ExtHeaders != 0 {
			miss("IPv6 extension headers")
		}
	}
	if sa.Window != 0 {
		miss("window %d (synproxy: 0)", sa.Window)
	}
	if f := sa.Flags &^ packet.FlagECE; f != packet.FlagSYN|packet.FlagACK {
		miss("flags %v", sa.Flags)
	}
	if sa.Urgent != 0 || sa.Reserved != 0 {
		miss("urgent pointer or reserved bits set")
	}
	if sa.PayloadOffset != sa.End {
		miss("payload")
	}
	o := &sa.Options
	want, err := packet.AppendOptions(nil, o)
	if err != nil || o.Malformed || o.NumSACK != 0 || string(want) != string(raw) {
		miss("option layout %x is not synproxy's order and padding", raw)
	}
	if o.HasWScale && !o.HasTS {
		miss("window scale without timestamps")
	}
	if o.SACKPermitted && !o.HasTS {
		miss("SACK-permitted without timestamps")
	}
	if sa.Flags&packet.FlagECE != 0 && !o.HasTS {
		miss("ECE without timestamps")
	}
	if syn != nil {
		c := &syn.Options
		if sa.Ack != syn.Seq+1 {
			miss("ack %d is not the SYN's seq + 1", sa.Ack)
		}
		if o.HasMSS && !c.HasMSS {
			miss("MSS option although the SYN had none")
		}
		if o.HasTS && !c.HasTS {
			miss("timestamps although the SYN had none")
		}
		if o.HasTS && c.HasTS && o.TSecr != c.TSval {
			miss("TSecr %d does not echo the SYN's TSval %d", o.TSecr, c.TSval)
		}
		if o.HasWScale && !c.HasWScale {
			miss("window scale although the SYN had none")
		}
		if o.SACKPermitted && !c.SACKPermitted {
			miss("SACK-permitted although the SYN had none")
		}
		if sa.Flags&packet.FlagECE != 0 && syn.Flags&(packet.FlagECE|packet.FlagCWR) != packet.FlagECE|packet.FlagCWR {
			miss("ECE although the SYN did not ask for ECN")
		}
	}
	s := shape{Recognised: len(bad) == 0, Mismatches: bad}
	if s.Recognised {
		var rule []string
		if o.HasMSS {
			rule = append(rule, fmt.Sprintf("mss %d", o.MSS))
		}
		if o.HasWScale {
			rule = append(rule, fmt.Sprintf("wscale %d", o.WScale))
		}
		if o.HasTS {
			rule = append(rule, "timestamp")
		}
		if o.SACKPermitted {
			rule = append(rule, "sack-perm")
		}
		s.Rule = strings.Join(rule, " ")
	}
	return s
}

// Search bounds for a count that --count does not give.
const (
	searchUptime = 365 * 24 * 60 // slots: a year of kernel uptime
	searchWall   = 2             // slots either side of the capture's wall-clock slot
)

var searchHZ = []uint32{250, 1000, 300, 100}

func checkCookie(o *inspectOpts, h *handshake) *cookieCk {
	sa := h.SYNACK
	t := cookie.Tuple{Client: h.client, Server: h.server}
	v6 := t.Is6()
	key := o.key
	if v6 {
		key = o.key6
	}
	sseq := sa.Ack - 1
	if h.SYN != nil {
		sseq = h.SYN.Seq
	}
	isn := sa.ISN
	c := &cookieCk{}
	h0, _, err := key.Hashes(t, 0)
	if err != nil {
		c.Reason, c.Note = "error", err.Error()
		return c
	}
	r := isn - h0 - sseq
	c.Slot8 = uint8(r >> 24)
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
	verdict := func(count uint32) {
		v, _ := key.Check(t, sseq, isn, count)
		c.Count, c.Valid, c.Reason = ptr(count), v.Valid, v.Reason.String()
		if v.Valid {
			c.MSS, c.MSSIndex, c.MadeIn, c.Age = v.MSS, ptr(v.Index), ptr(v.Count), ptr(v.Age)
			if want >= 0 && int(v.Index) != want {
				c.Note = fmt.Sprintf("decodes MSS index %d but the SYN's MSS maps to index %d", v.Index, want)
			}
		}
	}
	if o.hasCount {
		c.CountSource = "flag"
		verdict(o.count)
		return c
	}
	// No --count: look for a full slot with these low 8 bits whose hash #1
	// gives a valid MSS index (the SYN's, when the SYN was captured).
	match := func(count uint32) bool {
		_, h1, _ := key.Hashes(t, count)
		idx := (r - h1) & 0xffffff
		if want >= 0 {
			return int(idx) == want
		}
		return idx < 4
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
			if match(cand) {
				verdict(cand)
				c.CountSource = "wall-clock"
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
			if match(cand) {
				verdict(cand)
				c.CountSource = fmt.Sprintf("kernel search (HZ %d)", hz)
				c.Note = joinNote(c.Note, fmt.Sprintf("slot inferred by search: a kernel at HZ %d about %s after boot; %d candidates tried, fluke chance %.1e; pass --count for a definitive check",
					hz, time.Duration(cand-base)*time.Minute, tried, float64(tried)*per/(1<<24)))
				return c
			}
		}
	}
	c.Reason = "unknown-count"
	c.Note = fmt.Sprintf("no slot with low byte %d matched near the capture time nor in a year of kernel uptime (%d candidates): a wrong key, a forged or non-cookie ISN, or an unusual clock; pass --count to check a specific slot", c.Slot8, tried)
	return c
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func (rep *report) writeJSON(w io.Writer) {
	enc := json.NewEncoder(w)
	for _, is := range rep.issues {
		enc.Encode(is)
	}
	for _, h := range rep.hs {
		enc.Encode(h)
	}
	enc.Encode(rep.sum)
}

func (rep *report) writeText(w io.Writer, o *inspectOpts) {
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
		if c := h.Cookie; c != nil {
			fmt.Fprintf(w, "  cookie   slot %d (mod 256)", c.Slot8)
			if c.Count != nil {
				fmt.Fprintf(w, ", count %d (%s)", *c.Count, c.CountSource)
			}
			if c.Valid {
				fmt.Fprintf(w, ": valid, MSS %d (index %d), made in slot %d, age %d\n", c.MSS, *c.MSSIndex, *c.MadeIn, *c.Age)
			} else {
				fmt.Fprintf(w, ": NOT valid (%s)\n", c.Reason)
			}
			if c.Note != "" {
				fmt.Fprintf(w, "           %s\n", c.Note)
			}
		} else if h.SYNACK != nil && o.key == nil {
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
