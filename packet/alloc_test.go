package packet_test

import (
	"net/netip"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// TestNoAllocs pins the zero-allocation claim: one subtest per entry point,
// with buffers that have the capacity they need.
func TestNoAllocs(t *testing.T) {
	syn4, syn6 := benchSYN(t, false), benchSYN(t, true)
	eth6 := ethFrame(packet.EtherTypeIPv6, 1, syn6)
	var p4, p6, pe packet.Packet
	if p4.Decode(syn4, packet.LinkIP) != nil || p6.Decode(syn6, packet.LinkIP) != nil || pe.Decode(eth6, packet.LinkEthernet) != nil {
		t.Fatal("decode")
	}
	ackSeg := packet.PureACK(netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("192.0.2.2:2"), 1001, 5, 9)
	ackSeg.Options = packet.Options{HasTS: true, TSval: 1, TSecr: 0x1234565f}
	ackBytes, _ := packet.AppendSegment(nil, nil, &ackSeg)
	var ack packet.Packet
	if ack.Decode(ackBytes, packet.LinkIP) != nil {
		t.Fatal("decode ack")
	}
	offer := benchRule.Offer(&p4)
	buf := make([]byte, 0, 256)
	big := make([]byte, 9000)
	var q packet.Packet
	eth := &packet.Ethernet{}
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"Decode/v4", func() { _ = q.Decode(syn4, packet.LinkIP) }},
		{"Decode/v6", func() { _ = q.Decode(syn6, packet.LinkIP) }},
		{"Decode/ethernet+vlan", func() { _ = q.Decode(eth6, packet.LinkEthernet) }},
		{"Decode/error", func() { _ = q.Decode(syn4[:30], packet.LinkIP) }},
		{"Decode/link-error", func() { _ = q.Decode(nil, packet.LinkEthernet) }},
		{"VerifyChecksums", func() { _ = p4.VerifyChecksums() }},
		{"PartialTCPChecksum", func() { _ = p6.PartialTCPChecksum() }},
		{"Accessors", func() { _, _, _ = p4.Payload(), p4.TCPHeader(), p4.SrcAddrPort() }},
		{"Rule.Offer", func() { _ = benchRule.Offer(&p4) }},
		{"AppendSYNACK/v4", func() { buf, _ = packet.AppendSYNACK(buf[:0], &p4, 1, &offer) }},
		{"AppendSYNACK/v6", func() { buf, _ = packet.AppendSYNACK(buf[:0], &p6, 1, &offer) }},
		{"AppendSYNACK/ethernet", func() { buf, _ = packet.AppendSYNACK(buf[:0], &pe, 1, &offer) }},
		{"SynToSynAck", func() { buf, _ = synToSynAck(&q, syn4, buf) }},
		{"AppendSegment", func() { s := packet.SYNACK(&p6, 1, &offer); buf, _ = packet.AppendSegment(buf[:0], eth, &s) }},
		{"AppendReply+RST", func() { s := packet.RST(&p4); buf, _ = packet.AppendReply(buf[:0], &p4, &s) }},
		{"BackendSYN", func() { s := packet.BackendSYN(&ack, 1460); buf, _ = packet.AppendSegment(buf[:0], nil, &s) }},
		{"PureACK", func() {
			s := packet.PureACK(p4.DstAddrPort(), p4.SrcAddrPort(), 1, 2, 3)
			buf, _ = packet.AppendSegment(buf[:0], nil, &s)
		}},
		{"AppendOptions", func() { buf, _ = packet.AppendOptions(buf[:0], &offer.Options) }},
		{"Sum/9000", func() { _ = packet.Sum(big, 0) }},
		{"TCPChecksum", func() { _ = packet.TCPChecksum(p6.Src, p6.Dst, p6.Segment()) }},
		{"PseudoHeaderSum", func() { _ = packet.PseudoHeaderSum(p6.Src, p6.Dst, packet.ProtoTCP, 40) }},
		{"UpdateChecksum32", func() { _ = packet.UpdateChecksum32(0x1234, 1, 2) }},
		{"UpdateChecksumBytes", func() { _ = packet.UpdateChecksumBytes(0x1234, big[:16], big[16:32]) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(200, c.f); n != 0 {
				t.Fatalf("%v allocations per run", n)
			}
		})
	}
}
