package explain

import (
	"net/netip"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/cookie"
)

// TestLayouts pins the two layouts of the page to the cookie package: the
// same ISNs, fields that add back up to the bits, the documented forgery
// odds, and a client without timestamps that keeps window scaling only
// under the full profile.
func TestLayouts(t *testing.T) {
	k, _ := cookie.ParseKey(ExampleKey)
	for _, ts := range []bool{true, false} {
		in := Default()
		in.TS = ts
		s, err := Build(in)
		if err != nil {
			t.Fatal(err)
		}
		lin, full := s.Layouts[0], s.Layouts[1]
		if lin.Profile != "linux" || full.Profile != "full" || lin.ISN != s.Encoding.ISN {
			t.Fatalf("layouts %q %q, Linux ISN %08x", lin.Profile, full.Profile, lin.ISN)
		}
		tup := cookie.Tuple{Client: netip.MustParseAddrPort(in.Client), Server: netip.MustParseAddrPort(in.Server)}
		o := cookie.FullOptions{MSS: in.MSS, WScale: in.WScale, HasWScale: in.HasWScale, SACK: in.SACK}
		isn, _, err := k.EncodeFull(tup, in.ClientISN, o, in.Count, 0)
		if err != nil || full.ISN != isn {
			t.Fatalf("full ISN %08x, EncodeFull %08x (%v)", full.ISN, isn, err)
		}
		for _, l := range s.Layouts {
			var sum uint32
			next := 31
			for _, f := range l.Fields {
				if int(f.Hi) != next || f.Lo > f.Hi {
					t.Errorf("%s: field %q bits %d..%d after bit %d", l.Profile, f.Name, f.Hi, f.Lo, next+1)
				}
				next = int(f.Lo) - 1
				sum |= f.Value << f.Lo
			}
			if next != -1 || bits32(sum) != l.Bits {
				t.Errorf("%s: fields make %s, bits %s", l.Profile, bits32(sum), l.Bits)
			}
			if l.Check != "valid" {
				t.Errorf("%s: the client's ACK %q", l.Profile, l.Check)
			}
		}
		exps := []uint8{lin.Odds[0].Exp, lin.Odds[1].Exp, full.Odds[0].Exp, full.Odds[1].Exp, full.Odds[2].Exp}
		if exps[0] != 29 || exps[1] != 28 || exps[2] != 22 || exps[3] != 21 || exps[4] != 30 {
			t.Errorf("odds 2^-%v, want 29 28 22 21 30 (docs/cookie.md)", exps)
		}
		if !full.Kept.HasWScale || full.Kept.WScale != 7 || !full.Kept.SACK || full.Kept.MSS != 1460 || full.Kept.Mbps != 1677 {
			t.Errorf("ts %v: full profile keeps %+v", ts, full.Kept)
		}
		if lin.Kept.HasWScale != ts || lin.Kept.SACK != ts || lin.Kept.MSS != 1460 {
			t.Errorf("ts %v: Linux profile keeps %+v", ts, lin.Kept)
		}
		if !ts && (lin.Kept.Window != 65535 || lin.Kept.Mbps != 13 || lin.TS != "" || full.TS != "") {
			t.Errorf("without timestamps: Linux keeps %+v, timestamp %q %q", lin.Kept, lin.TS, full.TS)
		}
	}
	// A tampered or late ACK fails under both.
	in := Default()
	in.AckAckDelta = 1 << 20
	s, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if s.Layouts[0].Check == "valid" || s.Layouts[1].Check != "mac" {
		t.Errorf("tampered ACK: %q %q", s.Layouts[0].Check, s.Layouts[1].Check)
	}
	// An ACK after the cookie's two slots: stale by the Linux slot byte;
	// the full profile's parity bit reads it as made now, and the MAC fails.
	in = Default()
	in.AckDelay = 2*60 - in.SynSecond
	if s, err = Build(in); err != nil {
		t.Fatal(err)
	}
	if s.Layouts[0].Check != "stale" || s.Layouts[1].Check != "mac" {
		t.Errorf("late ACK: %q %q", s.Layouts[0].Check, s.Layouts[1].Check)
	}
}
