package bgp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Message types (RFC 4271 section 4.1).
const (
	TypeOpen         = 1
	TypeUpdate       = 2
	TypeNotification = 3
	TypeKeepalive    = 4
)

// Sizes of the wire format.
const (
	HeaderLen  = 19   // marker, length, type
	MaxMessage = 4096 // the largest message RFC 4271 allows
)

// Capability codes sent in OPEN.
const (
	CapMultiprotocol   = 1  // RFC 4760
	CapGracefulRestart = 64 // RFC 4724
	CapFourOctetAS     = 65 // RFC 6793
)

// Address families.
const (
	AFIIPv4     = 1
	AFIIPv6     = 2
	SAFIUnicast = 1
)

// ASTrans is the two-octet AS number sent in OPEN by a speaker whose AS
// does not fit (RFC 6793).
const ASTrans = 23456

// Path attribute type codes.
const (
	attrOrigin      = 1
	attrASPath      = 2
	attrNextHop     = 3
	attrCommunities = 8
	attrMPReach     = 14
	attrMPUnreach   = 15
)

// NOTIFICATION error codes used by the speaker.
const (
	ErrCodeHeader      = 1
	ErrCodeOpen        = 2
	ErrCodeUpdate      = 3
	ErrCodeHoldTimer   = 4
	ErrCodeFSM         = 5
	ErrCodeCease       = 6
	CeaseAdminShutdown = 2 // subcode of Cease: administrative shutdown
)

// ParseError is a malformed message; Code and Subcode are those of the
// NOTIFICATION the RFC says to answer it with.
type ParseError struct {
	Code, Subcode uint8
	Msg           string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("bgp: malformed message (notification %d/%d): %s", e.Code, e.Subcode, e.Msg)
}

func perr(code, sub uint8, format string, a ...any) error {
	return &ParseError{Code: code, Subcode: sub, Msg: fmt.Sprintf(format, a...)}
}

// ErrShort means b holds less than one whole message: read more.
var ErrShort = errors.New("bgp: incomplete message")

// ParseMessage parses the message at the start of b: its type, its body
// and its whole length. It returns ErrShort if b does not hold all of it
// yet, a *ParseError if the header is malformed.
func ParseMessage(b []byte) (typ uint8, body []byte, n int, err error) {
	if len(b) < HeaderLen {
		return 0, nil, 0, ErrShort
	}
	for _, m := range b[:16] {
		if m != 0xff {
			return 0, nil, 0, perr(ErrCodeHeader, 1, "marker not all ones")
		}
	}
	l := int(binary.BigEndian.Uint16(b[16:]))
	typ = b[18]
	if l < HeaderLen || l > MaxMessage {
		return 0, nil, 0, perr(ErrCodeHeader, 2, "length %d", l)
	}
	min := map[uint8]int{TypeOpen: 29, TypeUpdate: 23, TypeNotification: 21, TypeKeepalive: 19}[typ]
	switch {
	case min == 0:
		return 0, nil, 0, perr(ErrCodeHeader, 3, "type %d", typ)
	case l < min || typ == TypeKeepalive && l != HeaderLen:
		return 0, nil, 0, perr(ErrCodeHeader, 2, "length %d for type %d", l, typ)
	}
	if len(b) < l {
		return 0, nil, 0, ErrShort
	}
	return typ, b[HeaderLen:l], l, nil
}

func appendHeader(dst []byte, typ uint8) ([]byte, int) {
	start := len(dst)
	for range 16 {
		dst = append(dst, 0xff)
	}
	return append(dst, 0, 0, typ), start
}

func finish(dst []byte, start int) ([]byte, error) {
	l := len(dst) - start
	if l > MaxMessage {
		return dst[:start], fmt.Errorf("bgp: message of %d bytes, more than %d", l, MaxMessage)
	}
	binary.BigEndian.PutUint16(dst[start+16:], uint16(l))
	return dst, nil
}

// AppendKeepalive appends a KEEPALIVE message to dst.
func AppendKeepalive(dst []byte) []byte {
	dst, start := appendHeader(dst, TypeKeepalive)
	dst, _ = finish(dst, start)
	return dst
}

// Capability is one capability of an OPEN's optional parameters.
type Capability struct {
	Code  uint8
	Value []byte
}

// Open is an OPEN message.
type Open struct {
	ASN          uint32 // the four-octet AS if the capability is there, else the two-octet one
	HoldTime     uint16 // seconds: 0, or 3 and more
	RouterID     netip.Addr
	Capabilities []Capability
}

// Capability returns the value of the first capability with code c.
func (o *Open) Capability(c uint8) ([]byte, bool) {
	for _, cp := range o.Capabilities {
		if cp.Code == c {
			return cp.Value, true
		}
	}
	return nil, false
}

// Families returns the (AFI, SAFI) pairs of the multiprotocol
// capabilities; without any, IPv4 unicast (RFC 4760 section 8).
func (o *Open) Families() [][2]uint16 {
	var fs [][2]uint16
	for _, c := range o.Capabilities {
		if c.Code == CapMultiprotocol && len(c.Value) == 4 {
			fs = append(fs, [2]uint16{binary.BigEndian.Uint16(c.Value), uint16(c.Value[3])})
		}
	}
	if fs == nil {
		fs = [][2]uint16{{AFIIPv4, SAFIUnicast}}
	}
	return fs
}

// AppendOpen appends o as an OPEN message (version 4) to dst; the
// capabilities go in one optional parameter each.
func AppendOpen(dst []byte, o *Open) ([]byte, error) {
	if !o.RouterID.Is4() {
		return dst, errors.New("bgp: the router ID must be an IPv4 address")
	}
	dst, start := appendHeader(dst, TypeOpen)
	as := uint16(ASTrans)
	if o.ASN <= 0xffff {
		as = uint16(o.ASN)
	}
	id := o.RouterID.As4()
	dst = append(dst, 4, byte(as>>8), byte(as), byte(o.HoldTime>>8), byte(o.HoldTime))
	dst = append(dst, id[:]...)
	lenAt := len(dst)
	dst = append(dst, 0)
	for _, c := range o.Capabilities {
		if len(c.Value) > 253 {
			return dst[:start], errors.New("bgp: capability too long")
		}
		dst = append(dst, 2, byte(2+len(c.Value)), c.Code, byte(len(c.Value)))
		dst = append(dst, c.Value...)
	}
	if len(dst)-lenAt-1 > 255 {
		return dst[:start], errors.New("bgp: optional parameters too long")
	}
	dst[lenAt] = byte(len(dst) - lenAt - 1)
	return finish(dst, start)
}

// ParseOpen parses the body of an OPEN message. The four-octet AS
// capability, if present, gives ASN.
func ParseOpen(body []byte) (*Open, error) {
	if len(body) < 10 {
		return nil, perr(ErrCodeHeader, 2, "OPEN of %d bytes", len(body))
	}
	if body[0] != 4 {
		return nil, perr(ErrCodeOpen, 1, "version %d", body[0])
	}
	o := &Open{ASN: uint32(binary.BigEndian.Uint16(body[1:])), HoldTime: binary.BigEndian.Uint16(body[3:]),
		RouterID: netip.AddrFrom4([4]byte(body[5:9]))}
	if o.HoldTime == 1 || o.HoldTime == 2 {
		return nil, perr(ErrCodeOpen, 6, "hold time %d", o.HoldTime)
	}
	pl := int(body[9])
	p := body[10:]
	if len(p) != pl {
		return nil, perr(ErrCodeOpen, 0, "optional parameters length %d, %d bytes follow", pl, len(p))
	}
	for len(p) > 0 {
		if len(p) < 2 || len(p) < 2+int(p[1]) {
			return nil, perr(ErrCodeOpen, 0, "truncated optional parameter")
		}
		typ, v := p[0], p[2:2+int(p[1])]
		p = p[2+int(p[1]):]
		if typ != 2 { // only capabilities
			return nil, perr(ErrCodeOpen, 4, "optional parameter type %d", typ)
		}
		for len(v) > 0 {
			if len(v) < 2 || len(v) < 2+int(v[1]) {
				return nil, perr(ErrCodeOpen, 0, "truncated capability")
			}
			c := Capability{Code: v[0], Value: v[2 : 2+int(v[1])]}
			v = v[2+int(v[1]):]
			o.Capabilities = append(o.Capabilities, c)
			if c.Code == CapFourOctetAS && len(c.Value) == 4 {
				o.ASN = binary.BigEndian.Uint32(c.Value)
			}
		}
	}
	return o, nil
}

// Update is an UPDATE message: IPv4 prefixes in Withdrawn and NLRI, IPv6
// ones in MP_UNREACH_NLRI (Unreach6) and MP_REACH_NLRI (Reach6, with
// NextHop6). The path attributes apply to NLRI and Reach6.
type Update struct {
	Withdrawn   []netip.Prefix
	NLRI        []netip.Prefix
	Unreach6    []netip.Prefix
	Reach6      []netip.Prefix
	Origin      uint8    // 0 IGP, 1 EGP, 2 INCOMPLETE
	ASPath      []uint32 // one AS_SEQUENCE, four-octet AS numbers
	NextHop     netip.Addr
	NextHop6    netip.Addr
	Communities []uint32
	// EndOfRIB6 is an MP_UNREACH_NLRI for IPv6 unicast without prefixes:
	// the end-of-RIB marker of RFC 4724 for that family. (For IPv4 it is
	// an UPDATE with nothing in it.)
	EndOfRIB6 bool
}

func appendPrefixes(dst []byte, ps []netip.Prefix, v6 bool) ([]byte, error) {
	for _, p := range ps {
		if p.Addr().Is6() != v6 || p.Addr().Is4In6() {
			return dst, fmt.Errorf("bgp: prefix %v in the wrong family", p)
		}
		p = p.Masked()
		b := p.Addr().AsSlice()
		dst = append(dst, byte(p.Bits()))
		dst = append(dst, b[:(p.Bits()+7)/8]...)
	}
	return dst, nil
}

func appendAttr(dst []byte, flags, code uint8, v []byte) []byte {
	if len(v) > 255 {
		return append(append(dst, flags|0x10, code, byte(len(v)>>8), byte(len(v))), v...)
	}
	return append(append(dst, flags, code, byte(len(v))), v...)
}

// AppendUpdate appends u as an UPDATE message to dst. Path attributes are
// written only if there is something to announce (NLRI or Reach6).
func AppendUpdate(dst []byte, u *Update) ([]byte, error) {
	dst, start := appendHeader(dst, TypeUpdate)
	fail := func(err error) ([]byte, error) { return dst[:start], err }
	wAt := len(dst)
	dst = append(dst, 0, 0)
	dst, err := appendPrefixes(dst, u.Withdrawn, false)
	if err != nil {
		return fail(err)
	}
	binary.BigEndian.PutUint16(dst[wAt:], uint16(len(dst)-wAt-2))
	aAt := len(dst)
	dst = append(dst, 0, 0)
	var tmp []byte
	if len(u.Unreach6) > 0 || u.EndOfRIB6 {
		tmp = append(tmp[:0], 0, AFIIPv6, SAFIUnicast)
		if tmp, err = appendPrefixes(tmp, u.Unreach6, true); err != nil {
			return fail(err)
		}
		dst = appendAttr(dst, 0x80, attrMPUnreach, tmp)
	}
	if len(u.NLRI) > 0 || len(u.Reach6) > 0 {
		dst = appendAttr(dst, 0x40, attrOrigin, []byte{u.Origin})
		tmp = tmp[:0]
		if len(u.ASPath) > 0 {
			if len(u.ASPath) > 255 {
				return fail(errors.New("bgp: AS path too long"))
			}
			tmp = append(tmp, 2, byte(len(u.ASPath)))
			for _, as := range u.ASPath {
				tmp = binary.BigEndian.AppendUint32(tmp, as)
			}
		}
		dst = appendAttr(dst, 0x40, attrASPath, tmp)
		if len(u.NLRI) > 0 {
			if !u.NextHop.Is4() {
				return fail(errors.New("bgp: IPv4 prefixes need an IPv4 next hop"))
			}
			nh := u.NextHop.As4()
			dst = appendAttr(dst, 0x40, attrNextHop, nh[:])
		}
		if len(u.Communities) > 0 {
			tmp = tmp[:0]
			for _, c := range u.Communities {
				tmp = binary.BigEndian.AppendUint32(tmp, c)
			}
			dst = appendAttr(dst, 0xc0, attrCommunities, tmp)
		}
		if len(u.Reach6) > 0 {
			if !u.NextHop6.Is6() || u.NextHop6.Is4In6() {
				return fail(errors.New("bgp: IPv6 prefixes need an IPv6 next hop"))
			}
			nh := u.NextHop6.As16()
			tmp = append(tmp[:0], 0, AFIIPv6, SAFIUnicast, 16)
			tmp = append(tmp, nh[:]...)
			tmp = append(tmp, 0) // reserved
			if tmp, err = appendPrefixes(tmp, u.Reach6, true); err != nil {
				return fail(err)
			}
			dst = appendAttr(dst, 0x80, attrMPReach, tmp)
		}
	}
	binary.BigEndian.PutUint16(dst[aAt:], uint16(len(dst)-aAt-2))
	if dst, err = appendPrefixes(dst, u.NLRI, false); err != nil {
		return fail(err)
	}
	return finish(dst, start)
}

func parsePrefixes(b []byte, v6 bool) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	max := 32
	if v6 {
		max = 128
	}
	for len(b) > 0 {
		bits := int(b[0])
		n := (bits + 7) / 8
		if bits > max || len(b) < 1+n {
			return nil, perr(ErrCodeUpdate, 10, "bad prefix")
		}
		var a [16]byte
		copy(a[:], b[1:1+n])
		b = b[1+n:]
		addr := netip.AddrFrom16(a)
		if !v6 {
			addr = netip.AddrFrom4([4]byte(a[:4]))
		}
		p := netip.PrefixFrom(addr, bits)
		if p.Masked() != p {
			return nil, perr(ErrCodeUpdate, 10, "prefix %v has host bits", p)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// ParseUpdate parses the body of an UPDATE message. Attributes it does
// not model are skipped; IPv6 next hops of 32 bytes (global and
// link-local) keep the global one.
func ParseUpdate(body []byte) (*Update, error) {
	u := &Update{}
	if len(body) < 4 {
		return nil, perr(ErrCodeUpdate, 1, "UPDATE of %d bytes", len(body))
	}
	wl := int(binary.BigEndian.Uint16(body))
	if len(body) < 2+wl+2 {
		return nil, perr(ErrCodeUpdate, 1, "withdrawn routes length %d", wl)
	}
	var err error
	if u.Withdrawn, err = parsePrefixes(body[2:2+wl], false); err != nil {
		return nil, err
	}
	rest := body[2+wl:]
	al := int(binary.BigEndian.Uint16(rest))
	if len(rest) < 2+al {
		return nil, perr(ErrCodeUpdate, 1, "path attributes length %d", al)
	}
	attrs := rest[2 : 2+al]
	if u.NLRI, err = parsePrefixes(rest[2+al:], false); err != nil {
		return nil, err
	}
	seen := map[uint8]bool{}
	for len(attrs) > 0 {
		if len(attrs) < 3 {
			return nil, perr(ErrCodeUpdate, 1, "truncated attribute")
		}
		flags, code := attrs[0], attrs[1]
		hl, l := 3, int(attrs[2])
		if flags&0x10 != 0 {
			if len(attrs) < 4 {
				return nil, perr(ErrCodeUpdate, 1, "truncated attribute")
			}
			hl, l = 4, int(binary.BigEndian.Uint16(attrs[2:]))
		}
		if len(attrs) < hl+l {
			return nil, perr(ErrCodeUpdate, 5, "attribute %d length %d", code, l)
		}
		v := attrs[hl : hl+l]
		attrs = attrs[hl+l:]
		if seen[code] {
			return nil, perr(ErrCodeUpdate, 1, "attribute %d twice", code)
		}
		seen[code] = true
		switch code {
		case attrOrigin:
			if l != 1 || v[0] > 2 {
				return nil, perr(ErrCodeUpdate, 6, "bad ORIGIN")
			}
			u.Origin = v[0]
		case attrASPath:
			for len(v) > 0 {
				if len(v) < 2 || len(v) < 2+4*int(v[1]) {
					return nil, perr(ErrCodeUpdate, 11, "bad AS_PATH")
				}
				for i := range int(v[1]) {
					u.ASPath = append(u.ASPath, binary.BigEndian.Uint32(v[2+4*i:]))
				}
				v = v[2+4*int(v[1]):]
			}
		case attrNextHop:
			if l != 4 {
				return nil, perr(ErrCodeUpdate, 5, "NEXT_HOP of %d bytes", l)
			}
			u.NextHop = netip.AddrFrom4([4]byte(v))
		case attrCommunities:
			if l%4 != 0 {
				return nil, perr(ErrCodeUpdate, 5, "COMMUNITIES of %d bytes", l)
			}
			for i := 0; i < l; i += 4 {
				u.Communities = append(u.Communities, binary.BigEndian.Uint32(v[i:]))
			}
		case attrMPReach, attrMPUnreach:
			if len(v) < 3 {
				return nil, perr(ErrCodeUpdate, 9, "truncated MP attribute")
			}
			afi, safi := binary.BigEndian.Uint16(v), v[2]
			if afi != AFIIPv6 || safi != SAFIUnicast {
				continue // a family this speaker did not ask for
			}
			if code == attrMPUnreach {
				if u.Unreach6, err = parsePrefixes(v[3:], true); err != nil {
					return nil, err
				}
				u.EndOfRIB6 = len(u.Unreach6) == 0
				continue
			}
			if len(v) < 4 || len(v) < 5+int(v[3]) {
				return nil, perr(ErrCodeUpdate, 9, "truncated MP_REACH_NLRI")
			}
			nhl := int(v[3])
			if nhl != 16 && nhl != 32 {
				return nil, perr(ErrCodeUpdate, 8, "IPv6 next hop of %d bytes", nhl)
			}
			u.NextHop6 = netip.AddrFrom16([16]byte(v[4:20]))
			if u.Reach6, err = parsePrefixes(v[5+nhl:], true); err != nil {
				return nil, err
			}
		}
	}
	return u, nil
}

// Notification is a NOTIFICATION message.
type Notification struct {
	Code, Subcode uint8
	Data          []byte
}

func (n *Notification) Error() string {
	return fmt.Sprintf("bgp: notification %d/%d", n.Code, n.Subcode)
}

// AppendNotification appends n as a NOTIFICATION message to dst.
func AppendNotification(dst []byte, n *Notification) []byte {
	dst, start := appendHeader(dst, TypeNotification)
	dst = append(dst, n.Code, n.Subcode)
	dst = append(dst, n.Data[:min(len(n.Data), MaxMessage-21)]...)
	dst, _ = finish(dst, start)
	return dst
}

// ParseNotification parses the body of a NOTIFICATION message.
func ParseNotification(body []byte) (*Notification, error) {
	if len(body) < 2 {
		return nil, perr(ErrCodeHeader, 2, "NOTIFICATION of %d bytes", len(body))
	}
	return &Notification{Code: body[0], Subcode: body[1], Data: body[2:]}, nil
}
