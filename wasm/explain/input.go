package explain

import (
	"errors"
	"net/netip"
	"strconv"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// ExampleKey is the key of the specification's worked examples: bytes 00..1f.
const ExampleKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// The synproxy rule the handshake follows: synproxy mss 1460 wscale 7 timestamp sack-perm.
const (
	RuleMSS    = 1460
	RuleWScale = 7
)

// Input is what the page's controls set. The zero value of a field is a valid
// choice except for the addresses and the key; Default returns the
// specification's first worked example.
type Input struct {
	Client string `json:"client"` // client address:port, the source of the SYN and the ACK
	Server string `json:"server"` // server (proxy) address:port
	Key    string `json:"key"`    // 64 hex digits, the kernel's syncookie_secret layout

	ClientISN uint32 `json:"clientISN"` // the SYN's sequence number
	MSS       uint16 `json:"mss"`       // the SYN's MSS option; 0 = no MSS option
	WScale    uint8  `json:"wscale"`    // the SYN's window-scale shift, if HasWScale
	HasWScale bool   `json:"hasWScale"` // the SYN carries a window-scale option
	SACK      bool   `json:"sack"`      // the SYN carries SACK-permitted
	TS        bool   `json:"ts"`        // the SYN carries a timestamp option
	ECN       bool   `json:"ecn"`       // the SYN has ECE and CWR (an nft rule cannot enable ECN)

	Count     uint32 `json:"count"`     // the time slot (minute) the SYN arrives in
	SynSecond uint32 `json:"synSecond"` // how many seconds into that slot the SYN arrives (0..59)
	AckDelay  uint32 `json:"ackDelay"`  // seconds between the SYN and the client's ACK

	// AckSeqDelta and AckAckDelta tamper with the ACK: they are added to its
	// sequence and acknowledgment numbers before the check.
	AckSeqDelta int32 `json:"ackSeqDelta"`
	AckAckDelta int32 `json:"ackAckDelta"`

	MsNow     uint32 `json:"msNow"`     // the proxy's millisecond clock when the SYN arrives
	ClientTS  uint32 `json:"clientTS"`  // the client's TSval in the SYN
	ServerISN uint32 `json:"serverISN"` // the server's ISN in its SYN-ACK

	// Handshake is whose handshake the diagram shows: HandshakeKernel (""
	// too) or HandshakeLite.
	Handshake string `json:"handshake"`
}

// The handshakes the page shows. They agree up to the checked ACK and
// differ after it.
const (
	// HandshakeKernel is the kernel's synproxy (nftables "synproxy"): a
	// SYN-ACK with window 0; after the ACK the proxy replays the SYN to the
	// server from the client's address, and conntrack translates sequence
	// numbers by cookie - server ISN for the connection's life.
	HandshakeKernel = "kernel"
	// HandshakeLite is synproxy-lite's daemon: a SYN-ACK with window 65535;
	// after the ACK the client becomes a real kernel socket through
	// TCP_REPAIR, the daemon connects to its backend with a connection of
	// its own and splices the two: nothing is translated.
	HandshakeLite = "lite"
)

// Default returns the input of the specification's worked example 1:
// 192.0.2.1:12345 -> 198.51.100.7:80, ISN 1000, MSS 1460, slot 5, key 00..1f,
// with the options of a Linux client.
func Default() Input {
	return Input{
		Client: "192.0.2.1:12345", Server: "198.51.100.7:80", Key: ExampleKey,
		ClientISN: 1000, MSS: 1460, WScale: 7, HasWScale: true, SACK: true, TS: true,
		Count: 5, SynSecond: 20, AckDelay: 0,
		MsNow: 0x12345678, ClientTS: 0xaabbccdd, ServerISN: 3000000000,
		Handshake: HandshakeKernel,
	}
}

// InputError reports a control whose value cannot be used.
type InputError struct {
	Field string
	Err   error
}

func (e *InputError) Error() string { return "explain: " + e.Field + ": " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// parsed is an Input turned into the cookie package's types.
type parsed struct {
	in    Input
	key   cookie.Key
	tuple cookie.Tuple
	v6    bool
}

func parse(in Input) (*parsed, error) {
	c, err := netip.ParseAddrPort(in.Client)
	if err != nil {
		return nil, &InputError{"client", err}
	}
	s, err := netip.ParseAddrPort(in.Server)
	if err != nil {
		return nil, &InputError{"server", err}
	}
	if c.Addr().Is4() != s.Addr().Is4() {
		return nil, &InputError{"server", errors.New("client and server must both be IPv4 or both IPv6")}
	}
	if c.Addr().Zone() != "" || s.Addr().Zone() != "" {
		return nil, &InputError{"client", errors.New("addresses with a zone are not sent on the wire")}
	}
	k, err := cookie.ParseKey(in.Key)
	if err != nil {
		return nil, &InputError{"key", err}
	}
	if in.SynSecond > 59 {
		return nil, &InputError{"synSecond", errors.New("must be 0..59, " + strconv.Itoa(int(in.SynSecond)) + " given")}
	}
	switch in.Handshake {
	case "":
		in.Handshake = HandshakeKernel
	case HandshakeKernel, HandshakeLite:
	default:
		return nil, &InputError{"handshake", errors.New("must be \"" + HandshakeKernel + "\" or \"" + HandshakeLite + "\", not \"" + in.Handshake + "\"")}
	}
	if in.WScale > 14 && in.HasWScale {
		// The kernel clamps larger shifts to 14; so do we, and say so in the packet.
		in.WScale = cookie.MaxWScale
	}
	t := cookie.Tuple{Client: c, Server: s}
	return &parsed{in: in, key: k, tuple: t, v6: t.Is6()}, nil
}

// ackSlot is the time slot the client's ACK arrives in.
func (p *parsed) ackSlot() uint32 {
	sec := uint64(p.in.Count)*60 + uint64(p.in.SynSecond) + uint64(p.in.AckDelay)
	return uint32(sec / 60)
}

// Lifetime is how many seconds after the SYN its cookie is still accepted:
// until the end of the slot after the one it was made in.
func (p *parsed) lifetime() uint32 { return 2*60 - p.in.SynSecond }
