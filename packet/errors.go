package packet

import (
	"errors"
	"strings"
)

// Errors of Decode. Each is returned wrapped in an *Error that names the
// layer, so test with errors.Is.
var (
	// ErrTruncated: the bytes end before a header or before the length an
	// IP header announces (a capture cut by its snap length, say).
	ErrTruncated = errors.New("packet: truncated")
	// ErrBadHeaderLength: a header length field is below the minimum
	// (IPv4 IHL < 5, TCP data offset < 5) or the TCP header is longer than
	// the segment the IP header delimits.
	ErrBadHeaderLength = errors.New("packet: bad header length")
	// ErrBadLength: the IPv4 total length is shorter than its own header.
	ErrBadLength = errors.New("packet: bad total length")
	// ErrBadVersion: the IP version is neither 4 nor 6, or does not match
	// the EtherType.
	ErrBadVersion = errors.New("packet: bad IP version")
	// ErrNotIP: an Ethernet frame whose EtherType is not IPv4 or IPv6.
	ErrNotIP = errors.New("packet: not an IP packet")
	// ErrFragment: an IPv4 packet with the more-fragments flag or a fragment
	// offset, or an IPv6 packet with a fragment header. A fragment is never
	// treated as a TCP segment, let alone a SYN.
	ErrFragment = errors.New("packet: fragment")
	// ErrNotTCP: the IP payload is not TCP.
	ErrNotTCP = errors.New("packet: not TCP")
	// ErrExtHeader: an IPv6 extension header chain that is not walked to
	// TCP: ESP, a hop-by-hop header that is not first, or more than
	// MaxExtHeaders headers.
	ErrExtHeader = errors.New("packet: unsupported IPv6 extension header")
	// ErrChecksum: VerifyChecksums found a bad IPv4 header or TCP checksum.
	ErrChecksum = errors.New("packet: bad checksum")
	// ErrLinkType: Decode was given an unknown LinkType.
	ErrLinkType = errors.New("packet: unknown link type")
)

// Errors of the builders.
var (
	// ErrOptionsTooLong: the options do not fit the 40 bytes a TCP header
	// has for them (or more than 4 SACK blocks).
	ErrOptionsTooLong = errors.New("packet: TCP options longer than 40 bytes")
	// ErrTooLong: the segment does not fit an IP packet.
	ErrTooLong = errors.New("packet: segment too long for an IP packet")
	// ErrAddr: a source or destination address is invalid, or the two are of
	// different families (an IPv4-mapped IPv6 address counts as IPv6).
	ErrAddr = errors.New("packet: invalid or mixed address families")
	// ErrNotDecoded: a reply was asked for a Packet that Decode did not
	// accept.
	ErrNotDecoded = errors.New("packet: reply to a packet that was not decoded")
)

// Layer names the header an error was found in.
type Layer uint8

// Layers.
const (
	LayerLink Layer = iota
	LayerIPv4
	LayerIPv6
	LayerTCP
	numLayers
)

var layerNames = [numLayers]string{"link", "ipv4", "ipv6", "tcp"}

func (l Layer) String() string {
	if l < numLayers {
		return layerNames[l]
	}
	return "unknown layer"
}

// Error is a decode error: the layer it was found in and one of the Err
// values above. Decode returns pointers to preallocated Errors, so failing
// costs no allocation.
type Error struct {
	Layer Layer
	Err   error
}

func (e *Error) Error() string {
	return "packet: " + e.Layer.String() + ": " + strings.TrimPrefix(e.Err.Error(), "packet: ")
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

var kinds = [...]error{ErrTruncated, ErrBadHeaderLength, ErrBadLength, ErrBadVersion, ErrNotIP,
	ErrFragment, ErrNotTCP, ErrExtHeader, ErrChecksum, ErrLinkType}

type kind uint8

const (
	kTruncated kind = iota
	kBadHeaderLength
	kBadLength
	kBadVersion
	kNotIP
	kFragment
	kNotTCP
	kExtHeader
	kChecksum
	kLinkType
	numKinds
)

var errTable [numLayers][numKinds]Error

func init() {
	for l := range errTable {
		for k := range errTable[l] {
			errTable[l][k] = Error{Layer: Layer(l), Err: kinds[k]}
		}
	}
}

func errAt(l Layer, k kind) error { return &errTable[l][k] }
