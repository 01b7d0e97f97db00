package handoff_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

func TestProxyHeader(t *testing.T) {
	for _, tc := range []struct {
		client, server string
		hex            string // the header, from the PROXY protocol spec's layout (section 2.2)
		wantC, wantS   string // as parsed back
	}{
		{"10.99.1.1:40000", "10.99.1.2:8080",
			"0d0a0d0a000d0a515549540a" + "21" + "11" + "000c" + "0a630101" + "0a630102" + "9c40" + "1f90",
			"10.99.1.1:40000", "10.99.1.2:8080"},
		{"[fd00:99:1::1]:443", "[fd00:99:1::2]:8443",
			"0d0a0d0a000d0a515549540a" + "21" + "21" + "0024" + "fd000099000100000000000000000001" +
				"fd000099000100000000000000000002" + "01bb" + "20fb",
			"[fd00:99:1::1]:443", "[fd00:99:1::2]:8443"},
		// A v4-mapped client of an IPv4 server is IPv4.
		{"[::ffff:10.99.1.1]:1", "10.99.1.2:2",
			"0d0a0d0a000d0a515549540a" + "21" + "11" + "000c" + "0a630101" + "0a630102" + "0001" + "0002",
			"10.99.1.1:1", "10.99.1.2:2"},
		// Mixed families become IPv6 with a mapped address.
		{"10.99.1.1:1", "[fd00:99:1::2]:2",
			"0d0a0d0a000d0a515549540a" + "21" + "21" + "0024" + "00000000000000000000ffff0a630101" +
				"fd000099000100000000000000000002" + "0001" + "0002",
			"[::ffff:10.99.1.1]:1", "[fd00:99:1::2]:2"},
	} {
		b := handoff.AppendProxyHeader([]byte("x"), netip.MustParseAddrPort(tc.client), netip.MustParseAddrPort(tc.server))
		if got := hex.EncodeToString(b[1:]); got != tc.hex {
			t.Errorf("%s -> %s:\n got %s\nwant %s", tc.client, tc.server, got, tc.hex)
		}
		c, s, n, err := handoff.ParseProxyHeader(append(b[1:], "payload"...))
		if err != nil || n != len(b)-1 || c.String() != tc.wantC || s.String() != tc.wantS {
			t.Errorf("parse back: %v %v %d %v", c, s, n, err)
		}
	}
}

func TestParseProxyHeaderErrors(t *testing.T) {
	good := handoff.AppendProxyHeader(nil, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"))
	mod := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	local := mod(12, 0x20)
	local = append(local[:14:14], 0, 0)
	c, s, n, err := handoff.ParseProxyHeader(local)
	if err != nil || n != 16 || c.IsValid() || s.IsValid() {
		t.Errorf("LOCAL command: %v %v %d %v", c, s, n, err)
	}
	for name, b := range map[string][]byte{
		"empty":       nil,
		"short":       good[:15],
		"truncated":   good[:len(good)-1],
		"signature":   mod(0, 'x'),
		"version 1":   mod(12, 0x11),
		"command 2":   mod(12, 0x22),
		"UDP":         mod(13, 0x12),
		"unix":        mod(13, 0x31),
		"short addrs": append(mod(15, 4), 0, 0),
		"v1 text":     []byte("PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n"),
	} {
		if _, _, _, err := handoff.ParseProxyHeader(b); !errors.Is(err, handoff.ErrProxyHeader) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestAppendProxyHeaderAllocs(t *testing.T) {
	c, s := netip.MustParseAddrPort("[fd00::1]:1"), netip.MustParseAddrPort("[fd00::2]:2")
	buf := make([]byte, 0, handoff.ProxyHeaderLen)
	if n := testing.AllocsPerRun(100, func() { handoff.AppendProxyHeader(buf[:0], c, s) }); n != 0 {
		t.Errorf("AppendProxyHeader allocates %v times", n)
	}
}

func BenchmarkAppendProxyHeader(b *testing.B) {
	c, s := netip.MustParseAddrPort("[fd00::1]:1"), netip.MustParseAddrPort("[fd00::2]:2")
	buf := make([]byte, 0, handoff.ProxyHeaderLen)
	b.ReportAllocs()
	for b.Loop() {
		buf = handoff.AppendProxyHeader(buf[:0], c, s)
	}
}

func FuzzParseProxyHeader(f *testing.F) {
	f.Add(handoff.AppendProxyHeader(nil, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2")))
	f.Add(handoff.AppendProxyHeader(nil, netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::2]:2")))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, s, n, err := handoff.ParseProxyHeader(b)
		if err != nil {
			return
		}
		if n < 16 || n > len(b) {
			t.Fatalf("length %d of %d bytes", n, len(b))
		}
		if !c.IsValid() {
			return // LOCAL
		}
		// What parses writes back to the same addresses.
		c2, s2, _, err := handoff.ParseProxyHeader(handoff.AppendProxyHeader(nil, c, s))
		if err != nil || c2.Addr().Unmap() != c.Addr().Unmap() || s2.Addr().Unmap() != s.Addr().Unmap() ||
			c2.Port() != c.Port() || s2.Port() != s.Port() {
			t.Fatalf("round trip %v %v -> %v %v %v", c, s, c2, s2, err)
		}
	})
}
