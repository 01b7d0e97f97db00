// Package afxdp is the AF_XDP driver: an XDP program on the interface sends
// the handshake packets of the protected port to AF_XDP sockets, one per
// receive queue, and passes everything else to the kernel's stack before it
// ever reaches userspace. It is the way DPDK itself runs on Linux.
//
// # The XDP program
//
// The program (bpf/xdp.c, compiled by clang through bpf2go; the objects and
// their Go bindings are committed, so building needs no clang) looks at
// untagged IPv4 and IPv6 frames carrying TCP (IPv6 with no extension
// header, IPv4 not fragmented) to the protected port at one of the host's
// local addresses, which the driver keeps in two LPM tries as the routes of
// type local change. A SYN always goes to the engine. For the other
// segments it asks the kernel for a socket (bpf_skc_lookup_tcp): one that
// belongs to a live socket (neither a listener nor in TIME_WAIT) passes to
// the stack, so a handed-over connection's traffic never reaches the
// engine; every other one (handshake ACKs, strays, what reaches a socket
// in TIME_WAIT, which a new connection on the tuple replaces) goes to the
// socket of its receive queue through an XSKMAP, or to the stack when the
// queue has none. The program reads no kernel structure but
// the UAPI's struct bpf_sock, so it needs no kernel BTF.
//
// The program also applies the protection policy's part that needs only
// the packet: the allow and deny lists (Driver.SetLists: LPM tries, two
// generations switched at once; a denied source's segments to the port are
// dropped, an allowed one's pass to the stack) and the on-demand switch
// (Config.OnDemand, Driver.SetEngaged: SYNs pass to the stack until the
// cookies engage, and the connections they opened keep passing). Its
// counters (Driver.Counters) count both, and the port's SYNs.
//
// With Config.Proven it serves proven clients first: the sources the
// engine handed a connection of over (Driver.Prove, once per connection)
// are kept in LRU hash maps with the time of their proof, refreshed by the
// segments of their live connections, and their SYNs and handshake ACKs go
// to a second socket on their receive queue (XDP_SHARED_UMEM: the first
// socket's UMEM, fill and completion rings, an RX ring of its own), which
// ReadBatch drains before the first's. A flood fills the first socket's
// ring, never the proven one's.
//
// It is attached through a BPF link (native mode, else generic): when the
// process dies the link's last file descriptor closes and the kernel
// detaches the program; no stale program is left to black-hole the port.
//
// # Data path
//
// Each socket has its own UMEM of Config.Frames frames of 2 KiB (a frame of
// an MTU 1500 link): seven eighths are receive buffers, kept on the fill
// ring, an eighth transmit buffers. ReadBatch
// takes frames off the RX ring with no system call while frames are
// waiting (it sleeps in poll(2) when the ring is empty, or spins with
// Config.BusyPoll) and hands the engine whole Ethernet frames
// (driver.LinkEthernet), in place in the UMEM; Release puts the frames back
// on the fill ring. WriteBatch copies each frame into a transmit buffer,
// puts the batch on the TX ring and kicks the kernel with one sendto(2)
// when it asks for it (need_wakeup; always in copy mode); the completion
// ring gives the buffers back. Nothing is allocated per packet.
//
// A segment sent by a local sender with checksum offload (veth, a
// container) reaches XDP with only the pseudo-header sum in its checksum
// field; the driver completes it before the engine verifies it.
//
// # The kernel stack
//
// A packet redirected to a socket never reaches the stack. The packets the
// engine gives back (driver.VerdictAccept: the handshake ACK of a
// connection just handed over, with any data it carries, and segments that
// arrived before the new socket existed) are re-injected without their
// Ethernet header on a raw IP socket towards the local address, where the
// new socket receives them: nothing that rode on the handshake is lost.
// From then on the program finds the socket and passes the connection's
// segments straight to the stack.
//
// The nft rules are those of the afpacket driver (drop mode): what the
// program passes while no socket serves a queue, or while the driver is not
// running, is dropped in prerouting unless a socket owns it, so the kernel
// never answers a SYN itself.
package afxdp
