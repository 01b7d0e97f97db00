// Package packet reads and writes the IPv4/IPv6/TCP packets of a TCP
// handshake without allocating: a decoder into a caller-owned struct, the
// Internet checksum with its incremental update, and builders that write the
// SYN-ACK, RST, ACK and proxied SYN of the Linux kernel's netfilter SYNPROXY
// (nftables "synproxy") byte for byte into caller buffers.
//
// It imports only the standard library and builds for every GOOS, js/wasm
// included.
//
// # Decoding
//
// Packet.Decode reads an IPv4 or IPv6 packet, bare (NFQUEUE, raw sockets) or
// behind an Ethernet header with up to two VLAN tags (AF_PACKET), into a
// Packet the caller owns and reuses. It checks every length field against the
// bytes and against each other, refuses fragments (ErrFragment: a fragment is
// never a SYN), walks IPv6 extension headers to TCP, and parses the TCP
// options into a fixed struct exactly as the kernel's synproxy does. Bad input
// gives an *Error naming the layer and wrapping ErrTruncated,
// ErrBadHeaderLength, ... ; Decode never panics and never reads outside the
// slice.
//
// IPv4 header (RFC 791):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// IHL < 5 is ErrBadHeaderLength; Total Length below IHL·4 is ErrBadLength,
// beyond the bytes ErrTruncated; bytes after Total Length (Ethernet padding)
// are not part of the packet. More-fragments or a fragment offset is
// ErrFragment. IPv4 options are kept in the header, not interpreted.
//
// IPv6 header (RFC 8200):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                         Source Address                        +
//	|                          (128 bits)                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                      Destination Address                      +
//	|                          (128 bits)                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Extension headers walked to TCP: hop-by-hop (first only), routing,
// destination options, authentication (AH), and the other headers of the
// RFC 7045 format (mobility, HIP, shim6, experimental 253/254), at most
// MaxExtHeaders of them. A fragment header is ErrFragment (every fragment,
// the first and atomic ones included); ESP, a misplaced hop-by-hop header or
// too long a chain is ErrExtHeader; any other next header (UDP, ICMPv6, No
// Next Header) is ErrNotTCP.
//
// TCP header (RFC 9293):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           [Options]                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// A data offset below 5 or beyond the segment is ErrBadHeaderLength. Options
// (see Options) are parsed as synproxy_parse_options does: stop at EOL or at
// a malformed length, take MSS/window scale/SACK-permitted/timestamps only
// with their exact lengths, clamp window scale to 14.
//
// # Checksums
//
// Sum, Checksum, PseudoHeaderSum and TCPChecksum compute RFC 1071 sums eight
// bytes at a time; UpdateChecksum and friends apply RFC 1624's incremental
// update for in-place rewrites. Packet.VerifyChecksums checks a received
// packet.
//
// # Building
//
// A Segment describes a TCP segment; AppendSegment and AppendReply append it,
// with or without an Ethernet header, to a caller buffer in the style of
// append (no allocation when the buffer has room), computing lengths and
// checksums. Constructors give the handshake packets of the kernel's
// synproxy (net/netfilter/nf_synproxy_core.c):
//
//   - Rule.Offer and SYNACK/AppendSYNACK: the SYN-ACK carrying a cookie.
//   - RST: the reset answering a segment.
//   - PureACK: an ACK, with or without a timestamp.
//   - BackendSYN: the SYN the proxy sends to the server once a client's ACK
//     passes the cookie check.
//
// The SYN-ACK has IPv4 ID 0, DF, TOS 0, TTL 64 (configurable); IPv6 traffic
// class and flow label 0, hop limit 64; window 0; ack = the SYN's seq + 1;
// and options in synproxy's order and padding:
//
//	02 04 <mss>                      MSS: the client sent one and the rule has mss
//	04 02 08 0a <tsval> <tsecr>      timestamps with SACK-permitted
//	01 01 08 0a <tsval> <tsecr>      timestamps without SACK-permitted
//	01 03 03 <wscale>                window scale (client sent it, rule has it, timestamps on)
//
// The tests rebuild 800 SYN-ACKs captured from Linux 6.1 and 6.12 byte for
// byte (testdata/kernel-*.pcap). Segment.PartialChecksum writes the
// pseudo-header sum only, as the kernel does for checksum offload.
//
// Replies keep the link header of the packet they answer, with the Ethernet
// addresses swapped.
//
// The cookie itself (the SYN-ACK's sequence number) and the timestamp
// cookie (its TSval) come from package cookie; packet does not import it.
// Offer.TS converts to cookie.TSOptions.
package packet
