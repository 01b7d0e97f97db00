package explain

import (
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// Lanes of the sequence diagram.
const (
	LaneClient   = "client"
	LaneAttacker = "attacker"
	LaneProxy    = "synproxy"
	LaneServer   = "server"
)

// Option is one TCP option of a packet.
type Option struct {
	Kind  string `json:"kind"`  // "MSS", "SACK_PERM", "TS", "WS", "NOP"
	Text  string `json:"text"`  // e.g. "mss 1460"
	Bytes string `json:"bytes"` // the wire bytes in hex
}

// Packet is one TCP segment of the diagram.
type Packet struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Src     string   `json:"src"` // address:port
	Dst     string   `json:"dst"`
	Flags   string   `json:"flags"` // e.g. "SYN,ACK"
	Seq     uint32   `json:"seq"`
	Ack     uint32   `json:"ack"`
	Window  uint16   `json:"window"`
	Options []Option `json:"options"`
	Dropped bool     `json:"dropped"` // the receiver drops it
	Lost    bool     `json:"lost"`    // nobody receives it (spoofed source)
}

// Step is one frame of the diagram: a packet and what to show beside it.
type Step struct {
	ID     string      `json:"id"`
	Title  string      `json:"title"`
	Text   string      `json:"text"`
	Packet Packet      `json:"packet"`
	Calc   string      `json:"calc"` // "encode", "check", "ts" or ""
	Check  *CheckTrace `json:"check,omitempty"`
}

// Scenario is everything the page shows for one Input.
type Scenario struct {
	Input    Input      `json:"input"`
	V6       bool       `json:"v6"`
	Encoding Encoding   `json:"encoding"`
	TS       TSBits     `json:"ts"`
	AckSlot  uint32     `json:"ackSlot"`
	Lifetime uint32     `json:"lifetime"` // seconds after the SYN the cookie is accepted
	Check    CheckTrace `json:"check"`    // the client's ACK
	Steps    []Step     `json:"steps"`
	// Summary says in a sentence what the chosen handshake does after the ACK.
	Summary string `json:"summary"`
	// Layouts are the SYN's cookie under the Linux profile and under the
	// full one, side by side.
	Layouts [2]Layout `json:"layouts"`
}

// LiteSYNACKWindow is the window of synproxy-lite's SYN-ACKs
// (driver/engine.SYNACKWindow): the daemon makes the client's socket the
// moment the cookie is proven, so the client may send data with its ACK.
const LiteSYNACKWindow = 65535

// Build computes the scenario of an Input.
func Build(in Input) (*Scenario, error) {
	p, err := parse(in)
	if err != nil {
		return nil, err
	}
	in = p.in
	enc, err := p.encoding()
	if err != nil {
		return nil, err
	}
	s := &Scenario{Input: in, V6: p.v6, Encoding: enc, TS: p.tsBits(), AckSlot: p.ackSlot(), Lifetime: p.lifetime()}
	isn := enc.ISN
	cli, srv := p.tuple.Client.String(), p.tuple.Server.String()
	ts := p.tsOptions()

	// 1. The client's SYN.
	syn := Packet{From: LaneClient, To: LaneProxy, Src: cli, Dst: srv, Flags: "SYN", Seq: in.ClientISN, Window: 64240}
	if in.ECN {
		syn.Flags = "SYN,ECE,CWR"
	}
	if in.MSS != 0 {
		syn.Options = append(syn.Options, optMSS(in.MSS))
	}
	if in.SACK && in.TS {
		syn.Options = append(syn.Options, optSACKTS(in.ClientTS, 0))
	} else {
		if in.SACK {
			syn.Options = append(syn.Options, optNOP(), optNOP(), optSACK())
		}
		if in.TS {
			syn.Options = append(syn.Options, optNOP(), optNOP(), optTS(in.ClientTS, 0))
		}
	}
	if in.HasWScale {
		syn.Options = append(syn.Options, optNOP(), optWS(in.WScale))
	}
	lite := in.Handshake == HandshakeLite
	synText := "The client picks its initial sequence number " + utoa(in.ClientISN) + " and offers its options. The SYN reaches the synproxy rule; conntrack is bypassed (notrack) and nothing is stored."
	s.Summary = "The kernel's synproxy: a SYN-ACK with window 0; after the ACK it replays the SYN to the server from the client's address, and conntrack translates every sequence number for the connection's life."
	if lite {
		synText = "The client picks its initial sequence number " + utoa(in.ClientISN) + " and offers its options. synproxy-lite's nft rule queues every SYN to its engine, which stores nothing."
		s.Summary = "synproxy-lite: a SYN-ACK with window 65535; after the ACK the client becomes a real kernel socket through TCP_REPAIR, the daemon connects to its backend on a connection of its own and splices the two. Nothing is translated."
	}
	s.Steps = append(s.Steps, Step{ID: "syn", Title: "SYN: the client opens", Text: synText, Packet: syn})

	// 2. The SYN-ACK with the cookie.
	sa := Packet{From: LaneProxy, To: LaneClient, Src: srv, Dst: cli, Flags: "SYN,ACK", Seq: isn, Ack: in.ClientISN + 1, Window: 0}
	if lite {
		sa.Window = LiteSYNACKWindow
	}
	if in.MSS != 0 {
		sa.Options = append(sa.Options, optMSS(RuleMSS))
	}
	tsval := s.TS.TSval
	if in.TS {
		if ts.SACK {
			sa.Options = append(sa.Options, optSACKTS(tsval, in.ClientTS))
		} else {
			sa.Options = append(sa.Options, optNOP(), optNOP(), optTS(tsval, in.ClientTS))
		}
		if ts.HasWScale {
			sa.Options = append(sa.Options, optNOP(), optWS(RuleWScale))
		}
	}
	saText := "The proxy answers for the server with window 0. "
	if lite {
		saText = "The proxy answers for the server with window 65535: it will make the client's socket itself as soon as the cookie is proven, so the client may send data with its ACK. "
	}
	s.Steps = append(s.Steps, Step{ID: "synack", Title: "SYN-ACK: the cookie is the sequence number",
		Text:   saText + "Its sequence number is the cookie " + utoa(isn) + " (0x" + hex32(isn) + "), computed from the tuple, the client's ISN, the minute and the MSS class. The proxy forgets the SYN.",
		Packet: sa, Calc: "encode"})

	// 3. The client's ACK, checked.
	win := uint16(64240)
	if in.HasWScale && in.TS {
		win = uint16(64240 >> in.WScale)
	}
	ackTS := in.ClientTS + in.AckDelay*1000
	ack := Packet{From: LaneClient, To: LaneProxy, Src: cli, Dst: srv, Flags: "ACK",
		Seq: in.ClientISN + 1 + uint32(in.AckSeqDelta), Ack: isn + 1 + uint32(in.AckAckDelta), Window: win}
	if in.TS {
		ack.Options = append(ack.Options, optNOP(), optNOP(), optTS(ackTS, tsval))
	}
	s.Check, err = p.check(ack.Seq, ack.Ack, s.AckSlot)
	if err != nil {
		return nil, err
	}
	ack.Dropped = !s.Check.Valid
	text := "The ACK arrives " + utoa(in.AckDelay) + " s after the SYN, in slot " + utoa(s.AckSlot) + ". Its ack number is cookie + 1. The proxy subtracts 1 from ack and from seq and decodes: "
	if s.Check.Valid {
		text += "valid, MSS " + utoa(uint32(s.Check.MSS)) + "."
	} else {
		text += "rejected (" + s.Check.Reason + "), the ACK is dropped and no connection is made."
	}
	if s.Layouts, err = p.layouts(s); err != nil {
		return nil, err
	}
	tr := s.Check
	s.Steps = append(s.Steps, Step{ID: "ack", Title: "ACK: the cookie comes back", Text: text, Packet: ack, Calc: "check", Check: &tr})

	switch {
	case s.Check.Valid && lite:
		s.Steps = append(s.Steps, p.liteSteps(s, ack)...)
	case s.Check.Valid:
		s.Steps = append(s.Steps, p.serverSteps(s, ack, ts)...)
	}
	s.Steps = append(s.Steps, p.attackerSteps(s)...)
	return s, nil
}

// serverSteps are the packets after a valid ACK: the proxy opens the
// connection to the server with the options the cookie kept.
func (p *parsed) serverSteps(s *Scenario, ack Packet, ts cookie.TSOptions) []Step {
	in := p.in
	isn := s.Encoding.ISN
	cli, srv := p.tuple.Client.String(), p.tuple.Server.String()
	var dec cookie.TSOptions
	var tsval, tsecr uint32
	if in.TS {
		tsval, tsecr = in.ClientTS+in.AckDelay*1000, s.TS.TSval
		dec = cookie.DecodeTSecr(tsecr)
	}
	syn := Packet{From: LaneProxy, To: LaneServer, Src: cli, Dst: srv, Flags: "SYN", Seq: in.ClientISN + uint32(in.AckSeqDelta), Ack: isn + uint32(in.AckAckDelta), Window: ack.Window}
	syn.Options = append(syn.Options, optMSS(s.Check.MSS))
	if in.TS {
		if dec.SACK {
			syn.Options = append(syn.Options, optSACKTS(tsval, tsecr))
		} else {
			syn.Options = append(syn.Options, optNOP(), optNOP(), optTS(tsval, tsecr))
		}
		if dec.HasWScale {
			syn.Options = append(syn.Options, optNOP(), optWS(dec.WScale))
		}
	}
	const serverTS, serverWin = 0x01020304, 65160
	sisn := in.ServerISN
	sa := Packet{From: LaneServer, To: LaneProxy, Src: srv, Dst: cli, Flags: "SYN,ACK", Seq: sisn, Ack: syn.Seq + 1, Window: serverWin}
	sa.Options = append(sa.Options, optMSS(RuleMSS))
	if in.TS {
		if dec.SACK {
			sa.Options = append(sa.Options, optSACKTS(serverTS, tsval))
		} else {
			sa.Options = append(sa.Options, optNOP(), optNOP(), optTS(serverTS, tsval))
		}
		if dec.HasWScale {
			sa.Options = append(sa.Options, optNOP(), optWS(RuleWScale))
		}
	}
	sack := Packet{From: LaneProxy, To: LaneServer, Src: cli, Dst: srv, Flags: "ACK", Seq: syn.Seq + 1, Ack: sisn + 1, Window: ack.Window}
	upd := Packet{From: LaneProxy, To: LaneClient, Src: srv, Dst: cli, Flags: "ACK", Seq: isn + 1, Ack: syn.Seq + 1, Window: serverWin}
	if in.TS {
		sack.Options = []Option{optNOP(), optNOP(), optTS(tsval, serverTS)}
		upd.Options = []Option{optNOP(), optNOP(), optTS(s.TS.TSval, tsval)}
		if dec.HasWScale {
			upd.Window = serverWin >> RuleWScale
		}
	}
	decoded := "MSS " + utoa(uint32(s.Check.MSS)) + " (decoded from the cookie)"
	if in.TS {
		if dec.HasWScale {
			decoded += ", window scale " + utoa(uint32(dec.WScale))
		}
		if dec.SACK {
			decoded += ", SACK-permitted"
		}
		decoded += " (from the TSecr bits)"
	} else {
		decoded += "; no timestamp, so no window scaling and no SACK"
	}
	return []Step{
		{ID: "proxy-syn", Title: "SYN to the server, on the client's behalf",
			Text:   "Only now does state appear: the proxy sends a SYN from the client's address with the client's ISN and " + decoded + ". Its ack field carries the cookie so that conntrack can learn the offset.",
			Packet: syn, Calc: "ts"},
		{ID: "server-synack", Title: "The server's SYN-ACK",
			Text:   "The server picks its own ISN " + utoa(sisn) + ". The proxy consumes this SYN-ACK.",
			Packet: sa},
		{ID: "proxy-ack", Title: "ACK to the server",
			Text:   "The proxy completes the server-side handshake.",
			Packet: sack},
		{ID: "window", Title: "Window update to the client",
			Text:   "The proxy opens the client's window (it was 0). From here on conntrack rewrites every sequence number by cookie - server ISN = " + utoa(isn-sisn) + " (mod 2^32), and timestamps by the server's offset.",
			Packet: upd},
	}
}

// liteSteps are synproxy-lite's packets after a valid ACK: the client's
// socket made through TCP_REPAIR and announced with a window update, then
// the daemon's own connection to its backend (docs/handoff.md).
func (p *parsed) liteSteps(s *Scenario, ack Packet) []Step {
	in := p.in
	cli, srv := p.tuple.Client.String(), p.tuple.Server.String()
	// The socket's state comes from the ACK: its ack number is the cookie
	// + 1 (our next sequence number), its sequence number the client's.
	sndNxt, rcvNxt := ack.Ack, ack.Seq
	var dec cookie.TSOptions
	if in.TS {
		dec = cookie.DecodeTSecr(s.TS.TSval)
	}
	upd := Packet{From: LaneProxy, To: LaneClient, Src: srv, Dst: cli, Flags: "ACK", Seq: sndNxt, Ack: rcvNxt, Window: 0xffff}
	if in.TS {
		// The socket's clock starts at the client's echo of the cookie
		// TSval; it echoes the client's TSval.
		upd.Options = []Option{optNOP(), optNOP(), optTS(s.TS.TSval, in.ClientTS+in.AckDelay*1000)}
		if dec.HasWScale {
			upd.Window >>= RuleWScale
		}
	}
	kept := "MSS " + utoa(uint32(s.Check.MSS))
	if in.TS {
		if dec.HasWScale {
			kept += ", window scale " + utoa(uint32(dec.WScale))
		}
		if dec.SACK {
			kept += ", SACK"
		}
		kept += ", timestamps"
	} else {
		kept += "; no timestamp, so no window scaling and no SACK"
	}
	backend, local := "127.0.0.1:8081", "127.0.0.1:45678"
	if p.v6 {
		backend, local = "[::1]:8081", "[::1]:45678"
	}
	const ownISN, loopMSS, loopWin = 2000000000, 65495, 65483
	bsyn := Packet{From: LaneProxy, To: LaneServer, Src: local, Dst: backend, Flags: "SYN", Seq: ownISN, Window: 65495,
		Options: []Option{optMSS(loopMSS), optSACKTS(in.MsNow, 0), optNOP(), optWS(RuleWScale)}}
	bsa := Packet{From: LaneServer, To: LaneProxy, Src: backend, Dst: local, Flags: "SYN,ACK", Seq: in.ServerISN, Ack: ownISN + 1, Window: loopWin,
		Options: []Option{optMSS(loopMSS), optSACKTS(0x01020304, in.MsNow), optNOP(), optWS(RuleWScale)}}
	back := Packet{From: LaneProxy, To: LaneServer, Src: local, Dst: backend, Flags: "ACK", Seq: ownISN + 1, Ack: in.ServerISN + 1, Window: 512,
		Options: []Option{optNOP(), optNOP(), optTS(in.MsNow, 0x01020304)}}
	return []Step{
		{ID: "handoff", Title: "The client becomes a socket (TCP_REPAIR)",
			Text: "The cookie is proven, so the daemon builds the kernel socket this handshake would have made, without sending a packet: with TCP_REPAIR it sets the socket's next sequence number to cookie + 1 = " + utoa(sndNxt) +
				" and the client's to " + utoa(rcvNxt) + ", then the options the cookie kept (" + kept + "), and the socket is ESTABLISHED. This ACK announces its window. From here on the kernel's TCP carries the connection; no sequence number is ever translated.",
			Packet: upd, Calc: "ts"},
		{ID: "backend-syn", Title: "SYN to the backend, from the daemon",
			Text:   "The daemon connects to its backend (--backend, here " + backend + ") with an ordinary connect(): a second TCP connection from its own address, with sequence numbers the kernel picks. With --proxy-protocol its first bytes tell the backend who the client is.",
			Packet: bsyn},
		{ID: "backend-synack", Title: "The backend's SYN-ACK",
			Text:   "The backend picks its ISN " + utoa(in.ServerISN) + ". It has nothing to do with the cookie: the two connections are separate.",
			Packet: bsa},
		{ID: "backend-ack", Title: "ACK to the backend; the splice starts",
			Text:   "Both connections are open. The daemon copies bytes between the two sockets with splice(2); each connection keeps its own sequence numbers, so nothing is rewritten and no packet of the connection goes through the daemon again.",
			Packet: back},
	}
}

// attackerSteps show what an attacker gets for spoofed SYNs and forged ACKs.
func (p *parsed) attackerSteps(s *Scenario) []Step {
	in := p.in
	srv := p.tuple.Server.String()
	spoofed := netip.MustParseAddrPort("203.0.113.66:40001")
	if p.v6 {
		spoofed = netip.MustParseAddrPort("[2001:db8:bad::66]:40001")
	}
	st := cookie.Tuple{Client: spoofed, Server: p.tuple.Server}
	const spoofISN = 0x0badf00d
	spoofCookie, err := p.key.Encode(st, spoofISN, 1460, in.Count)
	if err != nil {
		return nil
	}
	steps := []Step{
		{ID: "spoof-syn", Title: "Attacker: a SYN from a spoofed address",
			Text:   "A flood is millions of these, each from a made-up address. The proxy answers each one the same way and stores nothing.",
			Packet: Packet{From: LaneAttacker, To: LaneProxy, Src: spoofed.String(), Dst: srv, Flags: "SYN", Seq: spoofISN, Window: 1024, Options: []Option{optMSS(1460)}}},
		{ID: "spoof-synack", Title: "The SYN-ACK goes to nobody",
			Text:   "The cookie goes to the spoofed address; the attacker never sees it, and the proxy keeps no queue entry that could fill up.",
			Packet: Packet{From: LaneProxy, To: LaneAttacker, Src: srv, Dst: spoofed.String(), Flags: "SYN,ACK", Seq: spoofCookie, Ack: spoofISN + 1, Window: 0, Options: []Option{optMSS(RuleMSS)}, Lost: true}},
	}
	if in.Handshake == HandshakeLite {
		steps[1].Packet.Window = LiteSYNACKWindow
	}
	// A forged ACK: a guessed ack number, a fixed pseudo-random guess so the page is reproducible.
	guess := spoofCookie ^ 0x5a5a5a5a
	forged := Packet{From: LaneAttacker, To: LaneProxy, Src: spoofed.String(), Dst: srv, Flags: "ACK", Seq: spoofISN + 1, Ack: guess + 1, Window: 1024}
	pf := &parsed{in: in, key: p.key, tuple: st, v6: p.v6}
	tr, err := pf.check(forged.Seq, forged.Ack, in.Count)
	if err != nil {
		return steps
	}
	forged.Dropped = !tr.Valid
	steps = append(steps, Step{ID: "forged-ack", Title: "Attacker: a forged ACK",
		Text:   "Without the SYN-ACK the attacker must guess the ack number. The check decodes the guess: " + tr.Reason + ". About 1 guess in 2^29 passes (see the forging lab).",
		Packet: forged, Calc: "check", Check: &tr})

	// The client's own ACK replayed after the validity window.
	late := s.Input.AckDelay
	if late < s.Lifetime {
		late = s.Lifetime
	}
	lateSlot := uint32((uint64(in.Count)*60 + uint64(in.SynSecond) + uint64(late)) / 60)
	replay := Packet{From: LaneAttacker, To: LaneProxy, Src: p.tuple.Client.String(), Dst: srv, Flags: "ACK", Seq: in.ClientISN + 1, Ack: s.Encoding.ISN + 1, Window: 502}
	rt, err := p.check(replay.Seq, replay.Ack, lateSlot)
	if err != nil {
		return steps
	}
	replay.Dropped = !rt.Valid
	steps = append(steps, Step{ID: "replay", Title: "Attacker: the client's ACK replayed " + utoa(late) + " s later",
		Text:   "A captured ACK is accepted only while its slot is the current or the previous one: this cookie was made " + utoa(in.SynSecond) + " s into slot " + utoa(in.Count) + ", so it lives " + utoa(s.Lifetime) + " s. At +" + utoa(late) + " s (slot " + utoa(lateSlot) + ") the check says: " + rt.Reason + ".",
		Packet: replay, Calc: "check", Check: &rt})
	return steps
}

func optMSS(m uint16) Option {
	return Option{Kind: "MSS", Text: "mss " + utoa(uint32(m)), Bytes: "0204" + hex32(uint32(m))[4:]}
}
func optNOP() Option  { return Option{Kind: "NOP", Text: "nop", Bytes: "01"} }
func optSACK() Option { return Option{Kind: "SACK_PERM", Text: "sackOK", Bytes: "0402"} }
func optWS(s uint8) Option {
	return Option{Kind: "WS", Text: "wscale " + utoa(uint32(s)), Bytes: "0303" + hex32(uint32(s))[6:]}
}
func optTS(val, ecr uint32) Option {
	return Option{Kind: "TS", Text: "TS val " + utoa(val) + " ecr " + utoa(ecr), Bytes: "080a" + hex32(val) + hex32(ecr)}
}

// optSACKTS is SACK-permitted packed with the timestamp, as Linux sends them.
func optSACKTS(val, ecr uint32) Option {
	return Option{Kind: "SACK_PERM+TS", Text: "sackOK, TS val " + utoa(val) + " ecr " + utoa(ecr), Bytes: "0402080a" + hex32(val) + hex32(ecr)}
}
