package packet_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

var fullRule = packet.Rule{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, Timestamp: true, SACKPerm: true}

// clientSYN builds a client SYN with the given options and flags.
func clientSYN(t testing.TB, v6 bool, o packet.Options, flags packet.TCPFlags) []byte {
	t.Helper()
	s := packet.Segment{Src: netip.MustParseAddrPort("192.0.2.1:12345"), Dst: netip.MustParseAddrPort("198.51.100.7:80"),
		Seq: 1000, Flags: packet.FlagSYN | flags, Window: 64240, Options: o, DF: true, ID: 0x1234, TTL: 61}
	if v6 {
		s.Src = netip.MustParseAddrPort("[2001:db8::1]:40000")
		s.Dst = netip.MustParseAddrPort("[2001:db8::2]:443")
		s.ID, s.DF = 0, false
	}
	b, err := packet.AppendSegment(nil, nil, &s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The SYN-ACK options of the specification's worked examples (§6) and the
// shapes of §4.3, with the rule and client variations synproxy distinguishes.
func TestSYNACKShapes(t *testing.T) {
	const ms = 0x12345678
	linux := packet.Options{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, SACKPermitted: true, HasTS: true, TSval: 0xaabbccdd}
	for _, c := range []struct {
		name      string
		rule      packet.Rule
		client    packet.Options
		flags     packet.TCPFlags
		opts      string // the SYN-ACK's options, hex
		tsval     uint32
		cookieMSS uint16
		ece       bool
	}{
		{"linux client", fullRule, linux, 0, "020405b4 0402080a 12345657 aabbccdd 01030307", 0x12345657, 1460, false},
		{"MSS+TS client with ECE|CWR, nft", fullRule,
			packet.Options{HasMSS: true, MSS: 1400, HasTS: true, TSval: 0xaabbccdd}, packet.FlagECE | packet.FlagCWR,
			"020405b4 0101080a 1234564f aabbccdd", 0x1234564f, 1400, false},
		{"no timestamp: MSS only", fullRule,
			packet.Options{HasMSS: true, MSS: 1400, HasWScale: true, WScale: 9, SACKPermitted: true}, 0,
			"020405b4", 0, 1400, false},
		{"no MSS option", fullRule,
			packet.Options{HasTS: true, TSval: 1, HasWScale: true, WScale: 2}, 0,
			"0101080a 12345642 00000001 01030307", 0x12345642, 0, false},
		{"no options", fullRule, packet.Options{}, 0, "", 0, 0, false},
		{"client wscale 15 is clamped in the cookie", fullRule,
			packet.Options{HasMSS: true, MSS: 536, HasTS: true, TSval: 7, HasWScale: true, WScale: 15}, 0,
			"020405b4 0101080a 1234564e 00000007 01030307", 0x1234564e, 536, false},
		{"rule without wscale", packet.Rule{HasMSS: true, MSS: 1400, Timestamp: true, SACKPerm: true}, linux, 0,
			"02040578 0402080a 1234565f aabbccdd", 0x1234565f, 1460, false},
		{"rule without sack-perm", packet.Rule{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 0, Timestamp: true}, linux, 0,
			"020405b4 0101080a 12345647 aabbccdd 01030300", 0x12345647, 1460, false},
		{"rule without timestamp", packet.Rule{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, SACKPerm: true}, linux, 0,
			"020405b4", 0, 1460, false},
		{"rule without mss", packet.Rule{HasWScale: true, WScale: 7, Timestamp: true, SACKPerm: true}, linux, 0,
			"0402080a 12345657 aabbccdd 01030307", 0x12345657, 1460, false},
		{"empty rule", packet.Rule{}, linux, 0, "", 0, 1460, false},
		{"iptables --ecn rule, ECE|CWR client", packet.Rule{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, Timestamp: true, SACKPerm: true, ECN: true},
			linux, packet.FlagECE | packet.FlagCWR, "020405b4 0402080a 12345677 aabbccdd 01030307", 0x12345677, 1460, true},
		{"ECN rule, ECE without CWR", packet.Rule{Timestamp: true, ECN: true},
			packet.Options{HasTS: true, TSval: 5}, packet.FlagECE, "0101080a 1234564f 00000005", 0x1234564f, 0, false},
		{"ECN rule, no timestamp", packet.Rule{HasMSS: true, MSS: 1460, ECN: true},
			packet.Options{HasMSS: true, MSS: 1460}, packet.FlagECE | packet.FlagCWR, "020405b4", 0, 1460, false},
	} {
		for _, v6 := range []bool{false, true} {
			name := c.name + map[bool]string{false: "/v4", true: "/v6"}[v6]
			t.Run(name, func(t *testing.T) {
				var syn packet.Packet
				if err := syn.Decode(clientSYN(t, v6, c.client, c.flags), packet.LinkIP); err != nil {
					t.Fatal(err)
				}
				o := c.rule.Offer(&syn)
				if o.CookieMSS != c.cookieMSS {
					t.Errorf("CookieMSS %d, want %d", o.CookieMSS, c.cookieMSS)
				}
				if o.Options.HasTS {
					o.Options.TSval = cookie.TSval(ms, cookie.TSOptions(o.TS))
					if o.Options.TSval != c.tsval {
						t.Errorf("TSval %#08x, want %#08x", o.Options.TSval, c.tsval)
					}
				}
				b, err := packet.AppendSYNACK(nil, &syn, 0xf97a3928, &o)
				if err != nil {
					t.Fatal(err)
				}
				var sa packet.Packet
				if err := sa.Decode(b, packet.LinkIP); err != nil {
					t.Fatal(err)
				}
				if err := sa.VerifyChecksums(); err != nil {
					t.Fatal(err)
				}
				want, _ := hex.DecodeString(stripSpaces(c.opts))
				if got := sa.TCPHeader()[20:]; !bytes.Equal(got, want) {
					t.Errorf("options %x, want %x", got, want)
				}
				flags := packet.FlagSYN | packet.FlagACK
				if c.ece {
					flags |= packet.FlagECE
				}
				checkSynproxyHeader(t, &syn, &sa, 0xf97a3928, flags, 64)
			})
		}
	}
}

func stripSpaces(s string) string { return string(bytes.ReplaceAll([]byte(s), []byte(" "), nil)) }

// checkSynproxyHeader checks the fixed fields of a synproxy SYN-ACK (§4.3).
func checkSynproxyHeader(t *testing.T, syn, sa *packet.Packet, isn uint32, flags packet.TCPFlags, ttl uint8) {
	t.Helper()
	if sa.Src != syn.Dst || sa.Dst != syn.Src || sa.SrcPort != syn.DstPort || sa.DstPort != syn.SrcPort {
		t.Errorf("endpoints not swapped: %v -> %v", sa.SrcAddrPort(), sa.DstAddrPort())
	}
	if sa.Seq != isn || sa.Ack != syn.Seq+1 || sa.Flags != flags || sa.Window != 0 || sa.Urgent != 0 || sa.Reserved != 0 {
		t.Errorf("tcp seq %d ack %d flags %v window %d urg %d", sa.Seq, sa.Ack, sa.Flags, sa.Window, sa.Urgent)
	}
	if sa.TTL != ttl || sa.TOS != 0 || len(sa.Payload()) != 0 {
		t.Errorf("ttl %d tos %d payload %d", sa.TTL, sa.TOS, len(sa.Payload()))
	}
	if sa.Is6() {
		if binary.BigEndian.Uint32(sa.IP()) != 0x60000000 || sa.ExtHeaders != 0 {
			t.Errorf("ipv6 first word %#08x", binary.BigEndian.Uint32(sa.IP()))
		}
	} else if sa.ID != 0 || sa.IPFlags != packet.IPv4DontFragment || sa.FragOffset != 0 || len(sa.IPHeader()) != 20 {
		t.Errorf("ipv4 id %d flags %d ihl %d", sa.ID, sa.IPFlags, len(sa.IPHeader()))
	}
}

func TestSYNACKTTL(t *testing.T) {
	var syn packet.Packet
	if err := syn.Decode(clientSYN(t, true, packet.Options{}, 0), packet.LinkIP); err != nil {
		t.Fatal(err)
	}
	r := packet.Rule{TTL: 255}
	o := r.Offer(&syn)
	b, err := packet.AppendSYNACK(nil, &syn, 7, &o)
	if err != nil {
		t.Fatal(err)
	}
	var sa packet.Packet
	if err := sa.Decode(b, packet.LinkIP); err != nil {
		t.Fatal(err)
	}
	checkSynproxyHeader(t, &syn, &sa, 7, packet.FlagSYN|packet.FlagACK, 255)
}

// A reply keeps the request's link header, with the MACs swapped and the
// VLAN tags kept, and appends to what dst holds.
func TestAppendReplyEthernet(t *testing.T) {
	ip := clientSYN(t, false, packet.Options{HasMSS: true, MSS: 1460}, 0)
	frame := ethFrame(0x0800, 1, ip)
	var syn packet.Packet
	if err := syn.Decode(frame, packet.LinkEthernet); err != nil {
		t.Fatal(err)
	}
	o := fullRule.Offer(&syn)
	prefix := []byte("prefix")
	out, err := packet.AppendSYNACK(prefix, &syn, 99, &o)
	if err != nil {
		t.Fatal(err)
	}
	if string(out[:6]) != "prefix" {
		t.Fatal("prefix lost")
	}
	var sa packet.Packet
	if err := sa.Decode(out[6:], packet.LinkEthernet); err != nil {
		t.Fatal(err)
	}
	if sa.EthDst != syn.EthSrc || sa.EthSrc != syn.EthDst || sa.VLANTags != 1 || !bytes.Equal(sa.LinkHeader()[12:16], frame[12:16]) {
		t.Fatalf("link header %x (request %x)", sa.LinkHeader(), syn.LinkHeader())
	}
	checkSynproxyHeader(t, &syn, &sa, 99, packet.FlagSYN|packet.FlagACK, 64)

	// AppendSegment with an Ethernet header, IPv6.
	s := packet.Reply(&syn)
	s.Src = netip.MustParseAddrPort("[2001:db8::2]:80")
	s.Dst = netip.MustParseAddrPort("[2001:db8::1]:9")
	eth := packet.Ethernet{Dst: [6]byte{1, 2, 3, 4, 5, 6}, Src: [6]byte{7, 8, 9, 10, 11, 12}}
	out, err = packet.AppendSegment(nil, &eth, &s)
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.Decode(out, packet.LinkEthernet); err != nil {
		t.Fatal(err)
	}
	if sa.EtherType != packet.EtherTypeIPv6 || sa.EthDst != eth.Dst || sa.EthSrc != eth.Src || sa.VLANTags != 0 {
		t.Fatalf("%+v", sa)
	}
	// A v6 reply to a v4 request: the EtherType follows the segment.
	out, err = packet.AppendReply(nil, &syn, &s)
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.Decode(out, packet.LinkEthernet); err != nil || sa.EtherType != packet.EtherTypeIPv6 || sa.VLANTags != 1 {
		t.Fatalf("%v %+v", err, sa)
	}
}

// Builders reuse dst's capacity and allocate only when it lacks room.
func TestAppendCapacity(t *testing.T) {
	var syn packet.Packet
	if err := syn.Decode(clientSYN(t, false, packet.Options{}, 0), packet.LinkIP); err != nil {
		t.Fatal(err)
	}
	o := fullRule.Offer(&syn)
	buf := make([]byte, 0, 128)
	out, err := packet.AppendSYNACK(buf, &syn, 1, &o)
	if err != nil || &out[0] != &buf[:1][0] {
		t.Fatal("did not build in place")
	}
	small := make([]byte, 3, 10)
	out, err = packet.AppendSYNACK(small, &syn, 1, &o)
	if err != nil || len(out) != 3+40 || &out[0] == &small[0] {
		t.Fatal("did not grow")
	}
}

func TestBuilderErrors(t *testing.T) {
	v4 := netip.MustParseAddrPort("192.0.2.1:1")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:1")
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.1]:1")
	tooMany := packet.Options{HasMSS: true, HasTS: true, HasWScale: true, NumSACK: 3}
	for _, c := range []struct {
		name string
		s    packet.Segment
		want error
	}{
		{"zero addresses", packet.Segment{}, packet.ErrAddr},
		{"mixed families", packet.Segment{Src: v4, Dst: v6}, packet.ErrAddr},
		{"v4 and v4-mapped v6", packet.Segment{Src: v4, Dst: mapped}, packet.ErrAddr},
		{"options over 40 bytes", packet.Segment{Src: v4, Dst: v4, Options: tooMany}, packet.ErrOptionsTooLong},
		{"five SACK blocks", packet.Segment{Src: v4, Dst: v4, Options: packet.Options{NumSACK: 5}}, packet.ErrOptionsTooLong},
		{"v4 payload too long", packet.Segment{Src: v4, Dst: v4, Payload: make([]byte, 65535-40+1)}, packet.ErrTooLong},
		{"v6 payload too long", packet.Segment{Src: v6, Dst: v6, Payload: make([]byte, 65535-20+1)}, packet.ErrTooLong},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := packet.AppendSegment(dst, nil, &c.s)
			if !errors.Is(err, c.want) || string(out) != "keep" {
				t.Fatalf("err %v, out %q", err, out)
			}
		})
	}
	// The largest packets that fit.
	for _, s := range []packet.Segment{
		{Src: v4, Dst: v4, Payload: make([]byte, 65535-40)},
		{Src: v6, Dst: v6, Payload: make([]byte, 65535-20)},
		{Src: mapped, Dst: mapped},
	} {
		b, err := packet.AppendSegment(nil, nil, &s)
		if err != nil {
			t.Fatal(err)
		}
		var p packet.Packet
		if err := p.Decode(b, packet.LinkIP); err != nil || p.VerifyChecksums() != nil || len(p.Payload()) != len(s.Payload) {
			t.Fatalf("%v", err)
		}
	}
}

func TestRST(t *testing.T) {
	payload := []byte("data")
	for _, c := range []struct {
		name      string
		flags     packet.TCPFlags
		payload   []byte
		seq, ack  uint32
		wantFlags packet.TCPFlags
	}{
		{"to a SYN", packet.FlagSYN, nil, 0, 1001, packet.FlagRST | packet.FlagACK},
		{"to a SYN with data", packet.FlagSYN, payload, 0, 1005, packet.FlagRST | packet.FlagACK},
		{"to a FIN without ACK", packet.FlagFIN, payload, 0, 1005, packet.FlagRST | packet.FlagACK},
		{"to an ACK", packet.FlagACK, nil, 5000, 0, packet.FlagRST},
		{"to a SYN-ACK", packet.FlagSYN | packet.FlagACK, nil, 5000, 0, packet.FlagRST},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := packet.Segment{Src: netip.MustParseAddrPort("192.0.2.1:1"), Dst: netip.MustParseAddrPort("192.0.2.2:2"),
				Seq: 1000, Ack: 5000, Flags: c.flags, Payload: c.payload, Window: 100}
			b, _ := packet.AppendSegment(nil, nil, &s)
			var p packet.Packet
			if err := p.Decode(b, packet.LinkIP); err != nil {
				t.Fatal(err)
			}
			r := packet.RST(&p)
			out, err := packet.AppendReply(nil, &p, &r)
			if err != nil {
				t.Fatal(err)
			}
			var q packet.Packet
			if err := q.Decode(out, packet.LinkIP); err != nil {
				t.Fatal(err)
			}
			if q.Flags != c.wantFlags || q.Seq != c.seq || q.Ack != c.ack || q.Window != 0 || q.DataOffset != 5 ||
				q.SrcAddrPort() != s.Dst || q.DstAddrPort() != s.Src || q.VerifyChecksums() != nil {
				t.Fatalf("%+v", q)
			}
		})
	}
}

func TestPureACK(t *testing.T) {
	s := packet.PureACK(netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("[2001:db8::2]:2"), 10, 20, 512)
	s.Options = packet.Options{HasTS: true, TSval: 3, TSecr: 4}
	b, err := packet.AppendSegment(nil, nil, &s)
	if err != nil {
		t.Fatal(err)
	}
	var p packet.Packet
	if err := p.Decode(b, packet.LinkIP); err != nil {
		t.Fatal(err)
	}
	if p.Flags != packet.FlagACK || p.Seq != 10 || p.Ack != 20 || p.Window != 512 || p.DataOffset != 8 || p.TTL != 64 ||
		!bytes.Equal(p.TCPHeader()[20:], []byte{1, 1, 8, 10, 0, 0, 0, 3, 0, 0, 0, 4}) {
		t.Fatalf("%+v %x", p, p.TCPHeader())
	}
}

// The SYN to the backend, as synproxy_send_server_syn builds it (§4.4 step 3).
func TestBackendSYN(t *testing.T) {
	const cookieISN = 0xf97a3928
	for _, c := range []struct {
		name  string
		ack   packet.Options
		mss   uint16
		opts  string
		flags packet.TCPFlags
	}{
		{"TS cookie: wscale 7, SACK", packet.Options{HasTS: true, TSval: 0xaabbccdd, TSecr: 0x12345657}, 1460,
			"020405b4 0402080a aabbccdd 12345657 01030307", packet.FlagSYN},
		{"TS cookie: no wscale, no SACK", packet.Options{HasTS: true, TSval: 1, TSecr: 0x1234564f}, 1300,
			"02040514 0101080a 00000001 1234564f", packet.FlagSYN},
		{"TS cookie: ECN, wscale 14", packet.Options{HasTS: true, TSval: 1, TSecr: 0x1234567e}, 536,
			"02040218 0402080a 00000001 1234567e 0103030e", packet.FlagSYN | packet.FlagECE | packet.FlagCWR},
		{"no timestamp: MSS only", packet.Options{}, 1440, "020405a0", packet.FlagSYN},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := packet.Segment{Src: netip.MustParseAddrPort("192.0.2.1:12345"), Dst: netip.MustParseAddrPort("198.51.100.7:80"),
				Seq: 1001, Ack: cookieISN + 1, Flags: packet.FlagACK, Window: 502, Options: c.ack, DF: true}
			b, _ := packet.AppendSegment(nil, nil, &s)
			var ack packet.Packet
			if err := ack.Decode(b, packet.LinkIP); err != nil {
				t.Fatal(err)
			}
			// The TS bits decode as package cookie decodes them.
			if c.ack.HasTS {
				d := cookie.DecodeTSecr(c.ack.TSecr)
				bs := packet.BackendSYN(&ack, c.mss)
				if d.HasWScale != bs.Options.HasWScale || d.SACK != bs.Options.SACKPermitted || d.ECN != (bs.Flags&packet.FlagECE != 0) ||
					(d.HasWScale && d.WScale != bs.Options.WScale) {
					t.Fatalf("cookie.DecodeTSecr %+v, BackendSYN options %+v", d, bs.Options)
				}
			}
			bs := packet.BackendSYN(&ack, c.mss)
			out, err := packet.AppendSegment(nil, nil, &bs)
			if err != nil {
				t.Fatal(err)
			}
			var p packet.Packet
			if err := p.Decode(out, packet.LinkIP); err != nil {
				t.Fatal(err)
			}
			want, _ := hex.DecodeString(stripSpaces(c.opts))
			if !bytes.Equal(p.TCPHeader()[20:], want) {
				t.Errorf("options %x, want %x", p.TCPHeader()[20:], want)
			}
			if p.SrcAddrPort() != s.Src || p.DstAddrPort() != s.Dst || p.Seq != 1000 || p.Ack != cookieISN ||
				p.Flags != c.flags || p.Window != 502 || p.ID != 0 || p.IPFlags != packet.IPv4DontFragment || p.TTL != 64 ||
				p.VerifyChecksums() != nil {
				t.Errorf("%+v", p)
			}
		})
	}
}

func TestAppendOptions(t *testing.T) {
	o := packet.Options{HasMSS: true, MSS: 1460, SACKPermitted: true, NumSACK: 1, SACK: [4]packet.SACKBlock{{1, 2}}}
	b, err := packet.AppendOptions([]byte{0xff}, &o)
	want, _ := hex.DecodeString("ff" + "020405b4" + "01010402" + "0101050a0000000100000002")
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("%x %v", b, err)
	}
	o.NumSACK = 4
	if _, err := packet.AppendOptions(nil, &o); !errors.Is(err, packet.ErrOptionsTooLong) {
		t.Fatal(err)
	}
}
