// Package rawsock is the drivers' one sendmmsg(2) path: a Batch of
// messages sent in one system call (retried where the kernel stopped, the
// message it refused skipped), and IP, a pair of raw IP sockets
// (IPPROTO_RAW, header included) that sends whole IPv4 and IPv6 packets to
// the destination their header names.
//
// driver/nfqueue transmits on IP; driver/afpacket re-injects the packets it
// gives back to the kernel stack on IP, and transmits frames with a Batch
// on its AF_PACKET socket when the kernel refuses a transmit ring. Neither
// allocates per packet: the scratch (message headers, iovecs, socket
// addresses) is allocated once per Batch.
//
// The package exists on Linux only.
package rawsock
