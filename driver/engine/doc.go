// Package engine is the SYN proxy's packet engine. It runs on the queues of
// a driver (package driver's contract: driver/nfqueue, driver/afpacket),
// one worker goroutine per queue, each locked to its OS thread.
//
// The engine answers every SYN to the protected port with a cookie SYN-ACK
// built like the kernel's netfilter SYNPROXY builds it under the configured
// synproxy rule (packet.Rule: options, timestamp cookie; the window is
// SYNACKWindow, not 0), keeps no state for it, checks the cookie of every
// ACK that reaches it, and hands the proven connections to a Handoff (which
// materialises a kernel socket with TCP_REPAIR, driver/handoff).
//
// Each packet is decoded with its link type (driver.Packet.Link) by
// package packet, and every reply is built behind the link header of the
// packet it answers, with the Ethernet addresses swapped
// (packet.AppendReply): bare IP packets on a netfilter queue, whole frames
// on an AF_PACKET ring, so that a driver sends replies as they are.
//
// Counters are atomics (Counters; driver/metrics exports them); the engine
// allocates nothing per packet and logs nothing per packet.
package engine
