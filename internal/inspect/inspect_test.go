package inspect

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// specKeyHex is bytes 00 01 … 1f, the key of package cookie's worked examples.
const specKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// specKey is specKeyHex parsed.
var specKey, _ = cookie.ParseKey(specKeyHex)

// The captures of these tests are built here: handshakes made with package
// packet's builders carrying cookies made by package cookie with the
// specification's example key, plus malformed and uninteresting frames.

var inspectRule = packet.Rule{HasMSS: true, MSS: 1460, HasWScale: true, WScale: 7, Timestamp: true, SACKPerm: true}

type capFrame struct {
	data []byte
	ts   time.Time
}

type capBuilder struct {
	t      testing.TB
	key    cookie.Key
	frames []capFrame
	at     time.Time
}

func newCapBuilder(t testing.TB, at time.Time) *capBuilder {
	k, err := cookie.ParseKey(specKeyHex)
	if err != nil {
		t.Fatal(err)
	}
	return &capBuilder{t: t, key: k, at: at}
}

var (
	clientMAC = [6]byte{2, 0, 0, 0, 0, 1}
	proxyMAC  = [6]byte{2, 0, 0, 0, 0, 2}
)

func (c *capBuilder) add(b []byte) {
	c.frames = append(c.frames, capFrame{b, c.at})
	c.at = c.at.Add(time.Millisecond)
}

func (c *capBuilder) seg(s *packet.Segment, toProxy bool) []byte {
	c.t.Helper()
	eth := &packet.Ethernet{Dst: proxyMAC, Src: clientMAC}
	if !toProxy {
		eth.Dst, eth.Src = clientMAC, proxyMAC
	}
	b, err := packet.AppendSegment(nil, eth, s)
	if err != nil {
		c.t.Fatal(err)
	}
	c.add(b)
	return b
}

// handshake adds a client SYN, the synproxy SYN-ACK with a cookie made in
// slot count (or the given isn when forge is set), and the client's ACK.
// It returns the ISN.
func (c *capBuilder) handshake(client, server string, opts packet.Options, flags packet.TCPFlags, count uint32, forge *uint32) uint32 {
	c.t.Helper()
	cl, sv := netip.MustParseAddrPort(client), netip.MustParseAddrPort(server)
	syn := packet.Segment{Src: cl, Dst: sv, Seq: 1000, Flags: packet.FlagSYN | flags, Window: 64240, Options: opts, DF: true, ID: 7}
	var p packet.Packet
	if err := p.Decode(c.seg(&syn, true), packet.LinkEthernet); err != nil {
		c.t.Fatal(err)
	}
	o := inspectRule.Offer(&p)
	o.Options.TSval = cookie.TSval(0x12345678, cookie.TSOptions(o.TS))
	isn, err := c.key.Encode(cookie.Tuple{Client: cl, Server: sv}, p.Seq, o.CookieMSS, count)
	if err != nil {
		c.t.Fatal(err)
	}
	if forge != nil {
		isn = *forge
	}
	sa, err := packet.AppendSYNACK(nil, &p, isn, &o)
	if err != nil {
		c.t.Fatal(err)
	}
	c.add(sa)
	ack := packet.PureACK(cl, sv, 1001, isn+1, 502)
	if opts.HasTS {
		ack.Options = packet.Options{HasTS: true, TSval: opts.TSval + 1, TSecr: o.Options.TSval}
	}
	c.seg(&ack, true)
	return isn
}

func (c *capBuilder) writePcap(path string) {
	c.t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		c.t.Fatal(err)
	}
	for _, f := range c.frames {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: f.ts, CaptureLength: len(f.data), Length: len(f.data)}, f.data); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func (c *capBuilder) writePcapng(path string) {
	c.t.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, f := range c.frames {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: f.ts, CaptureLength: len(f.data), Length: len(f.data)}, f.data); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

var linuxOpts = packet.Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSval: 0xaabbccdd, HasWScale: true, WScale: 7}

// captureTime is a fixed capture time; its wall-clock slot is wallSlot.
var captureTime = time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
var wallSlot = cookie.WallSlot(captureTime)

// buildMainCapture returns a capture with: 1. a Linux client's handshake
// (IPv4), 2. an IPv6 client with MSS and timestamps only and ECN asked for,
// 3. a client without options, 4. an ordinary (non-synproxy) SYN-ACK, 5. a
// SYN-ACK whose ISN is not a cookie; and between them an ARP frame, a UDP
// packet, an IPv4 fragment, a truncated frame and one with a bad TCP data
// offset.
func buildMainCapture(t *testing.T, count uint32) *capBuilder {
	c := newCapBuilder(t, captureTime)
	c.handshake("192.0.2.1:12345", "198.51.100.7:80", linuxOpts, 0, count, nil)
	c.add(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06}, make([]byte, 28)...)) // ARP
	c.handshake("[2001:db8::1]:40000", "[2001:db8::2]:443",
		packet.Options{HasMSS: true, MSS: 1400, HasTS: true, TSval: 77}, packet.FlagECE|packet.FlagCWR, count, nil)

	udp := c.seg(&packet.Segment{Src: netip.MustParseAddrPort("192.0.2.9:53"), Dst: netip.MustParseAddrPort("192.0.2.10:53")}, true)
	udp = append([]byte(nil), udp...)
	udp[14+9] = 17
	c.frames[len(c.frames)-1].data = udp

	frag := c.seg(&packet.Segment{Src: netip.MustParseAddrPort("192.0.2.9:1"), Dst: netip.MustParseAddrPort("192.0.2.10:2"), Flags: packet.FlagSYN}, true)
	frag[14+6] |= 0x20 // more fragments

	full := c.seg(&packet.Segment{Src: netip.MustParseAddrPort("192.0.2.9:1"), Dst: netip.MustParseAddrPort("192.0.2.10:2"), Flags: packet.FlagSYN, Options: linuxOpts}, true)
	c.frames[len(c.frames)-1].data = full[:40] // truncated inside the TCP header

	bad := c.seg(&packet.Segment{Src: netip.MustParseAddrPort("192.0.2.9:1"), Dst: netip.MustParseAddrPort("192.0.2.10:2"), Flags: packet.FlagSYN}, true)
	bad[14+20+12] = 0x30 // data offset 3

	c.handshake("192.0.2.3:5555", "198.51.100.7:80", packet.Options{}, 0, count, nil)

	// An ordinary SYN-ACK, as a server's TCP stack sends it.
	cl, sv := netip.MustParseAddrPort("192.0.2.4:6666"), netip.MustParseAddrPort("198.51.100.8:22")
	c.seg(&packet.Segment{Src: cl, Dst: sv, Seq: 50, Flags: packet.FlagSYN, Window: 64240, Options: linuxOpts, DF: true}, true)
	c.seg(&packet.Segment{Src: sv, Dst: cl, Seq: 9999, Ack: 51, Flags: packet.FlagSYN | packet.FlagACK, Window: 65160, DF: true, ID: 0,
		Options: packet.Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTS: true, TSval: 123456, TSecr: linuxOpts.TSval, HasWScale: true, WScale: 7}}, false)

	forged := uint32(0xdeadbeef)
	c.handshake("192.0.2.5:7777", "198.51.100.7:80", linuxOpts, 0, count, &forged)
	return c
}

type inspectLine struct {
	Type   string          `json:"type"`
	Frame  int             `json:"frame"`
	Error  string          `json:"error"`
	Client string          `json:"client"`
	Server string          `json:"server"`
	Family string          `json:"family"`
	SYN    json.RawMessage `json:"syn"`
	SYNACK *struct {
		ISN      uint32 `json:"isn"`
		Window   uint16 `json:"window"`
		Flags    string `json:"flags"`
		Checksum string `json:"checksum"`
		TSCookie *struct {
			Bits       uint8  `json:"bits"`
			WScale     *uint8 `json:"wscale"`
			SACK       bool   `json:"sack"`
			ECN        bool   `json:"ecn"`
			ClockMs    uint32 `json:"clock_ms"`
			Consistent *bool  `json:"consistent"`
		} `json:"ts_cookie"`
		Synproxy struct {
			Recognised bool     `json:"recognised"`
			Mismatches []string `json:"mismatches"`
			Rule       string   `json:"rule"`
		} `json:"synproxy"`
	} `json:"synack"`
	ACK *struct {
		EchoesCookie bool `json:"echoes_cookie"`
	} `json:"ack"`
	Cookie *struct {
		Slot8       uint8   `json:"slot_mod_256"`
		Count       *uint32 `json:"check_slot"`
		CountSource string  `json:"check_slot_source"`
		Valid       bool    `json:"valid"`
		Reason      string  `json:"reason"`
		MSS         uint16  `json:"mss"`
		MSSIndex    *uint8  `json:"mss_index"`
		WantIndex   *uint8  `json:"syn_mss_index"`
		MadeIn      *uint32 `json:"slot"`
		Age         *uint32 `json:"age"`
		Note        string  `json:"note"`
	} `json:"cookie"`
	Format     string `json:"format"`
	Frames     int    `json:"frames"`
	TCP        int    `json:"tcp"`
	Handshakes int    `json:"handshakes"`
	Malformed  int    `json:"malformed"`
	NotTCP     int    `json:"not_tcp"`
	Fragments  int    `json:"fragments"`
	Stopped    string `json:"stopped"`
}

// withKey checks cookies with the example key, in slot count when hasCount.
func withKey(count uint32, hasCount bool) *Options {
	return &Options{Key: &specKey, CheckSlot: count, HasCheckSlot: hasCount}
}

// read reads the capture at path with options o.
func read(t *testing.T, path string, o *Options) *Report {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Read(context.Background(), f, o)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rep
}

// inspectText returns the text report of the capture at path.
func inspectText(t *testing.T, path string, o *Options) string {
	t.Helper()
	var out strings.Builder
	if err := read(t, path, o).WriteText(&out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// inspectJSON returns the JSON report of the capture at path, line by line.
func inspectJSON(t *testing.T, path string, o *Options) (hs, issues []inspectLine, sum inspectLine) {
	t.Helper()
	var out strings.Builder
	if err := read(t, path, o).WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l inspectLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		switch l.Type {
		case "handshake":
			hs = append(hs, l)
		case "malformed", "skipped":
			issues = append(issues, l)
		case "summary":
			sum = l
		default:
			t.Fatalf("line of unknown type: %q", line)
		}
	}
	return hs, issues, sum
}

func TestInspectWithoutKey(t *testing.T) {
	dir := t.TempDir()
	c := buildMainCapture(t, wallSlot)
	path := filepath.Join(dir, "cap.pcap")
	c.writePcap(path)
	hs, issues, sum := inspectJSON(t, path, nil)
	if sum.Format != "pcap" || sum.Frames != len(c.frames) || sum.Handshakes != 5 || sum.Malformed != 2 || sum.Fragments != 1 || sum.NotTCP != 2 {
		t.Fatalf("summary %+v", sum)
	}
	if len(issues) != 3 || issues[0].Frame != 9 || issues[0].Type != "skipped" || !strings.Contains(issues[0].Error, "fragment") ||
		issues[1].Frame != 10 || !strings.Contains(issues[1].Error, "truncated") ||
		issues[2].Frame != 11 || !strings.Contains(issues[2].Error, "tcp: bad header length") {
		t.Fatalf("issues %+v", issues)
	}
	if len(hs) != 5 {
		t.Fatalf("%d handshakes", len(hs))
	}
	for _, h := range hs {
		if h.Cookie != nil {
			t.Errorf("a cookie check without --key: %+v", h.Cookie)
		}
		if h.SYN == nil || h.SYNACK == nil || h.SYNACK.Checksum != "ok" {
			t.Errorf("%s: incomplete %+v", h.Client, h)
		}
	}

	// 1: Linux client: everything echoed, the timestamp bits decoded.
	h := hs[0]
	if h.Client != "192.0.2.1:12345" || h.Server != "198.51.100.7:80" || h.Family != "ipv4" || h.ACK == nil || !h.ACK.EchoesCookie {
		t.Errorf("handshake 1: %+v", h)
	}
	ts := h.SYNACK.TSCookie
	if ts == nil || ts.Bits != 0x17 || ts.WScale == nil || *ts.WScale != 7 || !ts.SACK || ts.ECN || ts.ClockMs != 0x12345640 || ts.Consistent == nil || !*ts.Consistent {
		t.Errorf("handshake 1 timestamp cookie %+v", ts)
	}
	if !h.SYNACK.Synproxy.Recognised || h.SYNACK.Synproxy.Rule != "mss 1460 wscale 7 timestamp sack-perm" {
		t.Errorf("handshake 1 shape %+v", h.SYNACK.Synproxy)
	}
	// 2: IPv6, MSS+TS, ECE|CWR: nft masks ECN; no window scale (nibble 15).
	h = hs[1]
	ts = h.SYNACK.TSCookie
	if h.Family != "ipv6" || ts == nil || ts.Bits != 0x0f || ts.WScale != nil || ts.SACK || ts.ECN || !*ts.Consistent ||
		!h.SYNACK.Synproxy.Recognised || h.SYNACK.Synproxy.Rule != "mss 1460 timestamp" || h.SYNACK.Flags != "SYN|ACK" {
		t.Errorf("handshake 2: %+v %+v", h.SYNACK, ts)
	}
	// 3: no options at all: a bare SYN-ACK, still synproxy's shape.
	h = hs[2]
	if h.SYNACK.TSCookie != nil || !h.SYNACK.Synproxy.Recognised || h.SYNACK.Synproxy.Rule != "" {
		t.Errorf("handshake 3: %+v", h.SYNACK)
	}
	// 4: an ordinary SYN-ACK.
	h = hs[3]
	if h.SYNACK.Synproxy.Recognised || len(h.SYNACK.Synproxy.Mismatches) != 1 || !strings.Contains(h.SYNACK.Synproxy.Mismatches[0], "window 65160") {
		t.Errorf("handshake 4: %+v", h.SYNACK.Synproxy)
	}
	if h.SYNACK.TSCookie == nil || h.SYNACK.TSCookie.Consistent == nil || *h.SYNACK.TSCookie.Consistent {
		t.Errorf("handshake 4: a stack TSval's low bits taken as consistent: %+v", h.SYNACK.TSCookie)
	}
	if h.ACK != nil {
		t.Errorf("handshake 4 has no ACK")
	}
	// 5: forged ISN: the shape is synproxy's, nothing says it is not a cookie.
	if hs[4].SYNACK.ISN != 0xdeadbeef || !hs[4].SYNACK.Synproxy.Recognised {
		t.Errorf("handshake 5: %+v", hs[4].SYNACK)
	}

	// The text report says the same.
	out := inspectText(t, path, nil)
	for _, want := range []string{
		"frame 9: skipped: packet: ipv4: fragment",
		"frame 10: malformed, skipped: packet: ipv4: truncated",
		"frame 11: malformed, skipped: packet: tcp: bad header length",
		"handshake 1: 192.0.2.1:12345 -> 198.51.100.7:80 (IPv4)",
		"SYN      frame 1 12:00:30.000000 seq 1000 SYN win 64240 ttl 64, mss 1460, sack-perm, ts 2864434397/0, wscale 7, checksum ok",
		"timestamp cookie: bits 0x17 = wscale 7, SACK true, ECN false; clock 305419840 ms; matches the SYN's options",
		"synproxy shape: recognised (rule has: mss 1460 wscale 7 timestamp sack-perm)",
		"handshake 2: [2001:db8::1]:40000 -> [2001:db8::2]:443 (IPv6)",
		"synproxy shape: not recognised: window 65160 (synproxy: 0)",
		"cookie   not checked (no --key)",
		"pcap: 19 frames, 14 TCP, 5 handshakes, 2 malformed, 1 fragments, 2 not TCP",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

func TestInspectWithKeyAndCount(t *testing.T) {
	dir := t.TempDir()
	var count uint32 = 286386 // a Debian kernel (HZ 250) one hour after boot
	c := buildMainCapture(t, count)
	path := filepath.Join(dir, "cap.pcap")
	c.writePcap(path)
	for _, cs := range []struct {
		count   uint32
		valid   bool
		reason  string
		age     uint32
		forged  string
		comment string
	}{
		{count, true, "", 0, "hash", "the slot it was made in"},
		{count + 1, true, "", 1, "hash", "the next slot"},
		{count + 2, false, "stale", 0, "stale", "two slots later"},
		{count - 1, false, "stale", 0, "stale", "one slot early"},
	} {
		t.Run(cs.comment, func(t *testing.T) {
			hs, _, _ := inspectJSON(t, path, withKey(cs.count, true))
			for i, h := range hs[:3] {
				ck := h.Cookie
				if ck == nil || ck.Valid != cs.valid || ck.Reason != cs.reason || ck.CountSource != "flag" || *ck.Count != cs.count || ck.Slot8 != uint8(count) {
					t.Fatalf("handshake %d: %+v", i+1, ck)
				}
				if cs.valid && (*ck.MadeIn != count || *ck.Age != cs.age || *ck.MSSIndex != *ck.WantIndex || ck.Note != "") {
					t.Fatalf("handshake %d: %+v", i+1, ck)
				}
			}
			if cs.valid { // IPv4 1460 -> 1460; IPv6 1400 -> 1220; no MSS option -> index 0, 536
				if hs[0].Cookie.MSS != 1460 || hs[1].Cookie.MSS != 1220 || hs[2].Cookie.MSS != 536 {
					t.Fatalf("MSS %d %d %d", hs[0].Cookie.MSS, hs[1].Cookie.MSS, hs[2].Cookie.MSS)
				}
			}
			if f := hs[4].Cookie; f == nil || f.Valid {
				t.Fatalf("forged ISN accepted: %+v", f)
			}
		})
	}
	out := inspectText(t, path, withKey(count, true))
	for _, want := range []string{
		"cookie   slot 178 (mod 256), checked in slot 286386 (flag): valid, MSS 1460 (index 3), made in slot 286386, age 0",
		"cookie   slot 178 (mod 256), checked in slot 286386 (flag): valid, MSS 536 (index 0), made in slot 286386, age 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

// Without --check-slot the slot is inferred: from the capture's wall-clock time
// for synproxy-lite's cookies, by a search over kernel uptimes for a kernel's.
func TestInspectInfersCount(t *testing.T) {
	dir := t.TempDir()
	// Made at the capture's wall-clock slot.
	c := buildMainCapture(t, wallSlot)
	wall := filepath.Join(dir, "wall.pcap")
	c.writePcap(wall)
	hs, _, _ := inspectJSON(t, wall, withKey(0, false))
	for i, h := range hs[:3] {
		ck := h.Cookie
		if ck == nil || !ck.Valid || ck.CountSource != "wall-clock" || *ck.MadeIn != wallSlot || !strings.Contains(ck.Note, "fluke chance") {
			t.Fatalf("handshake %d: %+v", i+1, ck)
		}
	}
	if ck := hs[4].Cookie; ck.Valid || ck.Reason != "unknown-slot" || !strings.Contains(ck.Note, "pass --check-slot") {
		t.Fatalf("forged: %+v", ck)
	}

	// Made by a kernel at HZ 250, 3 days and 7 minutes after boot.
	kslot := cookie.KernelSlot(cookie.InitialJiffies(250)+uint64(3*24*60+7)*60*250, 250)
	c = buildMainCapture(t, kslot)
	kern := filepath.Join(dir, "kernel.pcap")
	c.writePcap(kern)
	hs, _, _ = inspectJSON(t, kern, withKey(0, false))
	for i, h := range hs[:3] {
		ck := h.Cookie
		if ck == nil || !ck.Valid || ck.CountSource != "kernel search (HZ 250)" || *ck.MadeIn != kslot || !strings.Contains(ck.Note, "72h7m0s after boot") {
			t.Fatalf("handshake %d: %+v", i+1, ck)
		}
	}
}

// pcapng captures read the same.
func TestInspectPcapng(t *testing.T) {
	dir := t.TempDir()
	c := buildMainCapture(t, wallSlot)
	a, b := filepath.Join(dir, "cap.pcap"), filepath.Join(dir, "cap.pcapng")
	c.writePcap(a)
	c.writePcapng(b)
	hs1, is1, s1 := inspectJSON(t, a, withKey(0, false))
	hs2, is2, s2 := inspectJSON(t, b, withKey(0, false))
	if s2.Format != "pcapng" || s1.Frames != s2.Frames || s1.Handshakes != s2.Handshakes || len(is1) != len(is2) {
		t.Fatalf("pcap %+v, pcapng %+v", s1, s2)
	}
	j1, _ := json.Marshal(hs1)
	j2, _ := json.Marshal(hs2)
	if !bytes.Equal(j1, j2) {
		t.Fatalf("pcapng report differs:\n%s\n%s", j1, j2)
	}
}

// Linux cooked captures (tcpdump -i any): SLL and SLL2, written by hand since
// gopacket's LinkType cannot hold 276.
func TestInspectCookedCaptures(t *testing.T) {
	dir := t.TempDir()
	c := newCapBuilder(t, captureTime)
	c.handshake("192.0.2.1:12345", "198.51.100.7:80", linuxOpts, 0, wallSlot, nil)
	for _, lt := range []uint32{113, 276} {
		var buf bytes.Buffer
		hdr := make([]byte, 24)
		binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
		binary.LittleEndian.PutUint16(hdr[4:], 2)
		binary.LittleEndian.PutUint16(hdr[6:], 4)
		binary.LittleEndian.PutUint32(hdr[16:], 65535)
		binary.LittleEndian.PutUint32(hdr[20:], lt)
		buf.Write(hdr)
		for _, f := range c.frames {
			ip := f.data[14:]
			et := binary.BigEndian.Uint16(f.data[12:])
			var cooked []byte
			if lt == 113 {
				cooked = make([]byte, 16)
				binary.BigEndian.PutUint16(cooked[14:], et)
			} else {
				cooked = make([]byte, 20)
				binary.BigEndian.PutUint16(cooked[0:], et)
			}
			frame := append(cooked, ip...)
			rec := make([]byte, 16)
			binary.LittleEndian.PutUint32(rec[0:], uint32(f.ts.Unix()))
			binary.LittleEndian.PutUint32(rec[4:], uint32(f.ts.Nanosecond()/1000))
			binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
			binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
			buf.Write(rec)
			buf.Write(frame)
		}
		path := filepath.Join(dir, "cooked.pcap")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		hs, issues, sum := inspectJSON(t, path, withKey(0, false))
		if len(hs) != 1 || len(issues) != 0 || sum.TCP != 3 || hs[0].Cookie == nil || !hs[0].Cookie.Valid || hs[0].ACK == nil {
			t.Fatalf("link type %d: %+v %+v %+v", lt, hs, issues, sum)
		}
	}
}

// A capture cut in the middle of a record is reported, not fatal.
func TestInspectTruncatedFile(t *testing.T) {
	dir := t.TempDir()
	c := newCapBuilder(t, captureTime)
	c.handshake("192.0.2.1:12345", "198.51.100.7:80", linuxOpts, 0, wallSlot, nil)
	path := filepath.Join(dir, "cap.pcap")
	c.writePcap(path)
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, b[:len(b)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	hs, issues, sum := inspectJSON(t, path, nil)
	if len(hs) != 1 || hs[0].SYNACK == nil || hs[0].ACK != nil || sum.Malformed != 1 || sum.Stopped == "" || len(issues) != 1 || issues[0].Frame != 3 {
		t.Fatalf("%+v %+v %+v", hs, issues, sum)
	}
	// The report stands, and says the capture is damaged.
	var ce *CaptureError
	if err := read(t, path, nil).Err(); !errors.As(err, &ce) || ce.Frame != 3 || !errors.Is(err, io.ErrUnexpectedEOF) ||
		!strings.Contains(err.Error(), "the capture ends in the middle of frame 3 (the file is truncated)") {
		t.Fatalf("Err() = %v", err)
	}
	if err := read(t, path, withKey(0, false)).Err(); err == nil {
		t.Fatal("Err() = nil with a key")
	}
	c.writePcap(path)
	if err := read(t, path, nil).Err(); err != nil {
		t.Fatalf("whole capture: Err() = %v", err)
	}
}

// Files that are not captures are errors, not reports; a pcapng file on
// which gopacket's reader panics (found by FuzzInspectCapture) among them.
func TestReadErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		data string
		want string
		is   error
	}{
		{"empty", "", "not a capture file", nil},
		{"text", "hello, world", "not a pcap or pcapng file", nil},
		{"crasher", "\n\r\r\nD\x00\x00\x00M<+\x1a\x01\x00\x00\x000000000000 \x00A000000000000000000000000000000000\x00\x000000\x01\x00\x00\x000\x00\x00\x0000000000\t\x00\x00\x00\x00\x00\x00\x0000000000000000000000000000000000",
			"capture reader failed on a malformed file", errReaderPanic},
	} {
		rep, err := Read(context.Background(), strings.NewReader(c.data), withKey(0, false))
		if rep != nil || err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%s: %v, %v; want an error with %q", c.name, rep, err, c.want)
		}
	}
}

// Real kernels' SYN-ACKs: the captures of Linux 6.1 and 6.12 nftables
// synproxy in packet/testdata (with the kernels' secrets in kernel.json) are
// all recognised as synproxy's, their timestamp bits match the SYNs, their
// checksums are the offload form, and every cookie checks with the kernel's
// key, both at the slots recorded around the capture and by the search.
func TestInspectKernelCaptures(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "packet", "testdata", "kernel.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index []struct {
		File       string
		Key4, Key6 string
		Min        uint32 `json:"slot_min"`
		Max        uint32 `json:"slot_max"`
		Pairs      int
	}
	if err := json.Unmarshal(raw, &index); err != nil || len(index) < 2 {
		t.Fatalf("kernel.json: %v (%d entries)", err, len(index))
	}
	for _, fx := range index {
		path := filepath.Join("..", "..", "packet", "testdata", fx.File)
		k4, err := cookie.ParseKey(fx.Key4)
		if err != nil {
			t.Fatal(err)
		}
		k6, err := cookie.ParseKey(fx.Key6)
		if err != nil {
			t.Fatal(err)
		}
		for _, count := range []string{"", strconv.FormatUint(uint64(fx.Max), 10)} {
			o := &Options{Key: &k4, Key6: &k6}
			if count != "" {
				o.CheckSlot, o.HasCheckSlot = fx.Max, true
			}
			hs, issues, sum := inspectJSON(t, path, o)
			if len(hs) != fx.Pairs || len(issues) != 0 || sum.Frames != 2*fx.Pairs {
				t.Fatalf("%s: %d handshakes, %d issues, %+v", fx.File, len(hs), len(issues), sum)
			}
			for i, h := range hs {
				sa := h.SYNACK
				if sa == nil || !sa.Synproxy.Recognised || sa.Window != 0 || sa.Checksum != "partial" {
					t.Fatalf("%s handshake %d: %+v", fx.File, i+1, sa)
				}
				if sa.TSCookie != nil && (sa.TSCookie.Consistent == nil || !*sa.TSCookie.Consistent) {
					t.Fatalf("%s handshake %d: timestamp bits %+v", fx.File, i+1, sa.TSCookie)
				}
				ck := h.Cookie
				if ck == nil || !ck.Valid || *ck.MadeIn < fx.Min || *ck.MadeIn > fx.Max || *ck.MSSIndex != *ck.WantIndex {
					t.Fatalf("%s handshake %d (%s): cookie %+v", fx.File, i+1, h.Family, ck)
				}
				if count == "" && !strings.HasPrefix(ck.CountSource, "kernel search (HZ ") {
					t.Fatalf("%s handshake %d: count from %q", fx.File, i+1, ck.CountSource)
				}
			}
		}
	}
}

// FuzzInspectCapture: any bytes as a capture file give a report or an
// error, never a panic.
func FuzzInspectCapture(f *testing.F) {
	c := newCapBuilder(f, captureTime)
	c.handshake("192.0.2.1:12345", "198.51.100.7:80", linuxOpts, 0, wallSlot, nil)
	c.handshake("[2001:db8::1]:40000", "[2001:db8::2]:443", linuxOpts, 0, wallSlot, nil)
	dir := f.TempDir()
	for _, name := range []string{"a.pcap", "a.pcapng"} {
		path := filepath.Join(dir, name)
		if name == "a.pcap" {
			c.writePcap(path)
		} else {
			c.writePcapng(path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	key, _ := cookie.ParseKey(specKeyHex)
	f.Fuzz(func(t *testing.T, b []byte) {
		o := &Options{Key: &key, Key6: &key}
		rep, err := Read(context.Background(), bytes.NewReader(b), o)
		if err != nil {
			return
		}
		var out bytes.Buffer
		rep.WriteText(&out)
		rep.WriteJSON(&out)
	})
}
