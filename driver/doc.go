// Package driver is the userspace SYN proxy: a burst receive/transmit
// interface in the style of DPDK poll-mode drivers, and the engine that runs
// on it.
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
// queues and transmits on raw IP sockets. A ring driver (AF_PACKET
// TPACKET_V3) fits the same interface: its frames are its buffers, its
// "verdict" is whether the kernel stack must also see the packet, which such
// a driver expresses through its nft rule rather than per packet.
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
// Packets are layer-3: they begin with the IPv4 or IPv6 header.
//
// # Engine
//
// Engine answers every SYN to the protected port with a cookie SYN-ACK built
// like the kernel's netfilter SYNPROXY builds it (options, timestamp cookie;
// the window is SYNACKWindow, not 0), keeps no state for it, checks the
// cookie of every ACK
// that reaches it, and hands the proven connections to a Handoff (which
// materialises a kernel socket with TCP_REPAIR). Counters are atomics; the
// engine allocates nothing per packet and logs nothing per packet.
package driver
