package handoff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
)

// proxySig is the signature that starts a PROXY protocol v2 header.
var proxySig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// ProxyHeaderLen is the largest header AppendProxyHeader writes (IPv6).
const ProxyHeaderLen = 16 + 36

// ErrProxyHeader is returned by ParseProxyHeader for bytes that are not a
// PROXY protocol v2 header it understands.
var ErrProxyHeader = errors.New("handoff: not a PROXY protocol v2 header")

// AppendProxyHeader appends a PROXY protocol v2 header (version 2, command
// PROXY, TCP over IPv4 or IPv6, no TLVs) saying that client connected to
// server. Mixed families (an IPv4 client of an IPv6 server) are written as
// IPv6 with IPv4-mapped addresses.
func AppendProxyHeader(b []byte, client, server netip.AddrPort) []byte {
	b = append(b, proxySig...)
	c, s := client.Addr().Unmap(), server.Addr().Unmap()
	if c.Is4() && s.Is4() {
		b = append(b, 0x21, 0x11, 0, 12)
		b = append(b, c.AsSlice()...)
		b = append(b, s.AsSlice()...)
	} else {
		b = append(b, 0x21, 0x21, 0, 36)
		c16, s16 := c.As16(), s.As16()
		b = append(b, c16[:]...)
		b = append(b, s16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, client.Port())
	return binary.BigEndian.AppendUint16(b, server.Port())
}

// ParseProxyHeader parses the PROXY protocol v2 header at the start of b:
// the client and server addresses and the header's length in bytes. TLVs
// after the addresses are skipped. A LOCAL command (a health check of the
// proxy itself) returns zero AddrPorts. It returns ErrProxyHeader for
// anything else, and io.ErrUnexpectedEOF-like errors never: a b shorter than
// the header is ErrProxyHeader too, so read the 16-byte prefix first and
// then its length.
func ParseProxyHeader(b []byte) (client, server netip.AddrPort, n int, err error) {
	if len(b) < 16 || !bytes.Equal(b[:12], proxySig) {
		return client, server, 0, ErrProxyHeader
	}
	verCmd, fam := b[12], b[13]
	l := int(binary.BigEndian.Uint16(b[14:]))
	n = 16 + l
	if verCmd>>4 != 2 || len(b) < n {
		return client, server, 0, ErrProxyHeader
	}
	switch verCmd & 0xf {
	case 0: // LOCAL
		return client, server, n, nil
	case 1: // PROXY
	default:
		return client, server, 0, ErrProxyHeader
	}
	a := b[16:n]
	switch fam {
	case 0x11: // TCP over IPv4
		if len(a) < 12 {
			return client, server, 0, ErrProxyHeader
		}
		client = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:]))
		server = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[10:]))
	case 0x21: // TCP over IPv6
		if len(a) < 36 {
			return client, server, 0, ErrProxyHeader
		}
		client = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])), binary.BigEndian.Uint16(a[32:]))
		server = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[16:32])), binary.BigEndian.Uint16(a[34:]))
	default:
		return client, server, 0, ErrProxyHeader
	}
	return client, server, n, nil
}
