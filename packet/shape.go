package packet

import "strconv"

// Shape is how a SYN-ACK compares with the ones the kernel's synproxy sends
// (see Packet.SynproxyShape).
type Shape struct {
	// Recognised: nothing in the SYN-ACK differs from synproxy's.
	Recognised bool
	// Mismatches says, one entry each, what differs.
	Mismatches []string
	// Rule is what the synproxy rule has at least, read from the SYN-ACK's
	// options (MSS, WScale, Timestamp, SACKPerm); set when Recognised.
	Rule Rule
}

// SynproxyShape compares the SYN-ACK p with what the kernel's synproxy sends,
// as the builders write it: IPv4 ID 0 and DF only, no TOS, traffic class,
// flow label, IP options or extension headers; window 0; flags SYN|ACK (and
// ECE); no urgent pointer, reserved bits or payload; options in synproxy's
// order and padding (opts are the SYN-ACK's TCP option bytes), window scale,
// SACK-permitted and ECE only with timestamps. With the SYN it answers (syn
// not nil) it also checks the acknowledgment number and that the SYN-ACK
// offers nothing the SYN did not ask for, and echoes its TSval.
func (p *Packet) SynproxyShape(syn *Packet, opts []byte) Shape {
	var bad []string
	miss := func(s string) { bad = append(bad, s) }
	if p.Version == 4 {
		if p.ID != 0 {
			miss("IPv4 ID " + itoa(uint64(p.ID)) + " (synproxy: 0)")
		}
		if p.IPFlags != IPv4DontFragment {
			miss("IPv4 flags " + hexNum(uint64(p.IPFlags)) + " (synproxy: DF only)")
		}
		if p.TOS != 0 {
			miss("TOS " + hexNum(uint64(p.TOS)) + " (synproxy: 0)")
		}
		if p.TCPOffset-p.IPOffset != IPv4HeaderLen {
			miss("IPv4 options")
		}
	} else {
		if p.TOS != 0 || p.FlowLabel != 0 {
			miss("traffic class " + hexNum(uint64(p.TOS)) + ", flow label " + hexNum(uint64(p.FlowLabel)) + " (synproxy: 0, 0)")
		}
		if p.ExtHeaders != 0 {
			miss("IPv6 extension headers")
		}
	}
	if p.Window != 0 {
		miss("window " + itoa(uint64(p.Window)) + " (synproxy: 0)")
	}
	if f := p.Flags &^ FlagECE; f != FlagSYN|FlagACK {
		miss("flags " + p.Flags.String())
	}
	if p.Urgent != 0 || p.Reserved != 0 {
		miss("urgent pointer or reserved bits set")
	}
	if p.PayloadOffset != p.End {
		miss("payload")
	}
	o := &p.Options
	want, err := AppendOptions(nil, o)
	if err != nil || o.Malformed || o.NumSACK != 0 || string(want) != string(opts) {
		miss("option layout " + hexBytes(opts) + " is not synproxy's order and padding")
	}
	if o.HasWScale && !o.HasTS {
		miss("window scale without timestamps")
	}
	if o.SACKPermitted && !o.HasTS {
		miss("SACK-permitted without timestamps")
	}
	if p.Flags&FlagECE != 0 && !o.HasTS {
		miss("ECE without timestamps")
	}
	if syn != nil {
		c := &syn.Options
		if p.Ack != syn.Seq+1 {
			miss("ack " + itoa(uint64(p.Ack)) + " is not the SYN's seq + 1")
		}
		if o.HasMSS && !c.HasMSS {
			miss("MSS option although the SYN had none")
		}
		if o.HasTS && !c.HasTS {
			miss("timestamps although the SYN had none")
		}
		if o.HasTS && c.HasTS && o.TSecr != c.TSval {
			miss("TSecr " + itoa(uint64(o.TSecr)) + " does not echo the SYN's TSval " + itoa(uint64(c.TSval)))
		}
		if o.HasWScale && !c.HasWScale {
			miss("window scale although the SYN had none")
		}
		if o.SACKPermitted && !c.SACKPermitted {
			miss("SACK-permitted although the SYN had none")
		}
		if p.Flags&FlagECE != 0 && syn.Flags&(FlagECE|FlagCWR) != FlagECE|FlagCWR {
			miss("ECE although the SYN did not ask for ECN")
		}
	}
	s := Shape{Recognised: len(bad) == 0, Mismatches: bad}
	if s.Recognised {
		s.Rule = Rule{Timestamp: o.HasTS, SACKPerm: o.SACKPermitted}
		if o.HasMSS {
			s.Rule.MSS, s.Rule.HasMSS = o.MSS, true
		}
		if o.HasWScale {
			s.Rule.WScale, s.Rule.HasWScale = o.WScale, true
		}
	}
	return s
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// hexNum writes v as fmt's %#x does.
func hexNum(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

// hexBytes writes b as fmt's %x does.
func hexBytes(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, x := range b {
		s = append(s, digits[x>>4], digits[x&15])
	}
	return string(s)
}
