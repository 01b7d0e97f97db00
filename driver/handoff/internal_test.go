package handoff

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

func TestTSClock(t *testing.T) {
	for _, tc := range []struct{ now, tsecr, want uint32 }{
		{1000, 0, 1000},    // no echo: the clock
		{1000, 900, 1000},  // SYN-ACK in the past
		{1000, 1041, 1042}, // ahead by the cookie bits: theirs, made even
		{1000, 1000 + 1<<30, 1000 + 1<<30},
		{1000, 1000 + 1<<31 + 2, 1000}, // more than half the space ahead is behind
		{0xffffff00, 0x10, 0x10},       // ahead across the wrap
		{0x10, 0xffffff00, 0x10},       // behind across the wrap
		{1001, 0, 1002},                // never odd
	} {
		if got := tsClock(tc.now, tc.tsecr); got != tc.want {
			t.Errorf("tsClock(%#x, %#x) = %#x, want %#x", tc.now, tc.tsecr, got, tc.want)
		}
	}
}

// refChecksum is RFC 1071 over the pseudo-header and segment, written out
// plainly.
func refChecksum(src, dst netip.Addr, seg []byte) uint16 {
	var b []byte
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(seg)))
	b = append(b, 0, 0, 0, 6)
	b = append(b, seg...)
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	var s uint64
	for i := 0; i < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// TestTCPChecksum checks the checksum the window update carries.
func TestTCPChecksum(t *testing.T) {
	addrs := [][2]netip.Addr{
		{netip.MustParseAddr("10.99.1.2"), netip.MustParseAddr("10.99.1.1")},
		{netip.MustParseAddr("fd00:99:1::2"), netip.MustParseAddr("fd00:99:1::1")},
	}
	seg := make([]byte, 0, 1600)
	for n := range 1500 {
		for _, a := range addrs {
			if got, want := packet.TCPChecksum(a[0], a[1], seg), refChecksum(a[0], a[1], seg); got != want {
				t.Fatalf("length %d %v: %#x, want %#x", n, a[0], got, want)
			}
		}
		seg = append(seg, byte(n*7+n>>8))
	}
}

func TestWindowUpdateSegment(t *testing.T) {
	h := &Handshake{ClientISN: 100, ServerISN: 0xfffffff0, Timestamps: true, TSval: 777}
	h.Tuple.Client = netip.MustParseAddrPort("[fd00:99:1::1]:40000")
	h.Tuple.Server = netip.MustParseAddrPort("[fd00:99:1::2]:8080")
	b := windowUpdate(h, 111, 501, 4242)
	if len(b) != 32 || b[12] != 8<<4 || b[13] != 0x10 {
		t.Fatalf("header length/flags: % x", b)
	}
	be := binary.BigEndian
	if be.Uint16(b) != 8080 || be.Uint16(b[2:]) != 40000 || be.Uint32(b[4:]) != 0xfffffff1 || be.Uint32(b[8:]) != 111 ||
		be.Uint16(b[14:]) != 501 || be.Uint32(b[24:]) != 4242 || be.Uint32(b[28:]) != 777 || string(b[20:24]) != "\x01\x01\x08\x0a" {
		t.Errorf("fields: % x", b)
	}
	sum := be.Uint16(b[16:])
	b[16], b[17] = 0, 0
	if want := refChecksum(h.Tuple.Server.Addr(), h.Tuple.Client.Addr(), b); sum != want {
		t.Errorf("checksum %#x, want %#x", sum, want)
	}
	h.Timestamps = false
	if b := windowUpdate(h, 111, 501, 4242); len(b) != 20 || b[12] != 5<<4 {
		t.Errorf("without timestamps: % x", b)
	}
}
