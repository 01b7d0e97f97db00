// Package demo is synproxy-lite's demo lab: four network namespaces
// (client, attacker, proxy, backend) built with package netlab, the daemon
// in the proxy namespace in front of a small HTTP server in the backend
// namespace, a spoofed SYN flood from the attacker (package flood) while
// the client keeps fetching pages, and a table of the daemon's counters
// (scraped with package promtext) and the client's results once a second.
// Everything is removed at the end, also when the context is cancelled.
//
// The daemon is a process the caller supplies (Options.Daemon): the
// synproxy-lite binary re-executed as "run", or a test binary standing in
// for it.
//
// Address plan: 10.99.200.0/24 client–proxy (and fd00:99:200::/64),
// 10.99.201.0/24 attacker–proxy, 10.99.202.0/24 spoofed SYN sources
// (routed to the attacker), 10.99.203.0/24 proxy–backend.
package demo
