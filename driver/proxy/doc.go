// Package proxy embeds the SYN proxy in a Go service: Listen protects a TCP
// port of this host and returns a net.Listener whose Accept returns the
// connections of clients that proved their SYN cookie, as real kernel
// sockets.
//
// Listen wires the pieces the synproxy-lite daemon uses: the nft table of
// driver/nft (created at start, a stale one from a crash removed, deleted by
// Close), the netfilter-queue driver of driver/nfqueue, the engine of
// package driver, which answers every SYN with a cookie SYN-ACK and keeps no
// state until the client's ACK proves the cookie, and a handoff.Listener
// that materialises each proven connection with TCP_REPAIR. The sockets
// carry nft.DefaultMark, so the rest of each connection reaches them
// directly, not through the queue.
//
// No ordinary listening socket exists on the port: the kernel never sees a
// protected SYN. Serve the returned Listener as any other, e.g. with
// http.Serve.
//
// Listen needs CAP_NET_ADMIN and CAP_NET_RAW, and must run in the network
// namespace of the addresses it protects: the engine's workers create the
// sockets on threads of their own, in the process's namespace.
package proxy
