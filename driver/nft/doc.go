// Package nft programs the netfilter rules of synproxy-lite through
// github.com/google/nftables, in a table of its own ("inet synproxy_lite" by
// default) that is created at start and deleted at stop. The table carries
// an owner mark (see Owner): a table synproxy-lite did not create, or one
// that another running instance owns, is never replaced or deleted
// (ErrNotOwned, ErrInUse); a stale one, left by a process that is gone, is
// replaced in the same transaction that installs the new rules.
//
// The rules, in a filter chain at the prerouting hook, priority raw (-300:
// after defragmentation, before connection tracking and NAT):
//
//	fib daddr type local tcp dport P meta mark M                            accept     # the daemon's own packets
//	fib daddr type local tcp dport P tcp flags & (fin|syn|rst|ack) == syn  queue      # every SYN
//	fib daddr type local tcp dport P socket mark M                         accept     # handed-off connections
//	fib daddr type local tcp dport P                                       queue      # handshake ACKs, strays
//
// The daemon's own sockets (its backend connections) carry the mark M
// too, so a backend on this host never has its packets queued, even on the
// protected port. A handed-off connection is a kernel socket carrying the mark M (SO_MARK),
// so once it exists its packets reach it directly and never the queue. Every
// other segment to the port goes to userspace, where the cookie is checked;
// the kernel's own TCP stack never sees a protected SYN and therefore never
// answers one.
//
// Queueing uses the nft "queue" expression when the kernel has nft_queue and
// otherwise the xtables NFQUEUE target (revision 3) through nft_compat, which
// is what kernels built without CONFIG_NFT_QUEUE offer. Install probes which
// one works and reports it.
//
// With FailOpen, the queue rule carries the bypass flag: while no process
// listens on the queue (the daemon died) the kernel accepts the packets
// instead of dropping them. A nat chain then sends those SYNs to the
// Fallback address (the backend), so service continues without SYN
// protection until the daemon is back.
//
// A flow let through must keep working once the daemon reads the queue
// again, and only connection tracking knows it. So with FailOpen the raw
// chain queues only the SYNs (a SYN flood stays untracked), and the other
// segments go through a second filter chain, after connection tracking and
// before the nat chain:
//
//	chain prerouting, priority raw (-300):
//	fib daddr type local tcp dport P tcp flags & (fin|syn|rst|ack) == syn  queue bypass
//	chain tracked, priority mangle (-150):
//	fib daddr type local tcp dport P socket mark M                         accept
//	fib daddr type local tcp dport P ct state established                  accept  # let through earlier
//	fib daddr type local tcp dport P tcp flags & (fin|syn|rst|ack) != syn  queue bypass
//	chain failopen, type nat, priority dstnat (-100):
//	fib daddr type local tcp dport P tcp flags & (fin|syn|rst|ack) == syn  dnat to Fallback
//
// A bypassed SYN goes on from the raw chain through the tracked chain,
// which does not queue it again, to the nat chain. Install refuses
// (ErrLoopbackFallback) a loopback Fallback that bypassed packets cannot
// reach: 127.0.0.0/8 without route_localnet, and ::1.
package nft
