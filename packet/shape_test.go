package packet

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// shapeCase builds a SYN and the SYN-ACK a synproxy rule answers it with,
// lets edit change the SYN-ACK's segment, and decodes both.
func shapeCase(t *testing.T, synOpts Options, synFlags TCPFlags, rule Rule, edit func(*Segment)) (syn, sa Packet, opts []byte) {
	t.Helper()
	cl, sv := netip.MustParseAddrPort("192.0.2.1:12345"), netip.MustParseAddrPort("198.51.100.7:80")
	if synOpts.MSS == 1400 { // the IPv6 cases
		cl, sv = netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddrPort("[2001:db8::2]:443")
	}
	b, err := AppendSegment(nil, nil, &Segment{Src: cl, Dst: sv, Seq: 1000, Flags: FlagSYN | synFlags, Window: 64240, Options: synOpts, DF: true, ID: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := syn.Decode(b, LinkIP); err != nil {
		t.Fatal(err)
	}
	o := rule.Offer(&syn)
	o.Options.TSval = 0x12345657
	s := Segment{Src: sv, Dst: cl, Seq: 0xdeadbeef, Ack: syn.Seq + 1, Flags: o.Flags, Options: o.Options, DF: true}
	if edit != nil {
		edit(&s)
	}
	b, err = AppendSegment(nil, nil, &s)
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.Decode(b, LinkIP); err != nil {
		t.Fatal(err)
	}
	return syn, sa, append([]byte(nil), sa.TCPHeader()[TCPHeaderLen:]...)
}

func TestSynproxyShape(t *testing.T) {
	linux := Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSval: 0xaabbccdd, HasWScale: true, WScale: 7}
	full := Rule{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, Timestamp: true, SACKPerm: true}
	for _, c := range []struct {
		name     string
		synOpts  Options
		synFlags TCPFlags
		rule     Rule
		edit     func(*Segment)
		noSYN    bool
		want     []string // mismatches; nil: recognised
		rule2    Rule     // the rule read back when recognised
	}{
		{name: "linux client", synOpts: linux, rule: full, rule2: Rule{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, Timestamp: true, SACKPerm: true}},
		{name: "ipv6 mss and timestamps, ECN asked", synOpts: Options{HasMSS: true, MSS: 1400, HasTS: true, TSval: 77}, synFlags: FlagECE | FlagCWR, rule: full,
			rule2: Rule{HasMSS: true, MSS: 1460, Timestamp: true}},
		{name: "no options", rule: full, rule2: Rule{}},
		{name: "without the SYN", synOpts: linux, rule: full, noSYN: true, rule2: Rule{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, Timestamp: true, SACKPerm: true}},
		{name: "window", synOpts: linux, rule: full, edit: func(s *Segment) { s.Window = 65160 }, want: []string{"window 65160 (synproxy: 0)"}},
		{name: "ip header", synOpts: linux, rule: full, edit: func(s *Segment) { s.ID, s.DF, s.TOS = 9, false, 0x10 },
			want: []string{"IPv4 ID 9 (synproxy: 0)", "IPv4 flags 0x0 (synproxy: DF only)", "TOS 0x10 (synproxy: 0)"}},
		{name: "flags", synOpts: linux, rule: full, edit: func(s *Segment) { s.Flags |= FlagPSH; s.Urgent = 1 },
			want: []string{"flags SYN|ACK|PSH", "urgent pointer or reserved bits set"}},
		{name: "payload", synOpts: linux, rule: full, edit: func(s *Segment) { s.Payload = []byte("x") }, want: []string{"payload"}},
		{name: "ack and echo", synOpts: linux, rule: full, edit: func(s *Segment) { s.Ack++; s.Options.TSecr++ },
			want: []string{"ack 1002 is not the SYN's seq + 1", "TSecr 2864434398 does not echo the SYN's TSval 2864434397"}},
		{name: "stack order and unasked options", synOpts: Options{HasMSS: true, MSS: 1460}, synFlags: FlagECE | FlagCWR, rule: full,
			edit: func(s *Segment) {
				s.Options = Options{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, SACKPermitted: true}
				s.Flags |= FlagECE
			},
			want: []string{"window scale without timestamps", "SACK-permitted without timestamps", "ECE without timestamps",
				"window scale although the SYN had none", "SACK-permitted although the SYN had none"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			syn, sa, opts := shapeCase(t, c.synOpts, c.synFlags, c.rule, c.edit)
			sp := &syn
			if c.noSYN {
				sp = nil
			}
			got := sa.SynproxyShape(sp, opts)
			if c.want == nil {
				if !got.Recognised || got.Mismatches != nil || got.Rule != c.rule2 {
					t.Fatalf("%+v, want recognised with rule %+v", got, c.rule2)
				}
				return
			}
			if got.Recognised || got.Rule != (Rule{}) || strings.Join(got.Mismatches, "; ") != strings.Join(c.want, "; ") {
				t.Fatalf("mismatches\n%q\nwant\n%q", got.Mismatches, c.want)
			}
		})
	}
	// A layout the builders would not write: the options reordered.
	syn, sa, opts := shapeCase(t, linux, 0, full, nil)
	swapped := append(append([]byte(nil), opts[4:]...), opts[:4]...)
	got := sa.SynproxyShape(&syn, swapped)
	if want := fmt.Sprintf("option layout %x is not synproxy's order and padding", swapped); got.Recognised || len(got.Mismatches) != 1 || got.Mismatches[0] != want {
		t.Fatalf("%+v, want %q", got, want)
	}
}

// The shape check formats numbers without fmt, as fmt's %d, %#x and %x do.
func TestShapeFormatting(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		v := r.Uint64() >> (i % 64)
		b := make([]byte, i%13)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if itoa(v) != fmt.Sprintf("%d", v) || hexNum(v) != fmt.Sprintf("%#x", v) || hexBytes(b) != fmt.Sprintf("%x", b) {
			t.Fatalf("%d %x: %s %s %s", v, b, itoa(v), hexNum(v), hexBytes(b))
		}
	}
}
