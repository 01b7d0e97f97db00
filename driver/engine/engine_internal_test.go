package engine

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// nopQueue is a Queue that is never read; the tests call the worker's
// packet path directly.
type nopQueue struct{}

func (nopQueue) ReadBatch([]driver.Packet) (int, error) { return 0, driver.ErrClosed }
func (nopQueue) Release([]driver.Packet) error          { return nil }
func (nopQueue) WriteBatch(b [][]byte) (int, error)     { return len(b), nil }
func (nopQueue) BatchSize() int                         { return 64 }
func (nopQueue) Close() error                           { return nil }

type nopDriver struct{}

func (nopDriver) Name() string              { return "nop" }
func (nopDriver) Queues() []driver.Queue    { return []driver.Queue{nopQueue{}} }
func (nopDriver) Stats() driver.DriverStats { return driver.DriverStats{} }
func (nopDriver) Close() error              { return nil }

func testWorker(tb testing.TB) *worker {
	tb.Helper()
	ring, err := cookie.NewRing(nil)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := New(nopDriver{}, &Config{Port: 8080, Ring: ring,
		Handoff: HandoffFunc(func(*Handshake) error { return nil }),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	w := newWorker(e, nopQueue{}, 0)
	w.process(0) // sets the clock
	return w
}

var (
	tClient = netip.MustParseAddrPort("10.99.10.1:40000")
	tServer = netip.MustParseAddrPort("10.99.10.2:8080")
)

// ipv4TCP builds an IPv4 TCP segment from tClient to tServer.
func ipv4TCP(seq, ack uint32, flags uint8, opts, payload []byte) []byte {
	tl := 20 + len(opts)
	b := make([]byte, 20+tl+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8], b[9] = 64, 6
	s, d := tClient.Addr().As4(), tServer.Addr().As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[10:], packet.Checksum(b[:20]))
	t := b[20:]
	binary.BigEndian.PutUint16(t[0:], tClient.Port())
	binary.BigEndian.PutUint16(t[2:], tServer.Port())
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], ack)
	t[12] = byte(tl/4) << 4
	t[13] = flags
	binary.BigEndian.PutUint16(t[14:], 64240)
	copy(t[20:], opts)
	copy(t[tl:], payload)
	binary.BigEndian.PutUint16(t[16:], packet.TCPChecksum(tClient.Addr(), tServer.Addr(), t))
	return b
}

// ethernet puts an Ethernet II header in front of the IPv4 packet ip.
func ethernet(ip []byte) []byte {
	return append([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00}, ip...)
}

// Linux's SYN options: MSS 1460, SACK-perm, TS, NOP, WS 7.
var linuxOpts = []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 1, 0, 0, 0, 0, 0, 1, 3, 3, 7}

// handshake returns a SYN and the valid ACK for the worker's cookie.
func handshake(tb testing.TB, w *worker) (syn, ack []byte) {
	syn = ipv4TCP(1000, 0, flagSYN, linuxOpts, nil)
	w.tx = w.tx[:0]
	if v := w.handle(syn, driver.LinkIP); v != driver.VerdictDrop || len(w.tx) != 1 {
		tb.Fatalf("SYN: verdict %v, %d packets", v, len(w.tx))
	}
	sa := w.tx[0][20:]
	isn := binary.BigEndian.Uint32(sa[4:])
	tsval := binary.BigEndian.Uint32(sa[20+8:])
	ts := []byte{1, 1, 8, 10, 0, 0, 2, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(ts[8:], tsval)
	ack = ipv4TCP(1001, isn+1, flagACK, ts, nil)
	return syn, ack
}

// forget clears the worker's memory of the connection tup.
func forget(w *worker, tup cookie.Tuple) {
	if f := w.flows.find(&tup, w.nowMS); f != nil {
		f.expires = 0
	}
}

// TestNoAllocs pins the engine's per-packet path at zero allocations.
func TestNoAllocs(t *testing.T) {
	w := testWorker(t)
	syn, ack := handshake(t, w)
	forged := ipv4TCP(1001, 12345, flagACK, nil, nil)
	fin := ipv4TCP(1001, 12345, flagACK|flagFIN, nil, nil)
	trunc := syn[:30]
	synEth, ackEth := ethernet(syn), ethernet(ack)
	tup := cookie.Tuple{Client: tClient, Server: tServer}
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"SYN", func() { w.tx, w.acks = w.tx[:0], w.acks[:0]; w.handle(syn, driver.LinkIP) }},
		{"ACK valid and handed over", func() {
			w.tx, w.acks = w.tx[:0], w.acks[:0]
			forget(w, tup)
			if w.handle(ack, driver.LinkIP) != driver.VerdictAccept {
				t.Fatal("valid ACK not accepted")
			}
		}},
		{"ACK forged", func() { w.handle(forged, driver.LinkIP) }},
		{"SYN in an Ethernet frame", func() { w.tx, w.acks = w.tx[:0], w.acks[:0]; w.handle(synEth, driver.LinkEthernet) }},
		{"ACK in an Ethernet frame", func() {
			w.tx, w.acks = w.tx[:0], w.acks[:0]
			forget(w, tup)
			if w.handle(ackEth, driver.LinkEthernet) != driver.VerdictAccept || len(w.acks) != 1 {
				t.Fatal("valid ACK in a frame not accepted")
			}
		}},
		{"segment of a handed-over connection", func() {
			w.tx, w.acks = w.tx[:0], w.acks[:0]
			forget(w, tup)
			w.handle(ack, driver.LinkIP)
			w.nowMS += recentTTL
			w.handle(ack, driver.LinkIP)
			w.nowMS -= recentTTL
		}},
		{"FIN of an unknown connection", func() { w.handle(fin, driver.LinkIP) }},
		{"truncated", func() { w.handle(trunc, driver.LinkIP) }},
		{"batch with re-send scan", func() {
			w.nextScan = 0
			w.process(0)
		}},
	} {
		if n := testing.AllocsPerRun(1000, tc.fn); n != 0 {
			t.Errorf("%s: %v allocations per packet, want 0", tc.name, n)
		}
	}
}

func BenchmarkEngineSYN(b *testing.B) {
	w := testWorker(b)
	syn, _ := handshake(b, w)
	b.ReportAllocs()
	b.SetBytes(int64(len(syn)))
	for b.Loop() {
		w.tx = w.tx[:0]
		w.handle(syn, driver.LinkIP)
	}
}

func BenchmarkEngineACKValid(b *testing.B) {
	w := testWorker(b)
	_, ack := handshake(b, w)
	tup := cookie.Tuple{Client: tClient, Server: tServer}
	b.ReportAllocs()
	for b.Loop() {
		w.acks = w.acks[:0]
		forget(w, tup)
		w.handle(ack, driver.LinkIP)
	}
}

func BenchmarkEngineACKForged(b *testing.B) {
	w := testWorker(b)
	forged := ipv4TCP(1001, 12345, flagACK, nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		w.handle(forged, driver.LinkIP)
	}
}

func BenchmarkEngineMalformed(b *testing.B) {
	w := testWorker(b)
	bad := ipv4TCP(1000, 0, flagSYN, linuxOpts, nil)
	bad[len(bad)-1] ^= 0xff // checksum
	b.ReportAllocs()
	for b.Loop() {
		w.handle(bad, driver.LinkIP)
	}
}

// FuzzEngineHandle feeds arbitrary bytes to the engine's packet path: it
// never panics, every packet gets a verdict, and a packet that does not
// parse is dropped and counted as malformed.
func FuzzEngineHandle(f *testing.F) {
	w := testWorker(f)
	syn, ack := handshake(f, w)
	f.Add(syn)
	f.Add(ack)
	f.Add(syn[:30])
	f.Add(ipv4TCP(1, 2, flagSYN|flagFIN, nil, nil))
	f.Add(ipv4TCP(1, 2, flagSYN, []byte{2, 40, 5, 0xb4}, nil)) // option runs past the header
	f.Add(ipv4TCP(1, 2, flagSYN, []byte{8, 10, 0, 0}, nil))    // truncated timestamp
	f.Add(ipv4TCP(1, 2, flagACK, nil, []byte("payload")))
	f.Add([]byte{0x60, 0, 0, 0, 0, 20, 6, 64})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		w.tx, w.acks = w.tx[:0], w.acks[:0]
		c := &w.e.ctrs
		m0 := c.Malformed.Load()
		var s segment
		parsed := s.parse(b, driver.LinkIP) == parseOK
		v := w.handle(b, driver.LinkIP)
		if v != driver.VerdictDrop && v != driver.VerdictAccept {
			t.Fatalf("verdict %v", v)
		}
		if !parsed && (v != driver.VerdictDrop || c.Malformed.Load() != m0+1) {
			t.Fatalf("unparsable packet: verdict %v, malformed %d -> %d", v, m0, c.Malformed.Load())
		}
		for _, p := range append(w.tx, w.acks...) {
			var r segment
			if r.parse(p, driver.LinkIP) != parseOK {
				t.Fatalf("the engine built a packet it cannot parse: % x", p)
			}
		}
	})
}

// TestLostACKFirstData: a client whose handshake ACK was lost sends its
// data at once against the SYN-ACK's window; the first data segment
// carries the ACK's sequence numbers, proves the cookie and is handed over
// with its payload.
func TestLostACKFirstData(t *testing.T) {
	ring, err := cookie.NewRing(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []Handshake
	e, err := New(nopDriver{}, &Config{Port: 8080, Ring: ring,
		Handoff: HandoffFunc(func(h *Handshake) error {
			c := *h
			c.Payload = append([]byte(nil), h.Payload...)
			got = append(got, c)
			return nil
		}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker(e, nopQueue{}, 0)
	w.process(0)
	w.tx = w.tx[:0]
	syn := ipv4TCP(1000, 0, flagSYN, linuxOpts, nil)
	w.handle(syn, driver.LinkIP)
	if len(w.tx) != 1 {
		t.Fatalf("%d SYN-ACKs", len(w.tx))
	}
	sa := w.tx[0][20:]
	if win := binary.BigEndian.Uint16(sa[14:]); win != SYNACKWindow {
		t.Fatalf("SYN-ACK window %d, want %d", win, SYNACKWindow)
	}
	isn := binary.BigEndian.Uint32(sa[4:])
	ts := []byte{1, 1, 8, 10, 0, 0, 2, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(ts[8:], binary.BigEndian.Uint32(sa[20+8:]))

	w.tx, w.acks = w.tx[:0], w.acks[:0]
	data := ipv4TCP(1001, isn+1, flagACK|0x08, ts, []byte("GET / HTTP/1.1\r\n\r\n"))
	if v := w.handle(data, driver.LinkIP); v != driver.VerdictAccept {
		t.Fatalf("first data segment: verdict %v", v)
	}
	if len(got) != 1 || got[0].ClientISN != 1000 || got[0].ServerISN != isn || string(got[0].Payload) != "GET / HTTP/1.1\r\n\r\n" {
		t.Fatalf("handshakes %+v", got)
	}
}

// TestLinkTypes: the driver's link types are packet's, value for value, as
// parse converts them.
func TestLinkTypes(t *testing.T) {
	for _, tc := range []struct {
		d driver.Link
		p packet.LinkType
	}{{driver.LinkIP, packet.LinkIP}, {driver.LinkEthernet, packet.LinkEthernet}} {
		if packet.LinkType(tc.d) != tc.p || tc.d.String() != tc.p.String() {
			t.Errorf("driver.%v is packet.%v", tc.d, packet.LinkType(tc.d))
		}
	}
}

// TestRules: the configured synproxy rules shape the SYN-ACK and the
// handed-over connection; nil means the defaults.
func TestRules(t *testing.T) {
	noMSS := DefaultRule(false)
	noMSS.HasMSS = false
	noWScale := DefaultRule(false)
	noWScale.HasWScale = false
	noTS := DefaultRule(false)
	noTS.Timestamp = false
	noSACK := DefaultRule(false)
	noSACK.SACKPerm = false
	ttl := DefaultRule(false)
	ttl.TTL, ttl.MSS, ttl.WScale = 99, 1200, 3
	for _, tc := range []struct {
		name         string
		rule         *packet.Rule
		mss          uint16 // 0: no MSS option
		ws           int    // -1: none
		ts, sack     bool
		ttl          uint8
		wsOK, sackOK bool
	}{
		{"default", nil, 1460, 7, true, true, 64, true, true},
		{"no mss", &noMSS, 0, 7, true, true, 64, true, true},
		{"no wscale", &noWScale, 1460, -1, true, true, 64, false, true},
		{"no timestamp", &noTS, 1460, -1, false, false, 64, false, false},
		{"no sack", &noSACK, 1460, 7, true, false, 64, true, false},
		{"ttl mss wscale", &ttl, 1200, 3, true, true, 99, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ring, err := cookie.NewRing(nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []Handshake
			e, err := New(nopDriver{}, &Config{Port: 8080, Ring: ring, Rule4: tc.rule,
				Handoff: HandoffFunc(func(h *Handshake) error { got = append(got, *h); return nil }),
				Logger:  slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			w := newWorker(e, nopQueue{}, 0)
			w.process(0)
			w.tx = w.tx[:0]
			w.handle(ipv4TCP(1000, 0, flagSYN, linuxOpts, nil), driver.LinkIP)
			if len(w.tx) != 1 {
				t.Fatalf("%d SYN-ACKs", len(w.tx))
			}
			var sa packet.Packet
			if err := sa.Decode(w.tx[0], packet.LinkIP); err != nil {
				t.Fatal(err)
			}
			o := &sa.Options
			ws := -1
			if o.HasWScale {
				ws = int(o.WScale)
			}
			if o.HasMSS != (tc.mss != 0) || o.MSS != tc.mss || ws != tc.ws || o.HasTS != tc.ts ||
				o.SACKPermitted != tc.sack || sa.TTL != tc.ttl {
				t.Fatalf("SYN-ACK: MSS %v %d, wscale %d, TS %v, SACK %v, TTL %d", o.HasMSS, o.MSS, ws, o.HasTS,
					o.SACKPermitted, sa.TTL)
			}
			var opts []byte
			if o.HasTS {
				opts = []byte{1, 1, 8, 10, 0, 0, 2, 0, 0, 0, 0, 0}
				binary.BigEndian.PutUint32(opts[8:], o.TSval)
			}
			w.tx, w.acks = w.tx[:0], w.acks[:0]
			if v := w.handle(ipv4TCP(1001, sa.Seq+1, flagACK, opts, nil), driver.LinkIP); v != driver.VerdictAccept {
				t.Fatalf("ACK: verdict %v", v)
			}
			if len(got) != 1 {
				t.Fatalf("%d handshakes", len(got))
			}
			h := got[0]
			if h.WScaleOK != tc.wsOK || h.SACKOK != tc.sackOK || h.Timestamps != tc.ts ||
				tc.wsOK && (h.ServerWScale != uint8(tc.ws) || h.ClientWScale != 7) {
				t.Errorf("handshake %+v", h)
			}
			var wu packet.Packet
			if len(w.acks) != 1 || wu.Decode(w.acks[0], packet.LinkIP) != nil || wu.TTL != tc.ttl {
				t.Errorf("window update: %d packets, TTL %d", len(w.acks), wu.TTL)
			}
		})
	}
}

// TestConfigRefused: rules the engine cannot serve are refused by New.
func TestConfigRefused(t *testing.T) {
	ring, err := cookie.NewRing(nil)
	if err != nil {
		t.Fatal(err)
	}
	ecn := DefaultRule(false)
	ecn.ECN = true
	ws := DefaultRule(true)
	ws.WScale = 15
	ho := HandoffFunc(func(*Handshake) error { return nil })
	for _, tc := range []struct {
		name string
		cfg  *Config
	}{
		{"nil", nil},
		{"no port", &Config{Ring: ring, Handoff: ho}},
		{"no ring", &Config{Port: 1, Handoff: ho}},
		{"no handoff", &Config{Port: 1, Ring: ring}},
		{"ECN", &Config{Port: 1, Ring: ring, Handoff: ho, Rule4: &ecn}},
		{"wscale 15", &Config{Port: 1, Ring: ring, Handoff: ho, Rule6: &ws}},
		{"retries 9", &Config{Port: 1, Ring: ring, Handoff: ho, SYNACKRetries: 9}},
	} {
		if _, err := New(nopDriver{}, tc.cfg); err == nil || !strings.HasPrefix(err.Error(), "engine: ") {
			t.Errorf("%s: New returned %v", tc.name, err)
		}
	}
}
