package explain

import (
	"errors"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// Row is one 32-bit term of the cookie arithmetic.
type Row struct {
	Op    string `json:"op"`    // "", "+", "-" or "=": how the row joins the ones above
	Label string `json:"label"` // what the term is
	Value uint32 `json:"value"`
	Hex   string `json:"hex"`  // 8 hex digits
	Bits  string `json:"bits"` // 32 binary digits, bit 31 first
	Note  string `json:"note,omitempty"`
}

func row(op, label string, v uint32, note string) Row {
	return Row{Op: op, Label: label, Value: v, Hex: hex32(v), Bits: bits32(v), Note: note}
}

// Encoding is the cookie of a SYN term by term, as the kernel adds it up.
type Encoding struct {
	H0        uint32    `json:"h0"`
	H1        uint32    `json:"h1"`
	ClientSeq uint32    `json:"clientSeq"`
	Count     uint32    `json:"count"`
	MSSIn     uint16    `json:"mssIn"` // the MSS given to the encoder (0 = the SYN had none)
	Index     uint8     `json:"index"` // its table index
	MSS       uint16    `json:"mss"`   // the table MSS the index stands for
	Table     [4]uint16 `json:"table"`
	Rows      []Row     `json:"rows"`   // h0, client seq, slot<<24, (h1+idx) mod 2^24, = ISN
	Layout    Row       `json:"layout"` // ISN - h0 - seq: slot byte | (h1+idx) mod 2^24
	ISN       uint32    `json:"isn"`    // from cookie.Key.Encode
}

func (p *parsed) encoding() (Encoding, error) {
	in := p.in
	h0, h1, err := p.key.Hashes(p.tuple, in.Count)
	if err != nil {
		return Encoding{}, err
	}
	idx := cookie.MSSIndex(in.MSS, p.v6)
	table := cookie.MSSTable(p.v6)
	isn, err := p.key.Encode(p.tuple, in.ClientISN, in.MSS, in.Count)
	if err != nil {
		return Encoding{}, err
	}
	slotTerm := (in.Count & 0xff) << cookie.HashBits
	low := (h1 + uint32(idx)) & cookie.HashMask
	sum := h0 + in.ClientISN + slotTerm + low
	if sum != isn {
		// The rows are our restatement of the kernel's formula; Encode is the
		// code the daemon runs. They must agree.
		return Encoding{}, errors.New("explain: term sum " + hex32(sum) + " differs from cookie.Encode " + hex32(isn))
	}
	e := Encoding{
		H0: h0, H1: h1, ClientSeq: in.ClientISN, Count: in.Count, MSSIn: in.MSS,
		Index: idx, MSS: table[idx], Table: table, ISN: isn,
		Rows: []Row{
			row("", "h0 = SipHash(key[0:16], tuple, 0)", h0, "hash #0: the same in every minute"),
			row("+", "client ISN (the SYN's seq)", in.ClientISN, "added as is"),
			row("+", "slot mod 256 << 24", slotTerm, "slot "+utoa(in.Count)+", low byte "+utoa(in.Count&0xff)),
			row("+", "(h1 + idx) mod 2^24", low, "h1 = "+hex32(h1)+" (hash #1 of slot "+utoa(in.Count)+"), idx = "+utoa(uint32(idx))+" (MSS "+utoa(uint32(table[idx]))+")"),
			row("=", "cookie = SYN-ACK seq", isn, "mod 2^32"),
		},
		Layout: row("", "cookie - h0 - client ISN", isn-h0-in.ClientISN, "top 8 bits: slot; low 24: h1 + idx"),
	}
	return e, nil
}

// CheckTrace is the check of an ACK, step by step, as the kernel decodes it.
type CheckTrace struct {
	AckSeq    uint32   `json:"ackSeq"`
	AckAck    uint32   `json:"ackAck"`
	Cookie    uint32   `json:"cookie"`    // ack - 1
	ClientSeq uint32   `json:"clientSeq"` // seq - 1
	Count     uint32   `json:"count"`     // the checker's slot
	R         uint32   `json:"r"`         // cookie - h0 - seq
	SlotByte  uint32   `json:"slotByte"`  // r >> 24
	Age       uint32   `json:"age"`       // (count - slotByte) mod 256
	H1        uint32   `json:"h1"`        // hash #1 of slot count-age (when the age is accepted)
	Index     uint32   `json:"index"`     // (r - h1) mod 2^24 (when the age is accepted)
	Rows      []Row    `json:"rows"`
	Steps     []string `json:"steps"`
	Valid     bool     `json:"valid"`
	Reason    string   `json:"reason"` // "ok", "stale" or "MSS index"
	MSS       uint16   `json:"mss"`
}

// Check traces the check of an ACK with sequence number seq and
// acknowledgment number ack, arriving in slot count, on the input's tuple:
// cookie.Key.Trace, the check's own intermediate values, set out as rows
// and steps.
func (p *parsed) check(seq, ack, count uint32) (CheckTrace, error) {
	cookieV, sseq := ack-1, seq-1
	tr, err := p.key.Trace(p.tuple, sseq, cookieV, count)
	if err != nil {
		return CheckTrace{}, err
	}
	r, slotByte, age := tr.R, tr.SlotByte(), tr.Age
	c := CheckTrace{
		AckSeq: seq, AckAck: ack, Cookie: cookieV, ClientSeq: sseq, Count: count,
		R: r, SlotByte: slotByte, Age: age,
		Rows: []Row{
			row("", "ACK ack - 1 = cookie", cookieV, "ack "+utoa(ack)),
			row("-", "h0", tr.H0, "hash #0 of the tuple"),
			row("-", "ACK seq - 1 = client ISN", sseq, "seq "+utoa(seq)),
			row("=", "r", r, "top 8 bits: the slot the cookie was made in"),
		},
	}
	c.Steps = append(c.Steps,
		"slot byte = r >> 24 = "+utoa(slotByte)+"; now slot "+utoa(count)+" (low byte "+utoa(count&0xff)+"): age = "+utoa(age))
	if tr.Verdict.Reason == cookie.ReasonStale {
		c.Reason = "stale"
		c.Steps = append(c.Steps, "age "+utoa(age)+" ≥ 2: rejected as stale (a cookie lives in its slot and the next one)")
		return c, nil
	}
	h1 := tr.H1
	c.H1 = h1
	c.Index = tr.Index
	c.Rows = append(c.Rows,
		row("", "r mod 2^24", r&cookie.HashMask, ""),
		row("-", "h1 of slot "+utoa(count-age), h1&cookie.HashMask, "recomputed for the decoded slot"),
		row("=", "MSS index", c.Index, "must be 0..3"),
	)
	c.Steps = append(c.Steps, "age "+utoa(age)+" < 2: recompute h1 for slot "+utoa(count-age)+" = "+hex32(h1))
	if tr.Verdict.Valid {
		c.Valid, c.Reason, c.MSS = true, "ok", tr.Verdict.MSS
		c.Steps = append(c.Steps, "index = (r - h1) mod 2^24 = "+utoa(c.Index)+" < 4: valid, MSS "+utoa(uint32(c.MSS)))
	} else {
		c.Reason = "MSS index"
		c.Steps = append(c.Steps, "index = (r - h1) mod 2^24 = "+utoa(c.Index)+" ≥ 4: rejected (the hash does not match)")
	}
	return c, nil
}

// TSBits is the timestamp cookie: the options a cookie has no room for, in
// the low 6 bits of the SYN-ACK's TSval.
type TSBits struct {
	Present  bool             `json:"present"` // the client sent a timestamp, so the bits exist
	MsNow    uint32           `json:"msNow"`
	Bits     uint32           `json:"bits"`     // the 6 option bits
	BitsText string           `json:"bitsText"` // 6 binary digits, bit 5 first
	TSval    uint32           `json:"tsval"`
	Rows     []Row            `json:"rows"`
	WScale   string           `json:"wscale"`  // bits 3..0 explained
	SACK     bool             `json:"sack"`    // bit 4
	ECN      bool             `json:"ecn"`     // bit 5
	Decoded  cookie.TSOptions `json:"decoded"` // what the proxy reads back from the ACK's TSecr
	Note     string           `json:"note"`
}

// tsOptions are the client's options after the nft rule masks them: the rule
// has wscale, sack-perm and timestamp but can never carry ECN, and without a
// timestamp window scale and SACK are dropped.
func (p *parsed) tsOptions() cookie.TSOptions {
	in := p.in
	if !in.TS {
		return cookie.TSOptions{}
	}
	return cookie.TSOptions{WScale: in.WScale, HasWScale: in.HasWScale, SACK: in.SACK}
}

func (p *parsed) tsBits() TSBits {
	in := p.in
	t := TSBits{Present: in.TS, MsNow: in.MsNow}
	if !in.TS {
		t.Note = "The SYN has no timestamp option: there is nowhere to keep window scale, SACK or ECN, so the SYN-ACK offers none of them and the connection to the server is opened with MSS only."
		return t
	}
	o := p.tsOptions()
	t.Bits = o.Bits()
	t.BitsText = bits32(t.Bits)[26:]
	t.TSval = cookie.TSval(in.MsNow, o)
	if o.HasWScale {
		t.WScale = "bits 3..0 = " + utoa(uint32(o.WScale)) + ": the client's window-scale shift"
	} else {
		t.WScale = "bits 3..0 = 15: the SYN had no window-scale option"
	}
	t.SACK, t.ECN = t.Bits&0x10 != 0, t.Bits&0x20 != 0
	t.Rows = []Row{
		row("", "proxy clock (ms)", in.MsNow, ""),
		row("&", "clear the low 6 bits", ^uint32(cookie.TSBitsMask), ""),
		row("|", "option bits (ECN, SACK, wscale)", t.Bits, ""),
		row("=", "SYN-ACK TSval", t.TSval, "the client echoes it in every TSecr"),
	}
	t.Decoded = cookie.DecodeTSecr(t.TSval)
	t.Note = "The client echoes TSval in its ACK's TSecr; the proxy reads the low 6 bits back (the upper 26 are not checked). nft rules cannot enable ECN, so bit 5 stays 0 even when the SYN asks for ECN."
	return t
}

func hex32(v uint32) string {
	const digits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

func bits32(v uint32) string {
	var b [32]byte
	for i := 31; i >= 0; i-- {
		b[i] = '0' + byte(v&1)
		v >>= 1
	}
	return string(b[:])
}

func utoa(v uint32) string {
	if v == 0 {
		return "0"
	}
	var b [10]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = '0' + byte(v%10)
		v /= 10
	}
	return string(b[i:])
}
