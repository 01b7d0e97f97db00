// Package proxy runs the SYN proxy on a port of this host: one Server,
// used by the synproxy-lite daemon ("synproxy-lite run") and by Go
// services that embed the proxy with Listen.
//
// A Server wires the pieces: a packet I/O driver opened by name from a
// small table (Drivers: nfqueue, afpacket), the engine of package driver,
// which answers every SYN with a cookie SYN-ACK and keeps no state until
// the client's ACK proves the cookie, the nft table of driver/nft (created
// at start, a stale one from a crash removed, deleted by Close; queue or
// drop rules as the driver needs), and driver/handoff, which materialises
// each proven connection as a kernel socket with TCP_REPAIR. The sockets
// carry nft.DefaultMark, so the rest of each connection reaches them
// directly, not through the queue.
//
// With a Backend the Server splices every connection to it
// (handoff.Proxy), and Restart makes a graceful restart: the open
// connections, parked at a clean point, pass to a new process of the same
// program, which takes them on as it starts. Without one it hands the
// connections to a handoff.Listener; Listen returns that as a
// net.Listener:
//
// No ordinary listening socket exists on the port: the kernel never sees a
// protected SYN. Serve the returned Listener as any other, e.g. with
// http.Serve.
//
// The Server exposes its engine (Engine, ServerConfig.OnEngine) for its
// counters; the package does not export them itself, so it does not
// depend on a metrics library (metrics.NewCollector makes a Prometheus
// collector of an engine). Ready says whether the Server serves (rules
// present, engine running, backend answering), for a readiness endpoint,
// and ReadyKnown the same without probing the backend, for a metric;
// metrics.Readiness is that pair, so neither package imports the other.
//
// A Server needs CAP_NET_ADMIN and CAP_NET_RAW, and must run in the network
// namespace of the addresses it protects: the engine's workers create the
// sockets on threads of their own, in the process's namespace.
package proxy
