package parity

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// Env is what Verify needs besides the sample.
type Env struct {
	Key4, Key6 cookie.Key
	HZ         uint32
	Rule       packet.Rule // the synproxy statement the kernel ran with (its TTL unused)
	TTL        uint8       // net.ipv4.ip_default_ttl, 64 by default
	HopLimit   uint8       // net.ipv6.conf.all.hop_limit, 64 by default
}

// Checksum says what the SYN-ACK's TCP checksum field held.
type Checksum uint8

const (
	// ChecksumPartial: the pseudo-header sum only (offload never completed;
	// what a veth peer sees).
	ChecksumPartial Checksum = iota + 1
	// ChecksumFull: a complete, valid checksum.
	ChecksumFull
)

// Result is the outcome of Verify.
type Result struct {
	OK        bool
	V6        bool
	Count     uint32   // the time slot whose cookie matched
	Ambiguous bool     // the exchange straddled a slot boundary
	Checksum  Checksum // form of the TCP checksum field
	// Inputs, for reports.
	Tuple  cookie.Tuple
	SSeq   uint32
	MSS    uint16 // client MSS given to the encoder (0: no option)
	ISN    uint32 // the kernel's
	Want   uint32 // ours (at JiffiesBefore's slot) when no slot matched
	TSval  uint32
	TSOpts cookie.TSOptions
	Errors []string
}

func (r *Result) fail(format string, args ...any) {
	r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
}

// String describes a failed result with its inputs.
func (r *Result) String() string {
	return fmt.Sprintf("tuple %v->%v sseq %d mss %d isn %08x (ours %08x) tsval %08x opts %+v: %s",
		r.Tuple.Client, r.Tuple.Server, r.SSeq, r.MSS, r.ISN, r.Want, r.TSval, r.TSOpts, strings.Join(r.Errors, "; "))
}

// Verify checks one sample: the ISN against cookie.Key.Encode at the slot(s)
// the exchange happened in, the TSval against cookie.TSval at the
// millisecond clock readings around it, and every other byte of the SYN-ACK
// against the shape synproxy builds (ExpectedSYNACK).
func Verify(s *Sample, env *Env) Result {
	var r Result
	syn, err := ParseSegment(s.SYN)
	if err != nil {
		r.fail("SYN: %v", err)
		return r
	}
	sa, err := ParseSegment(s.SYNACK)
	if err != nil {
		r.fail("SYN-ACK: %v", err)
		return r
	}
	r.V6 = syn.V6
	r.Tuple = cookie.Tuple{Client: syn.Src, Server: syn.Dst}
	r.SSeq = syn.Seq
	r.ISN = sa.Seq
	if syn.Opts.HasMSS {
		r.MSS = syn.Opts.MSS
	}
	key := &env.Key4
	if syn.V6 {
		key = &env.Key6
	}
	c0 := cookie.KernelSlot(s.JiffiesBefore, env.HZ)
	c1 := cookie.KernelSlot(s.JiffiesAfter, env.HZ)
	if c1-c0 > 1 {
		r.fail("exchange spans %d slots", c1-c0+1)
		return r
	}
	r.Ambiguous = c1 != c0
	matched := false
	for c := c0; ; c++ {
		isn, err := key.Encode(r.Tuple, r.SSeq, r.MSS, c)
		if err != nil {
			r.fail("encode: %v", err)
			return r
		}
		if c == c0 {
			r.Want = isn
		}
		if isn == r.ISN {
			r.Count, r.Want, matched = c, isn, true
			break
		}
		if c == c1 {
			break
		}
	}
	if !matched {
		r.fail("ISN %08x != cookie.Encode %08x (slot %d..%d)", r.ISN, r.Want, c0, c1)
	}

	checkRest(&r, s, &syn, &sa, env)
	r.OK = len(r.Errors) == 0
	return r
}

// VerifyKeyless applies every check of Verify that needs no key: the
// timestamp bits and clock, and every SYN-ACK byte except the ISN. It is
// what can be checked against a kernel whose secret is out of reach.
func VerifyKeyless(s *Sample, env *Env) Result {
	var r Result
	syn, err := ParseSegment(s.SYN)
	if err != nil {
		r.fail("SYN: %v", err)
		return r
	}
	sa, err := ParseSegment(s.SYNACK)
	if err != nil {
		r.fail("SYN-ACK: %v", err)
		return r
	}
	r.V6 = syn.V6
	r.Tuple = cookie.Tuple{Client: syn.Src, Server: syn.Dst}
	r.SSeq, r.ISN, r.Want = syn.Seq, sa.Seq, sa.Seq
	if syn.Opts.HasMSS {
		r.MSS = syn.Opts.MSS
	}
	checkRest(&r, s, &syn, &sa, env)
	r.OK = len(r.Errors) == 0
	return r
}

func checkRest(r *Result, s *Sample, syn, sa *Segment, env *Env) {
	tsOn := env.Rule.Timestamp && syn.Opts.HasTS
	if tsOn {
		r.TSOpts = cookie.TSOptions{
			HasWScale: syn.Opts.HasWScale && env.Rule.HasWScale,
			WScale:    min(syn.Opts.WScale, 14),
			SACK:      syn.Opts.SACKPerm && env.Rule.SACKPerm,
		}
		if !r.TSOpts.HasWScale {
			r.TSOpts.WScale = 0
		}
		if !sa.Opts.HasTS {
			r.fail("no timestamp option in SYN-ACK")
		} else {
			r.TSval = sa.Opts.TSval
			lo, hi := s.MsBefore&^63, s.MsAfter&^63
			ms := r.TSval &^ 63
			if ms-lo > hi-lo {
				r.fail("TSval %08x clock part outside [%08x, %08x]", r.TSval, lo, hi)
			}
			if want := cookie.TSval(ms, r.TSOpts); want != r.TSval {
				r.fail("TSval %08x != cookie.TSval %08x (bits %02x)", r.TSval, want, r.TSOpts.Bits())
			}
		}
	}

	checkPacketBuilder(r, s, syn.V6, r.TSval, env)

	want := ExpectedSYNACK(nil, syn, r.ISN, r.TSval, env)
	if len(want) != len(s.SYNACK) {
		r.fail("SYN-ACK length %d, want %d (% x)", len(s.SYNACK), len(want), s.SYNACK)
	} else {
		ipLen := 20
		if syn.V6 {
			ipLen = 40
		}
		ck := ipLen + 16
		for i := range want {
			if i == ck || i == ck+1 {
				continue
			}
			if want[i] != s.SYNACK[i] {
				r.fail("SYN-ACK byte %d = %02x, want %02x (got % x)", i, s.SYNACK[i], want[i], s.SYNACK)
				break
			}
		}
		got := binary.BigEndian.Uint16(s.SYNACK[ck:])
		switch got {
		case binary.BigEndian.Uint16(want[ck:]):
			r.Checksum = ChecksumFull
		case partialSum(sa):
			r.Checksum = ChecksumPartial
		default:
			r.fail("TCP checksum %04x is neither full nor pseudo-header partial", got)
		}
	}
}

// checkPacketBuilder requires package packet's synproxy SYN-ACK builder,
// given the kernel's SYN, the cookie and the TSval, to produce the captured
// SYN-ACK byte for byte except the TCP checksum field (which the kernel
// leaves as a partial sum for offload; it is checked on its own).
func checkPacketBuilder(r *Result, s *Sample, v6 bool, tsval uint32, env *Env) {
	var p packet.Packet
	if err := p.Decode(s.SYN, packet.LinkIP); err != nil {
		r.fail("packet: decoding the SYN: %v", err)
		return
	}
	rule := env.Rule
	rule.TTL = env.TTL
	if v6 {
		rule.TTL = env.HopLimit
	}
	offer := rule.Offer(&p)
	offer.Options.TSval = tsval
	seg := packet.SYNACK(&p, r.ISN, &offer)
	b, err := packet.AppendSegment(nil, nil, &seg)
	if err != nil {
		r.fail("packet: building the SYN-ACK: %v", err)
		return
	}
	if len(b) != len(s.SYNACK) {
		r.fail("packet builder: SYN-ACK length %d, kernel %d", len(b), len(s.SYNACK))
		return
	}
	ck := 20 + 16
	if v6 {
		ck = 40 + 16
	}
	for i := range b {
		if i != ck && i != ck+1 && b[i] != s.SYNACK[i] {
			r.fail("packet builder: SYN-ACK byte %d = %02x, kernel %02x", i, b[i], s.SYNACK[i])
			return
		}
	}
}

// ExpectedSYNACK builds, with a full TCP checksum, the SYN-ACK Linux's
// synproxy answers syn with (nf_synproxy_core.c, synproxy_send_client_synack),
// given the cookie and timestamp that depend on key and clock.
func ExpectedSYNACK(dst []byte, syn *Segment, isn, tsval uint32, env *Env) []byte {
	r := env.Rule
	var opts []byte
	if syn.Opts.HasMSS && r.HasMSS {
		opts = append(opts, 2, 4, byte(r.MSS>>8), byte(r.MSS))
	}
	ts := r.Timestamp && syn.Opts.HasTS
	if ts {
		if syn.Opts.SACKPerm && r.SACKPerm {
			opts = append(opts, 4, 2, 8, 10)
		} else {
			opts = append(opts, 1, 1, 8, 10)
		}
		opts = binary.BigEndian.AppendUint32(opts, tsval)
		opts = binary.BigEndian.AppendUint32(opts, syn.Opts.TSval)
		if syn.Opts.HasWScale && r.HasWScale {
			opts = append(opts, 1, 3, 3, r.WScale)
		}
	}
	tcpLen := 20 + len(opts)
	start := len(dst)
	if syn.V6 {
		dst = append(dst, 0x60, 0, 0, 0, byte(tcpLen>>8), byte(tcpLen), 6, env.HopLimit)
		a, b := syn.Dst.Addr().As16(), syn.Src.Addr().As16()
		dst = append(dst, a[:]...)
		dst = append(dst, b[:]...)
	} else {
		tot := 20 + tcpLen
		dst = append(dst, 0x45, 0, byte(tot>>8), byte(tot), 0, 0, 0x40, 0, env.TTL, 6, 0, 0)
		a, b := syn.Dst.Addr().As4(), syn.Src.Addr().As4()
		dst = append(dst, a[:]...)
		dst = append(dst, b[:]...)
		binary.BigEndian.PutUint16(dst[start+10:], ^fold(sum(0, dst[start:start+20])))
	}
	th := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, syn.Dst.Port())
	dst = binary.BigEndian.AppendUint16(dst, syn.Src.Port())
	dst = binary.BigEndian.AppendUint32(dst, isn)
	dst = binary.BigEndian.AppendUint32(dst, syn.Seq+1)
	dst = append(dst, byte(tcpLen/4)<<4, FlagSYN|FlagACK, 0, 0, 0, 0, 0, 0)
	dst = append(dst, opts...)
	seg, _ := ParseSegment(dst[start:])
	c := pseudo(&seg)
	binary.BigEndian.PutUint16(dst[th+16:], ^fold(sum(c, dst[th:])))
	return dst
}

func sum(acc uint32, b []byte) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// pseudo is the unfolded pseudo-header sum of a segment.
func pseudo(s *Segment) uint32 {
	var acc uint32
	if s.V6 {
		acc = sum(acc, s.IPHdr[8:40])
	} else {
		acc = sum(acc, s.IPHdr[12:20])
	}
	n := len(s.TCPHdr) + len(s.Payload)
	return acc + 6 + uint32(n)
}

// partialSum is what CHECKSUM_PARTIAL leaves in the TCP checksum field: the
// folded pseudo-header sum, not complemented.
func partialSum(s *Segment) uint16 { return fold(pseudo(s)) }

// TCPChecksum returns the full TCP checksum of an IP packet's segment
// (computed with the checksum field taken as zero).
func TCPChecksum(p []byte) (uint16, error) {
	s, err := ParseSegment(p)
	if err != nil {
		return 0, err
	}
	acc := pseudo(&s)
	acc = sum(acc, s.TCPHdr[:16])
	acc = sum(acc, s.TCPHdr[18:])
	acc = sum(acc, s.Payload)
	return ^fold(acc), nil
}

// IPv4Checksum returns the header checksum of a 20-byte IPv4 header
// (computed with the checksum field taken as zero).
func IPv4Checksum(h []byte) uint16 {
	acc := sum(0, h[:10])
	acc = sum(acc, h[12:20])
	return ^fold(acc)
}

func cookieKey(hex string) (cookie.Key, error) { return cookie.ParseKey(hex) }
