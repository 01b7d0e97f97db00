package bgp

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func pfx(s ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, x := range s {
		ps = append(ps, netip.MustParsePrefix(x))
	}
	return ps
}

func TestUpdateRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		u    Update
	}{
		{"end of rib ipv4", Update{}},
		{"end of rib ipv6", Update{EndOfRIB6: true}},
		{"announce ipv4", Update{NLRI: pfx("10.99.175.1/32", "10.99.0.0/16"), ASPath: []uint32{65001},
			NextHop: netip.MustParseAddr("10.99.161.11"), Communities: []uint32{65001<<16 | 100}}},
		{"announce both", Update{NLRI: pfx("10.99.175.1/32"), Reach6: pfx("fd00:99:af::1/128", "fd00:99::/48"),
			ASPath: []uint32{4200000001}, NextHop: netip.MustParseAddr("10.99.161.11"),
			NextHop6: netip.MustParseAddr("fd00:99:a1::11")}},
		{"withdraw both", Update{Withdrawn: pfx("10.99.175.1/32", "0.0.0.0/0"), Unreach6: pfx("fd00:99:af::1/128")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := AppendUpdate([]byte("x"), &tt.u)
			if err != nil {
				t.Fatal(err)
			}
			typ, body, n, err := ParseMessage(b[1:])
			if err != nil || typ != TypeUpdate || n != len(b)-1 {
				t.Fatalf("ParseMessage: %d %d %v", typ, n, err)
			}
			got, err := ParseUpdate(body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.u) {
				t.Errorf("round trip:\n got %+v\nwant %+v", *got, tt.u)
			}
		})
	}
}

// An UPDATE assembled by hand from RFC 4271's layout, not by AppendUpdate:
// it announces 10.99.160.0/24 with ORIGIN IGP, AS_PATH 65000 and NEXT_HOP
// 10.99.161.1.
var birdUpdate = []byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0x00, 0x2f, 0x02, 0x00, 0x00, 0x00, 0x14,
	0x40, 0x01, 0x01, 0x00,
	0x40, 0x02, 0x06, 0x02, 0x01, 0x00, 0x00, 0xfd, 0xe8,
	0x40, 0x03, 0x04, 0x0a, 0x63, 0xa1, 0x01,
	0x18, 0x0a, 0x63, 0xa0,
}

func TestParseBirdUpdate(t *testing.T) {
	typ, body, _, err := ParseMessage(birdUpdate)
	if err != nil || typ != TypeUpdate {
		t.Fatal(typ, err)
	}
	u, err := ParseUpdate(body)
	if err != nil {
		t.Fatal(err)
	}
	want := Update{NLRI: pfx("10.99.160.0/24"), ASPath: []uint32{65000}, NextHop: netip.MustParseAddr("10.99.161.1")}
	if !reflect.DeepEqual(*u, want) {
		t.Errorf("got %+v", *u)
	}
}

func TestOpenRoundTrip(t *testing.T) {
	o := &Open{ASN: 4200000001, HoldTime: 3, RouterID: netip.MustParseAddr("10.99.161.11"),
		Capabilities: []Capability{{CapMultiprotocol, []byte{0, 2, 0, 1}}, {CapFourOctetAS, []byte{0xfa, 0x56, 0xea, 0x01}}}}
	b, err := AppendOpen(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if b[20] != ASTrans>>8 || b[21] != ASTrans&0xff {
		t.Errorf("two-octet AS field %x, want AS_TRANS", b[20:22])
	}
	_, body, _, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseOpen(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, o) {
		t.Errorf("got %+v", got)
	}
	if f := got.Families(); len(f) != 1 || f[0] != [2]uint16{AFIIPv6, SAFIUnicast} {
		t.Errorf("families %v", f)
	}
}

func TestParseErrors(t *testing.T) {
	hdr := func(l int, typ byte) []byte {
		return append(bytes.Repeat([]byte{0xff}, 16), byte(l>>8), byte(l), typ)
	}
	for _, tt := range []struct {
		name      string
		b         []byte
		code, sub uint8
	}{
		{"bad marker", append([]byte{0}, hdr(19, 4)[1:]...), 1, 1},
		{"short length", hdr(18, 4), 1, 2},
		{"long length", hdr(4097, 2), 1, 2},
		{"keepalive with a body", append(hdr(20, 4), 0), 1, 2},
		{"unknown type", hdr(19, 9), 1, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := ParseMessage(tt.b)
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Code != tt.code || pe.Subcode != tt.sub {
				t.Errorf("got %v, want notification %d/%d", err, tt.code, tt.sub)
			}
		})
	}
	if _, _, _, err := ParseMessage(hdr(23, 2)); err != ErrShort {
		t.Errorf("a message cut short: %v, want ErrShort", err)
	}
	for _, body := range [][]byte{
		{0, 5, 0, 0},                     // withdrawn length past the end
		{0, 0, 0, 4, 0x40, 1, 1, 9},      // ORIGIN 9
		{0, 0, 0, 0, 33, 10, 0, 0, 0, 0}, // /33
		{0, 0, 0, 0, 24, 10, 0, 0, 1},    // host bits... 10.0.0.1/24 is 4 bytes for /24: too long is a second prefix
		{0, 0, 0, 0, 8, 10, 1},           // prefix 1/?: truncated
	} {
		if u, err := ParseUpdate(body); err == nil {
			t.Errorf("ParseUpdate(%x) = %+v, want an error", body, u)
		}
	}
}

// FuzzParse: the parser never panics, and what it accepts encodes back
// to something that parses to the same value.
func FuzzParse(f *testing.F) {
	f.Add(birdUpdate)
	f.Add(AppendKeepalive(nil))
	o, _ := AppendOpen(nil, &Open{ASN: 65001, HoldTime: 90, RouterID: netip.MustParseAddr("10.0.0.1"),
		Capabilities: []Capability{{CapFourOctetAS, []byte{0, 0, 0xfd, 0xe9}}}})
	f.Add(o)
	u, _ := AppendUpdate(nil, &Update{NLRI: pfx("10.99.175.1/32"), Reach6: pfx("fd00:99::/48"), ASPath: []uint32{1},
		NextHop: netip.MustParseAddr("10.0.0.1"), NextHop6: netip.MustParseAddr("fd00::1"), Communities: []uint32{7}})
	f.Add(u)
	f.Add(AppendNotification(nil, &Notification{Code: 6, Subcode: 2, Data: []byte("bye")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, body, _, err := ParseMessage(b)
		if err != nil {
			return
		}
		switch typ {
		case TypeOpen:
			o, err := ParseOpen(body)
			if err != nil {
				return
			}
			b2, err := AppendOpen(nil, o)
			if err != nil {
				return // e.g. too many capabilities for one OPEN
			}
			_, body2, _, err := ParseMessage(b2)
			if err != nil {
				t.Fatalf("our OPEN does not parse: %v", err)
			}
			if o2, err := ParseOpen(body2); err != nil || o2.ASN != o.ASN || o2.HoldTime != o.HoldTime || len(o2.Capabilities) != len(o.Capabilities) {
				t.Fatalf("OPEN round trip: %+v -> %+v, %v", o, o2, err)
			}
		case TypeUpdate:
			u, err := ParseUpdate(body)
			if err != nil {
				return
			}
			if len(u.NLRI) > 0 && !u.NextHop.IsValid() || len(u.Reach6) > 0 && !u.NextHop6.Is6() ||
				len(u.Reach6) > 0 && u.NextHop6.Is4In6() || len(u.ASPath) > 255 {
				return // not something we would send
			}
			b2, err := AppendUpdate(nil, u)
			if err != nil {
				return // too long for one message once our attributes are added
			}
			_, body2, _, err := ParseMessage(b2)
			if err != nil {
				t.Fatalf("our UPDATE does not parse: %v", err)
			}
			u2, err := ParseUpdate(body2)
			if err != nil {
				t.Fatalf("our UPDATE does not parse: %v", err)
			}
			// What AppendUpdate leaves out: the path attributes when there
			// is nothing to announce, a next hop without its family's
			// prefixes.
			if len(u.NLRI)+len(u.Reach6) == 0 {
				u.Origin, u.ASPath, u.Communities = 0, nil, nil
			}
			if len(u.NLRI) == 0 {
				u.NextHop = netip.Addr{}
			}
			if len(u.Reach6) == 0 {
				u.NextHop6 = netip.Addr{}
			}
			if !reflect.DeepEqual(u, u2) {
				t.Fatalf("UPDATE round trip:\n%+v\n%+v", u, u2)
			}
		case TypeNotification:
			ParseNotification(body)
		}
	})
}
