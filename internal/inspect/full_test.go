package inspect

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// fullHandshake adds a handshake whose SYN-ACK carries a full-profile
// cookie made in slot count (as synproxy-lite run --cookie-profile full
// sends it), and the client's ACK.
func (c *capBuilder) fullHandshake(client, server string, opts packet.Options, count uint32) uint32 {
	c.t.Helper()
	cl, sv := netip.MustParseAddrPort(client), netip.MustParseAddrPort(server)
	syn := packet.Segment{Src: cl, Dst: sv, Seq: 2000, Flags: packet.FlagSYN, Window: 64240, Options: opts, DF: true}
	var p packet.Packet
	if err := p.Decode(c.seg(&syn, true), packet.LinkEthernet); err != nil {
		c.t.Fatal(err)
	}
	o := inspectRule.Offer(&p)
	fo := cookie.FullOptions{MSS: o.CookieMSS, WScale: opts.WScale, HasWScale: opts.HasWScale, SACK: opts.SACKPermitted}
	o.Options.HasWScale, o.Options.WScale, o.Options.SACKPermitted = opts.HasWScale, 7, opts.SACKPermitted
	isn, ts, err := c.key.EncodeFull(cookie.Tuple{Client: cl, Server: sv}, p.Seq, fo, count, 1)
	if err != nil {
		c.t.Fatal(err)
	}
	if o.Options.HasTS {
		o.Options.TSval = cookie.FullTSval(0x12345678, ts)
	}
	sa, err := packet.AppendSYNACK(nil, &p, isn, &o)
	if err != nil {
		c.t.Fatal(err)
	}
	c.add(sa)
	ack := packet.PureACK(cl, sv, 2001, isn+1, 502)
	c.seg(&ack, true)
	return isn
}

// TestInspectFullProfile: given the key, inspect recognises a full-profile
// cookie (with and without timestamps, with --count and from the capture
// time) beside a Linux-profile one, and reports the options it carries.
func TestInspectFullProfile(t *testing.T) {
	at := time.Unix(28633000*60+30, 0)
	count := cookie.WallSlot(at)
	c := newCapBuilder(t, at)
	noTS := packet.Options{HasMSS: true, MSS: 1452, HasWScale: true, WScale: 8, SACKPermitted: true}
	withTS := noTS
	withTS.HasTS, withTS.TSval = true, 77
	c.fullHandshake("10.99.1.1:40000", "10.99.1.2:80", noTS, count)
	c.fullHandshake("[fd00:99::1]:40001", "[fd00:99::2]:80", withTS, count)
	c.handshake("10.99.1.3:40002", "10.99.1.2:80", withTS, 0, count, nil)
	path := filepath.Join(t.TempDir(), "full.pcap")
	c.writePcap(path)
	for _, o := range []*Options{withKey(count, true), withKey(0, false)} {
		rep := read(t, path, o)
		if len(rep.hs) != 3 {
			t.Fatalf("%d handshakes", len(rep.hs))
		}
		for i, h := range rep.hs {
			ck := h.Cookie
			if ck == nil || !ck.Valid {
				t.Fatalf("handshake %d: %+v", i, ck)
			}
			if i == 2 {
				if ck.Profile != "" || ck.fullCk != nil {
					t.Errorf("a Linux-profile cookie reported as %q", ck.Profile)
				}
				continue
			}
			if ck.Profile != "full" || ck.WScale == nil || *ck.WScale != 8 || !ck.SACK || ck.KeyBit != 1 ||
				ck.TSChecked != (i == 1) || *ck.Slot != count || ck.Note == "" {
				t.Errorf("handshake %d: %+v %+v", i, ck, ck.fullCk)
			}
			if want := map[int]uint16{0: 1452, 1: 1440}[i]; ck.MSS != want {
				t.Errorf("handshake %d: MSS %d, want %d", i, ck.MSS, want)
			}
		}
	}
	txt := inspectText(t, path, withKey(count, true))
	if !strings.Contains(txt, "profile full") || !strings.Contains(txt, "wscale 8, SACK true") {
		t.Errorf("text report:\n%s", txt)
	}
	// With another key, neither profile matches.
	other, _ := cookie.ParseKey(strings.Repeat("ab", 32))
	for _, h := range read(t, path, &Options{Key: &other, CheckSlot: count, HasCheckSlot: true}).hs {
		if h.Cookie.Valid {
			t.Errorf("valid under another key: %+v", h.Cookie)
		}
	}
}
