// Package driver is the contract between the SYN proxy's engine
// (driver/engine) and its packet I/O backends (driver/nfqueue,
// driver/afpacket): a burst receive/transmit interface in the style of DPDK
// poll-mode drivers. It holds types only and imports nothing beyond the
// standard library, so a new driver depends on the contract, not on the
// engine, its counters or its metrics.
//
// # Drivers
//
// A Driver owns one or more Queues. Each Queue is served by exactly one
// worker goroutine, locked to its OS thread, that loops:
//
//	n, err := q.ReadBatch(pkts)        // burst receive, blocks for >= 1 packet
//	... decide pkts[i].Verdict, build replies into tx buffers ...
//	q.WriteBatch(tx[:m])               // burst transmit of new packets
//	q.Release(pkts[:n])                // apply the verdicts, give buffers back
//
// The nfqueue driver (driver/nfqueue) receives from the kernel's netfilter
// queues and transmits on raw IP sockets. The ring driver (driver/afpacket,
// AF_PACKET TPACKET_V3) fits the same interface: its frames are its
// buffers, its "verdict" is whether the kernel stack must also see the
// packet, which it expresses by re-injecting accepted packets.
//
// # Link types
//
// Every received Packet says what precedes its IP header (Packet.Link):
// nothing (LinkIP: the packet starts with the IPv4 or IPv6 header, as
// netfilter queues deliver it) or an Ethernet II header (LinkEthernet, as
// AF_PACKET delivers frames). The values are those of package packet's
// LinkType, value for value, so packet.LinkType(p.Link) is the link type
// to decode with.
//
// WriteBatch takes packets in the form its queue delivers them: bare IP
// packets on a LinkIP queue, whole Ethernet frames on a LinkEthernet queue.
// A reply built behind the link header of the packet it answers (with the
// Ethernet addresses swapped) is therefore ready to send as it is.
//
// # Buffer lifetime
//
// ReadBatch sets pkts[i].Data to a slice the driver owns: a pre-allocated
// pool slot, an mmap'd ring frame or a buffer the kernel interface handed
// over. The slice is valid from ReadBatch's return until Release(pkts[:n])
// returns, and only in the goroutine that called ReadBatch. The engine never
// retains it: whatever must outlive the batch (payload riding on a
// handshake ACK) is copied. Release must be called exactly once per
// successful ReadBatch, with the same descriptors, before the next
// ReadBatch. Buffers passed to WriteBatch are the caller's; the driver has
// copied or sent them when WriteBatch returns, so the caller may reuse them
// at once.
//
// # Proven clients first
//
// A driver that taps packets below netfilter cannot use nft's sets to
// serve the sources of handed-over connections before a flood: it
// implements Prover instead, opened with a Proven configuration. Its user
// (driver/proxy) calls Prove after each connection it hands over, and the
// driver receives those sources' packets apart from the flood's.
package driver
