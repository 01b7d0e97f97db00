package packet

import (
	"encoding/binary"
	"net/netip"
)

// DefaultTTL is the IPv4 TTL and IPv6 hop limit of built packets when the
// Segment says 0: the kernel's default net.ipv4.ip_default_ttl and
// net.ipv6.conf.all.hop_limit.
const DefaultTTL = 64

// Segment describes a TCP segment to build. Every field is written as given
// (checksums and lengths are computed), so a Segment built and decoded
// again gives the same fields back.
type Segment struct {
	// Src and Dst are the endpoints; both IPv4 or both IPv6.
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    TCPFlags
	Window   uint16
	Urgent   uint16
	Options  Options
	Payload  []byte

	// TTL is the IPv4 TTL or IPv6 hop limit; 0 means DefaultTTL.
	TTL uint8
	// TOS is the IPv4 type of service or IPv6 traffic class.
	TOS uint8
	// IPv4 only: the identification and the don't-fragment flag.
	ID uint16
	DF bool
	// FlowLabel is the IPv6 flow label (20 bits).
	FlowLabel uint32
	// PartialChecksum writes only the pseudo-header sum into the TCP
	// checksum field, as the kernel leaves it for checksum offload
	// (CHECKSUM_PARTIAL): for sockets and devices that complete it. Captures
	// taken on the sending host show this form.
	PartialChecksum bool
}

// Ethernet is an Ethernet II header for AppendSegment; the EtherType follows
// from the segment's address family.
type Ethernet struct {
	Dst, Src [6]byte
}

// Len returns the length of the IP packet s builds into (without a link
// header), or an error.
func (s *Segment) Len() (int, error) { return s.len(&s.Options) }

func (s *Segment) len(opts *Options) (int, error) {
	src, dst := s.Src.Addr(), s.Dst.Addr()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return 0, ErrAddr
	}
	ol := opts.Len()
	if ol < 0 {
		return 0, ErrOptionsTooLong
	}
	tcp := TCPHeaderLen + ol + len(s.Payload)
	if src.Is4() {
		if IPv4HeaderLen+tcp > 0xffff {
			return 0, ErrTooLong
		}
		return IPv4HeaderLen + tcp, nil
	}
	if tcp > 0xffff {
		return 0, ErrTooLong
	}
	return IPv6HeaderLen + tcp, nil
}

// AppendSegment appends the packet s describes to dst: an Ethernet header
// when eth is not nil, the IP header, the TCP header with options and
// checksum, the payload. It allocates only when dst lacks the capacity.
// On error dst is returned unchanged.
func AppendSegment(dst []byte, eth *Ethernet, s *Segment) ([]byte, error) {
	n, err := s.len(&s.Options)
	if err != nil {
		return dst, err
	}
	ll := 0
	if eth != nil {
		ll = EthernetHeaderLen
	}
	out, b := grow(dst, ll+n)
	if eth != nil {
		copy(b[0:6], eth.Dst[:])
		copy(b[6:12], eth.Src[:])
		putEtherType(b[:ll], s.Src.Addr().Is4())
	}
	s.put(b[ll:], &s.Options)
	return out, nil
}

// AppendReply appends the packet s describes to dst behind the link header
// of p, the packet replied to, with its Ethernet source and destination
// swapped (and its VLAN tags kept); for LinkIP, the bare IP packet. p must
// have been decoded without error.
func AppendReply(dst []byte, p *Packet, s *Segment) ([]byte, error) {
	return appendReply(dst, p, s, &s.Options)
}

// appendReply is AppendReply with the options passed apart from the segment
// (whose own Options are ignored), which spares the hot path a copy.
func appendReply(dst []byte, p *Packet, s *Segment, opts *Options) ([]byte, error) {
	if !p.ok {
		return dst, ErrNotDecoded
	}
	n, err := s.len(opts)
	if err != nil {
		return dst, err
	}
	ll := p.IPOffset
	out, b := grow(dst, ll+n)
	if ll > 0 {
		copy(b[:ll], p.b[:ll])
		copy(b[0:6], p.EthSrc[:])
		copy(b[6:12], p.EthDst[:])
		putEtherType(b[:ll], s.Src.Addr().Is4())
	}
	s.put(b[ll:], opts)
	return out, nil
}

func putEtherType(link []byte, v4 bool) {
	et := uint16(EtherTypeIPv6)
	if v4 {
		et = EtherTypeIPv4
	}
	binary.BigEndian.PutUint16(link[len(link)-2:], et)
}

// put writes the IP packet into b, which is exactly s.len(opts) bytes and
// zeroed, with the options opts. The checksums are summed from the field
// values as they are written, not read back from b: reading bytes just
// written with narrower stores would stall on store forwarding.
func (s *Segment) put(b []byte, opts *Options) {
	ttl := s.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	src, dst := s.Src.Addr(), s.Dst.Addr()
	var tcp []byte
	var addrs uint64 // the sum of both addresses' 16-bit words
	if src.Is4() {
		a, c := src.As4(), dst.As4()
		sa, da := binary.BigEndian.Uint32(a[:]), binary.BigEndian.Uint32(c[:])
		addrs = sum32(sa) + sum32(da)
		var frag uint16
		if s.DF {
			frag = IPv4DontFragment << 13
		}
		binary.BigEndian.PutUint32(b[0:], 0x45<<24|uint32(s.TOS)<<16|uint32(len(b)))
		binary.BigEndian.PutUint32(b[4:], uint32(s.ID)<<16|uint32(frag))
		binary.BigEndian.PutUint32(b[12:], sa)
		binary.BigEndian.PutUint32(b[16:], da)
		hs := addrs + 0x4500 + uint64(s.TOS) + uint64(len(b)) + uint64(s.ID) + uint64(frag) + uint64(ttl)<<8 + ProtoTCP
		binary.BigEndian.PutUint32(b[8:], uint32(ttl)<<24|ProtoTCP<<16|uint32(^fold64(hs)))
		tcp = b[IPv4HeaderLen:]
	} else {
		a, c := src.As16(), dst.As16()
		s0, s1 := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
		d0, d1 := binary.BigEndian.Uint64(c[:8]), binary.BigEndian.Uint64(c[8:])
		addrs = sum64(s0) + sum64(s1) + sum64(d0) + sum64(d1)
		binary.BigEndian.PutUint32(b[0:], 6<<28|uint32(s.TOS)<<20|s.FlowLabel&0xfffff)
		binary.BigEndian.PutUint32(b[4:], uint32(len(b)-IPv6HeaderLen)<<16|ProtoTCP<<8|uint32(ttl))
		binary.BigEndian.PutUint64(b[8:], s0)
		binary.BigEndian.PutUint64(b[16:], s1)
		binary.BigEndian.PutUint64(b[24:], d0)
		binary.BigEndian.PutUint64(b[32:], d1)
		tcp = b[IPv6HeaderLen:]
	}
	ol := opts.Len()
	sp, dp := s.Src.Port(), s.Dst.Port()
	offFlags := uint16(TCPHeaderLen+ol)/4<<12 | uint16(s.Flags)
	binary.BigEndian.PutUint32(tcp[0:], uint32(sp)<<16|uint32(dp))
	binary.BigEndian.PutUint32(tcp[4:], s.Seq)
	binary.BigEndian.PutUint32(tcp[8:], s.Ack)
	binary.BigEndian.PutUint32(tcp[12:], uint32(offFlags)<<16|uint32(s.Window))
	binary.BigEndian.PutUint16(tcp[18:], s.Urgent)
	os := opts.put(tcp[TCPHeaderLen : TCPHeaderLen+ol])
	copy(tcp[TCPHeaderLen+ol:], s.Payload)
	ps := addrs + ProtoTCP + uint64(len(tcp)) // the pseudo-header
	if s.PartialChecksum {
		binary.BigEndian.PutUint16(tcp[16:], fold64(ps))
		return
	}
	// The payload starts 4-byte aligned, so its words are the packet's.
	ts := ps + uint64(sp) + uint64(dp) + sum32(s.Seq) + sum32(s.Ack) + uint64(offFlags) + uint64(s.Window) +
		uint64(s.Urgent) + os + uint64(Sum(s.Payload, 0))
	binary.BigEndian.PutUint16(tcp[16:], ^fold64(ts))
}

// sum32 and sum64 add up the 16-bit words of a value.
func sum32(v uint32) uint64 { return uint64(v>>16) + uint64(v&0xffff) }
func sum64(v uint64) uint64 { return sum32(uint32(v>>32)) + sum32(uint32(v)) }

// Reply returns a segment from p's destination to p's source, in the IP
// header shape of the kernel's synproxy (ID 0, DF set, TOS and flow label 0,
// default TTL), with no sequence numbers, flags or options yet.
func Reply(p *Packet) Segment {
	return Segment{Src: p.DstAddrPort(), Dst: p.SrcAddrPort(), DF: true}
}

// RST returns the reset a TCP stack sends in answer to p (RFC 9293 3.10.7.1,
// as Linux's tcp_v4_send_reset): if p has ACK, seq = p's ack and only RST is
// set; otherwise seq 0, ack = p's seq plus its segment length, and RST|ACK.
// Window 0, no options.
func RST(p *Packet) Segment {
	s := Reply(p)
	if p.Flags&FlagACK != 0 {
		s.Seq = p.Ack
		s.Flags = FlagRST
	} else {
		s.Ack = p.Seq + p.SegmentLen()
		s.Flags = FlagRST | FlagACK
	}
	return s
}

// PureACK returns a pure ACK (no payload, no options) from src to dst in the
// synproxy IP header shape. Set Options.HasTS, TSval and TSecr for a
// timestamp, as synproxy's ACKs carry.
func PureACK(src, dst netip.AddrPort, seq, ack uint32, window uint16) Segment {
	return Segment{Src: src, Dst: dst, Seq: seq, Ack: ack, Flags: FlagACK, Window: window, DF: true}
}

// Rule is the configuration of an nftables synproxy statement
// (synproxy mss N wscale N timestamp sack-perm) or an iptables SYNPROXY
// target, plus the host's TTL for the packets it sends.
type Rule struct {
	// MSS is the MSS advertised to clients (HasMSS: the rule has "mss").
	MSS    uint16
	HasMSS bool
	// WScale is the window-scale shift advertised to clients (HasWScale:
	// the rule has "wscale").
	WScale    uint8
	HasWScale bool
	// Timestamp and SACKPerm: the rule has "timestamp" and "sack-perm".
	Timestamp bool
	SACKPerm  bool
	// ECN: the rule allows ECN. nftables cannot set it (the kernel refuses
	// the flag); an iptables SYNPROXY target can.
	ECN bool
	// TTL is the IPv4 TTL / IPv6 hop limit of the SYN-ACK; 0 means
	// DefaultTTL. (The kernel uses net.ipv4.ip_default_ttl and
	// net.ipv6.conf.all.hop_limit.)
	TTL uint8
}

// TSOptions are the SYN options a timestamp cookie remembers in the low six
// bits of the SYN-ACK's TSval. The fields are those of cookie.TSOptions, in
// the same order, so each converts to the other:
// cookie.TSval(ms, cookie.TSOptions(offer.TS)).
type TSOptions struct {
	WScale    uint8 // the client's shift, clamped to MaxWScale
	HasWScale bool  // window scaling survived
	SACK      bool  // SACK-permitted survived
	ECN       bool  // ECN survived
}

// Offer is what synproxy answers a SYN with under a Rule: the cookie's MSS,
// the options the timestamp cookie must remember, and the SYN-ACK's options
// and flags. Options.TSval is left for the caller to set (to
// cookie.TSval(msNow, cookie.TSOptions(o.TS))) when Options.HasTS.
type Offer struct {
	// CookieMSS is the MSS to encode in the cookie: the client's MSS option
	// value, 0 when the SYN had none (index 0 of the MSS table).
	CookieMSS uint16
	// TS holds the option bits for the timestamp cookie (meaningful when
	// Options.HasTS).
	TS TSOptions
	// Options are the SYN-ACK's options.
	Options Options
	// Flags are the SYN-ACK's flags: SYN|ACK, plus ECE when ECN survived.
	Flags TCPFlags
	// TTL is the SYN-ACK's TTL (the Rule's).
	TTL uint8
}

// Offer applies the rule to a SYN as the kernel's nft_synproxy does
// (net/netfilter/nft_synproxy.c and nf_synproxy_core.c, Linux 5.3 to 6.x):
// the client's options (with ECN when the SYN has ECE and CWR) are masked by
// the rule's flags; the MSS option advertises the rule's MSS if the client
// sent one and the rule has mss; if timestamps survive, the SYN-ACK echoes the
// client's TSval as TSecr and advertises the rule's window scale if window
// scaling survived, and SACK-permitted if it survived; without timestamps
// window scale, SACK-permitted and ECN are all dropped.
func (r *Rule) Offer(syn *Packet) (o Offer) {
	c := &syn.Options
	o.Flags, o.TTL = FlagSYN|FlagACK, r.TTL
	if c.HasMSS {
		o.CookieMSS = c.MSS
		if r.HasMSS {
			o.Options.HasMSS, o.Options.MSS = true, r.MSS
		}
	}
	if !c.HasTS || !r.Timestamp {
		return o
	}
	o.Options.HasTS = true
	o.Options.TSecr = c.TSval
	if c.HasWScale && r.HasWScale {
		o.TS.HasWScale, o.TS.WScale = true, c.WScale
		o.Options.HasWScale, o.Options.WScale = true, r.WScale
	}
	if c.SACKPermitted && r.SACKPerm {
		o.TS.SACK = true
		o.Options.SACKPermitted = true
	}
	if syn.Flags&(FlagECE|FlagCWR) == FlagECE|FlagCWR && r.ECN {
		o.TS.ECN = true
		o.Flags |= FlagECE
	}
	return o
}

// SYNACK returns the SYN-ACK synproxy sends in answer to syn with initial
// sequence number isn (the cookie) and the options and flags of o: ports and
// addresses swapped, ack = syn's seq + 1, window 0, IPv4 ID 0 with DF, TOS 0,
// IPv6 traffic class and flow label 0.
func SYNACK(syn *Packet, isn uint32, o *Offer) Segment {
	return Segment{Src: syn.DstAddrPort(), Dst: syn.SrcAddrPort(), DF: true,
		Seq: isn, Ack: syn.Seq + 1, Flags: o.Flags, Options: o.Options, TTL: o.TTL}
}

// AppendSYNACK appends the SYN-ACK of SYNACK(syn, isn, o) to dst behind
// syn's link header with the Ethernet addresses swapped. It allocates only
// when dst lacks the capacity.
func AppendSYNACK(dst []byte, syn *Packet, isn uint32, o *Offer) ([]byte, error) {
	s := Segment{Src: syn.DstAddrPort(), Dst: syn.SrcAddrPort(), DF: true,
		Seq: isn, Ack: syn.Seq + 1, Flags: o.Flags, TTL: o.TTL}
	return appendReply(dst, syn, &s, &o.Options)
}

// BackendSYN returns the SYN synproxy sends to the server once the client's
// ACK ack has passed the cookie check with decoded MSS mss
// (synproxy_send_server_syn): from the client's address and port to the
// server's, seq = ack's seq − 1 (the client's ISN), the ack field = ack's ack
// − 1 (the cookie: relayed to conntrack although the ACK flag is not set),
// flags SYN (plus ECE|CWR when the timestamp cookie says ECN), window = the
// ACK's window field as on the wire. Options, in synproxy order: MSS mss; if
// the ACK has a timestamp, the client's TSval and TSecr with the window
// scale, SACK-permitted and ECN bits of its TSecr decoded as
// synproxy_check_timestamp_cookie does (window scale unless the nibble is
// 15). Options the ACK itself carried (parsed as synproxy parses them) are
// kept, as the kernel keeps them.
func BackendSYN(ack *Packet, mss uint16) Segment {
	s := Segment{Src: ack.SrcAddrPort(), Dst: ack.DstAddrPort(), DF: true,
		Seq: ack.Seq - 1, Ack: ack.Ack - 1, Flags: FlagSYN, Window: ack.Window}
	a := &ack.Options
	s.Options = Options{
		HasMSS: true, MSS: mss,
		HasWScale: a.HasWScale, WScale: a.WScale,
		SACKPermitted: a.SACKPermitted,
		HasTS:         a.HasTS, TSval: a.TSval, TSecr: a.TSecr,
	}
	if a.HasTS {
		s.Options.WScale = uint8(a.TSecr & 0xf)
		if s.Options.WScale != 0xf {
			s.Options.HasWScale = true
		}
		if a.TSecr&(1<<4) != 0 {
			s.Options.SACKPermitted = true
		}
		if a.TSecr&(1<<5) != 0 {
			s.Flags |= FlagECE | FlagCWR
		}
	}
	return s
}
