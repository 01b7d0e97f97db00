package explain

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/dchest/siphash"
	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// Claim is a statement often found in write-ups about SYN cookies, what the
// kernel really does, and a demonstration computed from the page's input.
type Claim struct {
	ID     string   `json:"id"`
	Claim  string   `json:"claim"`
	Kernel string   `json:"kernel"`
	Demo   []string `json:"demo"` // lines computed by the cookie package
	// Verdict is "false", "misleading" or "true (with the mechanism)".
	Verdict string `json:"verdict"`
	// Shown reports that the demonstration contradicts (or, for a true
	// claim, confirms) the claim with this input; false means the input is
	// a corner case where the demonstration does not apply.
	Shown bool `json:"shown"`
}

// Claims checks the common claims with the cookie package and the input.
func Claims(in Input) ([]Claim, error) {
	p, err := parse(in)
	if err != nil {
		return nil, err
	}
	in = p.in
	// The claims are about the kernel's synproxy: its handshake.
	in.Handshake = HandshakeKernel
	s, err := Build(in)
	if err != nil {
		return nil, err
	}
	isn := s.Encoding.ISN
	var out []Claim

	// 1. "The SYN-ACK's sequence number is 1."
	{
		c := Claim{ID: "isn-one", Claim: "The server's SYN-ACK sequence number is typically 1.",
			Kernel:  "The SYN-ACK's sequence number is the full 32-bit cookie. \"0\" and \"1\" are Wireshark's relative sequence numbers, not what is on the wire.",
			Verdict: "false"}
		c.Demo = append(c.Demo, "this handshake: SYN-ACK seq = "+utoa(isn)+" (0x"+hex32(isn)+")")
		distinct := map[uint32]bool{isn: true}
		for _, v := range []struct {
			label string
			dport uint16
			seq   uint32
			mss   uint16
			slot  uint32
		}{
			{"client ISN + 1", p.tuple.Server.Port(), in.ClientISN + 1, in.MSS, in.Count},
			{"one minute later", p.tuple.Server.Port(), in.ClientISN, in.MSS, in.Count + 1},
			{"MSS 536", p.tuple.Server.Port(), in.ClientISN, 536, in.Count},
			{"server port + 1", p.tuple.Server.Port() + 1, in.ClientISN, in.MSS, in.Count},
		} {
			t := p.tuple
			t.Server = netipPort(t, v.dport)
			x, err := p.key.Encode(t, v.seq, v.mss, v.slot)
			if err != nil {
				return nil, err
			}
			distinct[x] = true
			c.Demo = append(c.Demo, v.label+": "+utoa(x))
		}
		c.Shown = isn != 1 && len(distinct) >= 4
		out = append(out, c)
	}

	// 2. "The ACK is checked to be (cookie+1)+1."
	{
		c := Claim{ID: "ack-compare", Claim: "The ACK's sequence number is checked to be (cookie+1)+1.",
			Kernel:  "The cookie comes back in the ACK's acknowledgment number as cookie+1. The kernel takes ack-1 as the cookie and seq-1 as the client's ISN and decodes: the slot must be current or previous, the MSS index below 4. Nothing is compared.",
			Verdict: "false"}
		good, err := p.check(in.ClientISN+1, isn+1, in.Count)
		if err != nil {
			return nil, err
		}
		c.Demo = append(c.Demo, "ACK seq "+utoa(in.ClientISN+1)+", ack "+utoa(isn+1)+" (= cookie+1): "+verdictText(good))
		claimed, err := p.check(isn+2, isn+1, in.Count)
		if err != nil {
			return nil, err
		}
		c.Demo = append(c.Demo, "ACK seq "+utoa(isn+2)+" (= (cookie+1)+1, as claimed): "+verdictText(claimed))
		// Decoding, not comparing: a neighbouring ack number can decode too.
		near, err := p.check(in.ClientISN+1, isn+1-1, in.Count)
		if err != nil {
			return nil, err
		}
		c.Demo = append(c.Demo, "ack one lower ("+utoa(isn)+"): "+verdictText(near)+" — a comparison would reject it; decoding reads MSS index "+utoa(near.Index))
		c.Shown = good.Valid && !claimed.Valid
		out = append(out, c)
	}

	// 3. "The cookie is valid for 60 s."
	{
		c := Claim{ID: "valid-60s", Claim: "A cookie is valid for 60 seconds.",
			Kernel:  "It is accepted in the slot it was made in and the next one: between 60 and 120 seconds depending on when in its minute it was made. (Some older kernels: 64/128 s or 4 minutes.)",
			Verdict: "misleading"}
		shown := true
		for _, sec := range []uint32{0, 59} {
			q := *p
			q.in.SynSecond = sec
			life := q.lifetime()
			last := q.in.Count + (sec+life-1)/60
			first := q.in.Count + (sec+life)/60
			ok, err := q.check(in.ClientISN+1, isn+1, last)
			if err != nil {
				return nil, err
			}
			bad, err := q.check(in.ClientISN+1, isn+1, first)
			if err != nil {
				return nil, err
			}
			c.Demo = append(c.Demo, "made at second "+utoa(sec)+" of slot "+utoa(in.Count)+": ACK at +"+utoa(life-1)+" s "+verdictText(ok)+"; at +"+utoa(life)+" s "+verdictText(bad))
			shown = shown && ok.Valid && !bad.Valid
		}
		c.Shown = shown
		out = append(out, c)
	}

	// 4. "The MSS is stored in the cookie."
	{
		c := Claim{ID: "mss", Claim: "The client's MSS is stored in the cookie.",
			Kernel:  "Only a 2-bit index into a 4-entry table is stored (IPv4 536/1300/1440/1460, IPv6 1220/1420/1440/8940). The MSS is rounded down to a table entry; below the first entry it is raised to it.",
			Verdict: "misleading"}
		shown := false
		tbl := cookie.MSSTable(p.v6)
		for _, m := range []uint16{1400, 400, 1460, 9000} {
			x, err := p.key.Encode(p.tuple, in.ClientISN, m, in.Count)
			if err != nil {
				return nil, err
			}
			v, err := p.key.Check(p.tuple, in.ClientISN, x, in.Count)
			if err != nil {
				return nil, err
			}
			c.Demo = append(c.Demo, "SYN MSS "+utoa(uint32(m))+" → cookie decodes index "+utoa(uint32(v.Index))+" = MSS "+utoa(uint32(v.MSS)))
			if v.Valid && v.MSS != m {
				shown = true
			}
		}
		c.Demo = append(c.Demo, "table: "+utoa(uint32(tbl[0]))+", "+utoa(uint32(tbl[1]))+", "+utoa(uint32(tbl[2]))+", "+utoa(uint32(tbl[3])))
		c.Shown = shown
		out = append(out, c)
	}

	// 5. "Window scaling and SACK are lost with syncookies."
	{
		c := Claim{ID: "options-lost", Claim: "Window scaling and SACK are lost with SYN cookies.",
			Kernel:  "They survive in the low 6 bits of the SYN-ACK's TSval when the client uses timestamps; the client echoes them in TSecr. Only without timestamps are they lost.",
			Verdict: "misleading"}
		o := cookie.TSOptions{WScale: 7, HasWScale: true, SACK: true}
		tv := cookie.TSval(in.MsNow, o)
		d := cookie.DecodeTSecr(tv)
		c.Demo = append(c.Demo,
			"SYN with wscale 7, SACK, TS → TSval "+utoa(tv)+" (low 6 bits "+bits32(tv & cookie.TSBitsMask)[26:]+")",
			"ACK's TSecr "+utoa(tv)+" decodes: wscale "+utoa(uint32(d.WScale))+", SACK "+boolText(d.SACK))
		c.Shown = d.HasWScale && d.WScale == 7 && d.SACK
		out = append(out, c)
	}

	// 6. "The cookie is an MD5 (or SHA-1) hash."
	{
		c := Claim{ID: "hash", Claim: "The cookie is an MD5 (or SHA-1) hash of the connection.",
			Kernel:  "Since Linux 4.11 it is built from two SipHash-2-4 values (low 32 bits each), keyed by the two halves of a 32-byte secret. SHA-1 was used before 4.11; MD5 never in this code.",
			Verdict: "false (since 4.11)"}
		msg := hashMessage(p.tuple, 0)
		kb := p.key.Bytes()
		k0, k1 := binary.LittleEndian.Uint64(kb[0:8]), binary.LittleEndian.Uint64(kb[8:16])
		sip := siphash.Hash(k0, k1, msg)
		h0, _, err := p.key.Hashes(p.tuple, 0)
		if err != nil {
			return nil, err
		}
		c.Demo = append(c.Demo,
			"message ("+utoa(uint32(len(msg)))+" bytes): "+hexBytes(msg),
			"SipHash-2-4(key[0:16], message) = "+hex32(uint32(sip>>32))+hex32(uint32(sip))+"; low 32 bits "+hex32(uint32(sip)),
			"h0 used in the cookie = "+hex32(h0))
		c.Shown = uint32(sip) == h0
		out = append(out, c)
	}

	// 7. "SYNPROXY answers with the server's window."
	{
		c := Claim{ID: "window", Claim: "SYNPROXY answers the SYN with the server's window.",
			Kernel:  "The SYN-ACK has window 0; the window opens only after the server's own SYN-ACK, with a window update to the client.",
			Verdict: "false"}
		var sa, upd *Packet
		for i := range s.Steps {
			switch s.Steps[i].ID {
			case "synack":
				sa = &s.Steps[i].Packet
			case "window":
				upd = &s.Steps[i].Packet
			}
		}
		if sa != nil {
			c.Demo = append(c.Demo, "SYN-ACK window: "+utoa(uint32(sa.Window)))
			c.Shown = sa.Window == 0
		}
		if upd != nil {
			c.Demo = append(c.Demo, "window update after the server's SYN-ACK: "+utoa(uint32(upd.Window)))
		}
		out = append(out, c)
	}

	// 8. "SYNPROXY does not create a conntrack entry at SYN time."
	{
		c := Claim{ID: "no-state", Claim: "SYNPROXY creates no conntrack entry at SYN time.",
			Kernel:  "True for the documented setup, where SYNs are notrack'ed: the SYN is consumed and the SYN-ACK carries no conntrack. The first entry is made when a valid ACK arrives and the proxy sends its own SYN to the server.",
			Verdict: "true (with the mechanism)"}
		cfg := DefaultFlood()
		cfg.Key, cfg.Count, cfg.Ticks, cfg.AttackStart, cfg.AttackEnd, cfg.ForgedAcks = in.Key, in.Count, 20, 0, 20, 10
		r, err := Flood(cfg)
		if err != nil {
			return nil, err
		}
		maxState := 0
		for _, t := range r.Ticks {
			maxState = max(maxState, t.CookieState)
		}
		c.Demo = append(c.Demo, utoa(uint32(r.Cookies))+" SYNs answered with cookies in the flood simulation, entries stored: "+utoa(uint32(maxState))+"; "+utoa(uint32(r.CookieServed))+" clients connected after their ACK passed the check")
		c.Shown = maxState == 0 && r.CookieServed > 0
		out = append(out, c)
	}

	// 9. Rule syntax.
	out = append(out, Claim{ID: "nft-syntax", Claim: "The nft rule is `ct state new add synproxy`.",
		Kernel:  "Not valid nft. Inside a rule the statement is `synproxy mss 1460 wscale 7 timestamp sack-perm` and it matches `ct state invalid,untracked` (SYNs are notrack'ed in raw prerouting; with nf_conntrack_tcp_loose=0 the handshake ACK is INVALID). `nft add synproxy …` is the command that creates a named synproxy object.",
		Verdict: "false",
		Demo:    []string{"tcp dport 80 tcp flags syn notrack   (table raw, hook prerouting)", "tcp dport 80 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm", "ct state invalid drop"},
		Shown:   true})
	// 10. nc -u.
	out = append(out, Claim{ID: "nc-u", Claim: "A loop of `nc -u` sends SYN packets.",
		Kernel:  "`-u` is UDP: no TCP segment, no SYN flag. The synproxy expression ignores non-TCP packets. SYNs come from TCP connects (`nc -z host port`) or raw generators (`hping3 -S`).",
		Verdict: "false",
		Demo:    []string{"the synproxy rule acts only on TCP: the SYN of this page is a TCP segment with flags " + s.Steps[0].Packet.Flags},
		Shown:   true})
	for _, c := range out {
		if c.ID == "" {
			return nil, errors.New("explain: claim without id")
		}
	}
	return out, nil
}

func netipPort(t cookie.Tuple, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(t.Server.Addr(), port)
}

// hashMessage is the bytes the kernel hashes for a tuple and a count
// (spec §1.4 and §1.5): restated here to show them on the page.
func hashMessage(t cookie.Tuple, count uint32) []byte {
	c, s := t.Client.Addr(), t.Server.Addr()
	if t.Is6() {
		m := make([]byte, 40)
		c16, s16 := c.As16(), s.As16()
		copy(m[0:16], c16[:])
		copy(m[16:32], s16[:])
		binary.LittleEndian.PutUint32(m[32:36], count)
		binary.BigEndian.PutUint16(m[36:38], t.Client.Port())
		binary.BigEndian.PutUint16(m[38:40], t.Server.Port())
		return m
	}
	m := make([]byte, 16)
	c4, s4 := c.As4(), s.As4()
	copy(m[0:4], c4[:])
	copy(m[4:8], s4[:])
	binary.BigEndian.PutUint16(m[8:10], t.Server.Port())
	binary.BigEndian.PutUint16(m[10:12], t.Client.Port())
	binary.LittleEndian.PutUint32(m[12:16], count)
	return m
}

func verdictText(c CheckTrace) string {
	if c.Valid {
		return "accepted (MSS " + utoa(uint32(c.MSS)) + ")"
	}
	return "rejected (" + c.Reason + ")"
}

func boolText(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func hexBytes(b []byte) string {
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, hex32(uint32(x))[6:]...)
	}
	return string(out)
}
