package explain

import (
	"errors"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// LayoutField is one field of a cookie layout: bits Hi..Lo of its 32 bits.
type LayoutField struct {
	Name  string `json:"name"`
	Hi    uint8  `json:"hi"`
	Lo    uint8  `json:"lo"`
	Value uint32 `json:"value"` // the field's value in this cookie
	Text  string `json:"text"`  // what the value says
}

// Odds is the chance that one forged ACK passes: 2^-Exp.
type Odds struct {
	Case string `json:"case"`
	Exp  uint8  `json:"exp"`
}

// Kept is what a handshake under one profile hands the connection: the
// options the cookie brought back from the client's ACK.
type Kept struct {
	MSS       uint16 `json:"mss"`
	WScale    uint8  `json:"wscale"`
	HasWScale bool   `json:"hasWScale"`
	SACK      bool   `json:"sack"`
	// Window is the largest receive window the connection can announce
	// (65535 without window scaling) and Mbps the rate it allows on a
	// 40 ms round trip (Window bytes per round trip, rounded down).
	Window uint32 `json:"window"`
	Mbps   uint32 `json:"mbps"`
}

// Layout is the cookie of the input's SYN under one profile.
type Layout struct {
	Profile string `json:"profile"` // "linux" or "full" (cookie.Profile's name)
	ISN     uint32 `json:"isn"`     // the SYN-ACK's sequence number
	// Bits are the 32 bits as the check reads them: for the Linux profile
	// cookie - h0 - client ISN, for the full profile the MAC over the
	// unmasked fields. Fields lays them out, bit 31 first.
	Bits   string        `json:"bits"`
	Fields []LayoutField `json:"fields"`
	// TS says what the SYN-ACK's timestamp carries ("" without one).
	TS    string `json:"ts"`
	Odds  []Odds `json:"odds"`
	Kept  Kept   `json:"kept"`
	Check string `json:"check"` // the client's ACK checked under this profile: "valid" or the reason
}

// RTTms is the round trip the rates of Kept assume.
const RTTms = 40

func kept(mss uint16, o cookie.TSOptions) Kept {
	k := Kept{MSS: mss, WScale: o.WScale, HasWScale: o.HasWScale, SACK: o.SACK, Window: 65535}
	if o.HasWScale {
		k.Window <<= o.WScale
	}
	k.Mbps = uint32(uint64(k.Window) * 8 * 1000 / RTTms / 1e6)
	return k
}

func onOff(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// layouts returns the input's cookie under the Linux profile and under the
// full one, with key bit 0 (the first key of a ring).
func (p *parsed) layouts(s *Scenario) ([2]Layout, error) {
	in, e := p.in, s.Encoding
	ack := s.Check
	lin := Layout{Profile: cookie.ProfileLinux.String(), ISN: e.ISN, Bits: e.Layout.Bits,
		Fields: []LayoutField{
			{"slot", 31, 24, in.Count & 0xff, "slot " + utoa(in.Count) + " mod 256"},
			{"hash + MSS index", 23, 0, e.Layout.Value & cookie.HashMask, "(h1 + " + utoa(uint32(e.Index)) + ") mod 2^24: MSS " + utoa(uint32(e.MSS))},
		},
		Odds:  []Odds{{"one key", 29}, {"rotation grace (two keys)", 28}},
		Check: ack.Reason,
	}
	ts := p.tsOptions()
	if in.TS {
		lin.TS = "window scale, SACK, ECN (6 bits)"
	}
	lin.Kept = kept(e.MSS, ts)

	o := cookie.FullOptions{MSS: in.MSS, WScale: in.WScale, HasWScale: in.HasWScale, SACK: in.SACK, ECN: in.ECN}
	isn, tsb, err := p.key.EncodeFull(p.tuple, in.ClientISN, o, in.Count, 0)
	if err != nil {
		return [2]Layout{}, err
	}
	f := uint32(cookie.FullFields(isn))
	mac := isn >> cookie.FullFieldBits
	idx := f & cookie.FullFieldMSS
	ws := f & cookie.FullFieldWScale >> 3
	wsText := "shift " + utoa(ws)
	if ws == cookie.NoWScale {
		wsText = "15: no option"
	}
	full := Layout{Profile: cookie.ProfileFull.String(), ISN: isn, Bits: bits32(mac<<cookie.FullFieldBits | f),
		Fields: []LayoutField{
			{"MAC", 31, 11, mac, "SipHash of tuple, client ISN, slot and fields"},
			{"slot parity", 10, 10, f >> 10 & 1, "slot " + utoa(in.Count) + " mod 2"},
			{"key", 9, 9, f >> 9 & 1, "key bit"},
			{"ECN", 8, 8, f >> 8 & 1, onOff(f&cookie.FullFieldECN != 0)},
			{"SACK", 7, 7, f >> 7 & 1, onOff(f&cookie.FullFieldSACK != 0)},
			{"wscale", 6, 3, ws, wsText},
			{"MSS index", 2, 0, idx, "MSS " + utoa(uint32(cookie.FullMSSTable(p.v6)[idx]))},
		},
		Odds: []Odds{{"one key, no timestamps", 32 - cookie.FullFieldBits + 1}, {"rotation grace, no timestamps", 32 - cookie.FullFieldBits},
			{"with timestamps", 32 - cookie.FullFieldBits + 1 + cookie.FullTSBits}},
	}
	tsval := cookie.FullTSval(in.MsNow, tsb)
	if in.TS {
		full.TS = "8 more MAC bits: " + bits32(uint32(tsb))[24:]
	}
	// The client's ACK, as the page sends it (the same tampering, the same
	// delay), under the full profile; it echoes the TSval in its TSecr.
	v, err := p.key.CheckFull(p.tuple, ack.ClientSeq, isn+uint32(in.AckAckDelta), s.AckSlot, tsval, in.TS)
	if err != nil {
		return [2]Layout{}, err
	}
	full.Check = "valid"
	if !v.Valid {
		full.Check = v.Reason.String()
	}
	// What a valid ACK hands over: the options the cookie carries.
	v, err = p.key.CheckFull(p.tuple, in.ClientISN, isn, in.Count, tsval, in.TS)
	if err != nil || !v.Valid {
		return [2]Layout{}, errors.New("explain: the full profile refuses its own cookie")
	}
	full.Kept = kept(v.Options.MSS, cookie.TSOptions{WScale: v.Options.WScale, HasWScale: v.Options.HasWScale, SACK: v.Options.SACK})
	if lin.Check == "ok" {
		lin.Check = "valid"
	}
	return [2]Layout{lin, full}, nil
}
