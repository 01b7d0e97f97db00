// Package flood generates a SYN flood: TCP SYNs from random sources of a
// spoofed prefix, with random ports and sequence numbers, to one service,
// sent on a raw socket at a bounded rate. It is the demo's attacker.
//
// Packets are built by package packet (its builder computes every
// checksum); this package only chooses the fields. The Generator is
// portable; the Sender needs Linux (a raw IPv4 socket, CAP_NET_RAW) and
// returns ErrNotSupported elsewhere.
package flood
