// Package afpacket is the raw-socket ring driver: AF_PACKET sockets with a
// TPACKET_V3 memory-mapped receive ring and a TPACKET_V2 transmit ring, one
// socket per worker, joined in a PACKET_FANOUT group so that the kernel
// spreads flows across the workers.
//
// # Data path
//
// Receive is a burst: a worker walks the packets of a ring block the kernel
// has handed over, with no system call while packets are waiting; it calls
// poll(2) only when the ring is empty (or spins, with Config.BusyPoll).
// Transmit is a burst too: WriteBatch writes the frames into the transmit
// ring and kicks the kernel with one send(2) per batch (or, when the kernel
// refuses the ring, one sendmmsg(2) per batch, driver/internal/rawsock's). Receive buffers are the ring
// frames themselves and transmit buffers are ring slots, so the steady state
// allocates nothing.
//
// A classic BPF filter, attached before the socket is bound, lets only TCP
// segments to the protected port into the ring (IPv6 ones behind up to four
// extension headers); the kernel's own copies of outgoing packets are
// ignored (PACKET_IGNORE_OUTGOING).
//
// # Proven clients first
//
// With Config.Proven, sources that completed a handshake recently are
// received apart from the others. Driver.Prove (called once per connection
// handed over, never per packet) writes a source and the time into one of
// two eBPF LRU hash maps, proven4 and proven6. The filters are then eBPF
// socket filters (built with cilium/ebpf's asm package: no compiler, no
// kernel BTF) that make the classic filter's tests with ld_abs and ld_ind
// loads and look the source up: one more socket, outside the fanout group,
// with a ring of its own (the last of Driver.Queues), accepts the port's
// segments of sources proven less than Config.Proven.Timeout ago; the workers'
// sockets accept the others. Each segment is copied into one ring, so a
// flood from sources that never completed a handshake fills the workers'
// rings and never the proven one. Counters has the proven queue's packets
// and its ring's overruns.
//
// # This host's traffic only
//
// The interface may carry traffic for other hosts: a router forwards it, a
// promiscuous interface overhears it. The driver hands the engine only
// frames the kernel marks as for this host (PACKET_HOST) whose destination
// is a local address: one of the routes of type local, which a netlink
// watch keeps current as addresses and routes change. The other frames are
// left to the kernel and counted (driver.DriverStats.Skipped, by reason).
//
// # Socket errors
//
// When the interface goes down the kernel sets an error (ENETDOWN) on every
// receive socket bound to it, and poll(2) reports POLLERR until the error is
// read. A worker reads it (SO_ERROR, which clears it), counts it, logs it
// (rate-limited, Config.Logger) and waits before it polls again, 1 ms
// doubling up to 1 s while errors repeat; once the interface is up again,
// packets flow. Idle wake-ups (neither a packet nor a Wake) are counted so
// that a spinning worker shows.
//
// # Layer 2
//
// The queues' link type is driver.LinkEthernet: ReadBatch hands out whole
// Ethernet frames, and WriteBatch sends whole frames as given. The engine
// builds each reply behind the Ethernet header of the frame it answers,
// with the addresses swapped (packet.AppendReply): from the address the
// request was sent to (the interface's own) back to the hop it came from, as
// a router or an ECMP fabric expects, and
// a re-sent SYN-ACK goes where its SYN came from; the driver parses no
// reply. The kernel takes the 802.1Q (or 802.1ad) tag out of a tagged frame
// before the ring; the driver writes it back in, in the gap the ring leaves
// before each frame, so the engine sees the frame as sent and the reply
// leaves on the same VLAN. (A frame with two tags keeps its inner one in the
// data, which the filter does not let in.)
//
// Segments a local sender left with a partial checksum (checksum offload on
// veth and loopback, flagged TP_STATUS_CSUMNOTREADY) get their TCP checksum
// completed in the ring (with package packet's checksum) before the engine
// sees them.
//
// # The kernel stack
//
// AF_PACKET taps packets before netfilter: the kernel's stack still receives
// every SYN and handshake ACK the driver answers. The rules of driver/nft in
// drop mode (nft.Config.Drop) drop them in prerouting unless a socket of a
// handed-over connection owns them, so the stack never answers them with a
// reset. A packet the engine gives back (VerdictAccept: the handshake ACK of
// a connection just handed over, and segments that arrived before its socket
// existed) is re-injected, without its Ethernet header, on a raw IP socket
// (driver/internal/rawsock) towards the local address, where the new socket
// receives it; segments that the kernel already delivered to that socket
// (received after it was created) are not injected again.
//
// The ring sees every segment to the protected port, including those of
// established connections, which the engine looks at and lets be. That is the
// price of tapping below netfilter; it costs CPU on bulk transfers towards the
// service, not correctness.
package afpacket
