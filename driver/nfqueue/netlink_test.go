package nfqueue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// packetMsg builds an NFQNL_MSG_PACKET message as the kernel sends it: the
// packet header attribute, a few attributes the driver ignores, the
// payload and, when capLen > 0, NFQA_CAP_LEN.
func packetMsg(id uint32, payload []byte, capLen uint32) []byte {
	var attrs []byte
	hdr := binary.BigEndian.AppendUint32(nil, id)
	hdr = append(hdr, 0x08, 0x00, 1) // hw_protocol, hook
	attrs = appendAttr(attrs, attrPacketHdr, hdr...)
	attrs = appendAttr(attrs, 5, 0, 0, 0, 2) // NFQA_IFINDEX_INDEV
	attrs = appendAttr(attrs, attrPayload, payload...)
	if capLen > 0 {
		attrs = appendAttr(attrs, attrCapLen, binary.BigEndian.AppendUint32(nil, capLen)...)
	}
	n := nlmsgHdrLen + nfgenLen + len(attrs)
	b := appendMsgHdr(nil, n, msgPacket, 0)
	b = appendNfgen(b, 3)
	return append(b, attrs...)
}

func TestParsePacket(t *testing.T) {
	syn := bytes.Repeat([]byte{0x45}, 61) // odd length: the next attribute is padded
	for _, c := range []struct {
		name    string
		msg     []byte
		id      uint32
		payload []byte
		err     error
	}{
		{"packet", packetMsg(7, syn, 0), 7, syn, nil},
		{"cap len equal", packetMsg(8, syn, uint32(len(syn))), 8, syn, nil},
		{"cut", packetMsg(9, syn, 1500), 9, syn, errCut},
		{"no payload", func() []byte {
			b := appendMsgHdr(nil, nlmsgHdrLen+nfgenLen+12, msgPacket, 0)
			b = appendNfgen(b, 0)
			return appendAttr(b, attrPacketHdr, 0, 0, 0, 1, 8, 0, 1)
		}(), 1, nil, errNoPayload},
		{"no id", func() []byte {
			b := appendMsgHdr(nil, nlmsgHdrLen+nfgenLen+8, msgPacket, 0)
			b = appendNfgen(b, 0)
			return appendAttr(b, attrPayload, 0x45, 0, 0, 20)
		}(), 0, nil, errNoPacket},
		{"attribute too long", func() []byte {
			b := packetMsg(1, syn, 0)
			ne.PutUint16(b[nlmsgHdrLen+nfgenLen:], 0x7fff)
			return b
		}(), 0, nil, errShort},
	} {
		t.Run(c.name, func(t *testing.T) {
			typ, body, rest, ok := nextMsg(c.msg)
			if !ok || typ != msgPacket || rest != nil {
				t.Fatalf("nextMsg: typ %#x ok %v rest %d bytes", typ, ok, len(rest))
			}
			id, p, err := parsePacket(body)
			if !errors.Is(err, c.err) {
				t.Fatalf("err %v, want %v", err, c.err)
			}
			if err != errNoPacket && err != errShort {
				if id != c.id || !bytes.Equal(p, c.payload) {
					t.Errorf("id %d payload %x, want %d %x", id, p, c.id, c.payload)
				}
			}
		})
	}
}

func TestNextMsg(t *testing.T) {
	a, b := packetMsg(1, []byte{1, 2, 3}, 0), packetMsg(2, []byte{4}, 0)
	two := append(append([]byte{}, a...), b...)
	var ids []uint32
	for rest := two; ; {
		_, body, r, ok := nextMsg(rest)
		if !ok {
			break
		}
		rest = r
		id, _, err := parsePacket(body)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if len(ids) != 2 || ids[0] != 1 || ids[1] != 2 {
		t.Errorf("ids %v, want [1 2]", ids)
	}
	for _, bad := range [][]byte{nil, a[:15], append(ne.AppendUint32(nil, 8), make([]byte, 12)...), append(ne.AppendUint32(nil, 99), make([]byte, 12)...)} {
		if _, _, _, ok := nextMsg(bad); ok {
			t.Errorf("nextMsg(%x) ok", bad)
		}
	}
}

// TestVerdictMsg checks a verdict message byte for byte against
// linux/netfilter/nfnetlink_queue.h.
func TestVerdictMsg(t *testing.T) {
	for _, c := range []struct {
		accept, batch bool
		typ           uint16
		verdict       uint32
	}{
		{false, false, msgVerdict, verdictDrop},
		{true, false, msgVerdict, verdictAccept},
		{true, true, msgVerdictBatch, verdictAccept},
	} {
		b := appendVerdict(nil, 0x102, 0xdeadbeef, c.accept, c.batch)
		if len(b) != verdictMsgLen || ne.Uint32(b) != verdictMsgLen || ne.Uint16(b[4:]) != c.typ ||
			ne.Uint16(b[6:]) != nlmFRequest {
			t.Errorf("header % x", b[:16])
		}
		if !bytes.Equal(b[16:20], []byte{0, 0, 1, 2}) {
			t.Errorf("nfgenmsg % x, want 00 00 01 02", b[16:20])
		}
		if ne.Uint16(b[20:]) != 12 || ne.Uint16(b[22:]) != attrVerdictHdr ||
			binary.BigEndian.Uint32(b[24:]) != c.verdict || binary.BigEndian.Uint32(b[28:]) != 0xdeadbeef {
			t.Errorf("attribute % x", b[20:])
		}
	}
}

func TestConfigMsg(t *testing.T) {
	b := configMsg(5, cmdAttr(cfgCmdBind), paramsAttr(0xffff))
	want := []byte{
		1, 0, cfgCmdBind, 0, 0, 0, // NFQA_CFG_CMD: len 8
		2, 0, 0, 0, 0xff, 0xff, copyPacket, 0, 0, 0, // NFQA_CFG_PARAMS: len 9, padded
	}
	if int(ne.Uint32(b)) != len(b) || ne.Uint16(b[4:]) != msgConfig || ne.Uint16(b[6:]) != nlmFRequest|nlmFAck {
		t.Errorf("header % x", b[:16])
	}
	got := b[20:]
	if ne.Uint16(got) != 8 || ne.Uint16(got[8:]) != 9 || !bytes.Equal(append(got[2:8:8], got[10:]...), want) {
		t.Errorf("attributes % x", got)
	}
}

// TestParseNoAllocs pins the receive parse path at zero allocations per
// packet.
func TestParseNoAllocs(t *testing.T) {
	msg := packetMsg(42, make([]byte, 60), 0)
	allocs := testing.AllocsPerRun(1000, func() {
		_, body, _, _ := nextMsg(msg)
		if _, _, err := parsePacket(body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet, want 0", allocs)
	}
	v := make([]byte, 0, 64*verdictMsgLen)
	allocs = testing.AllocsPerRun(1000, func() {
		v = v[:0]
		for i := range 64 {
			v = appendVerdict(v, 1, uint32(i), true, i%2 == 0)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per verdict batch, want 0", allocs)
	}
}

func BenchmarkParsePacket(b *testing.B) {
	msg := packetMsg(42, make([]byte, 60), 0)
	b.ReportAllocs()
	for b.Loop() {
		_, body, _, _ := nextMsg(msg)
		parsePacket(body)
	}
}

// FuzzParse feeds arbitrary datagrams to the message splitter and the
// packet parser: they never panic, never step outside the datagram, and a
// payload they return lies inside it.
func FuzzParse(f *testing.F) {
	f.Add(packetMsg(1, []byte{0x45, 0, 0, 20}, 0))
	f.Add(packetMsg(2, make([]byte, 61), 1500))
	f.Add(append(packetMsg(3, []byte{1}, 0), packetMsg(4, []byte{2, 3}, 0)...))
	f.Add(appendVerdict(nil, 1, 1, true, true))
	f.Fuzz(func(t *testing.T, b []byte) {
		for rest, i := b, 0; i < 1000; i++ {
			_, body, r, ok := nextMsg(rest)
			if !ok {
				return
			}
			if len(r) >= len(rest) {
				t.Fatalf("no progress: %d bytes left of %d", len(r), len(rest))
			}
			rest = r
			_, p, err := parsePacket(body)
			if err == nil && len(p) > 0 {
				off := cap(b) - cap(p)
				if off < 0 || off+len(p) > len(b) || !bytes.Equal(b[off:off+len(p)], p) {
					t.Fatalf("payload outside the datagram")
				}
			}
		}
	})
}
