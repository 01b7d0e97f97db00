// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
//
// The afxdp driver's XDP program. It sends to the AF_XDP socket of the
// receive queue the TCP segments for the protected port at one of the
// host's local addresses that belong to no live connection the kernel
// knows (SYNs, handshake ACKs, strays, segments of a socket in TIME_WAIT),
// and passes everything else to the stack: other traffic, and the segments
// of live sockets, so that established connections never reach userspace.
//
// It reads no kernel type beyond the UAPI (struct bpf_sock's state is
// rewritten by the verifier): no BTF of the running kernel is needed.
// Rebuild with `go generate ./driver/afxdp` (clang); the object is
// committed.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual Apache/GPL";

#define MAX_QUEUES 256
#define MAX_LOCALS 4096

// xsks holds the AF_XDP socket of each receive queue.
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

// proven_xsks holds the second socket of each receive queue (proven
// clients first): it shares the first's UMEM, fill and completion rings and
// has an RX ring of its own, which the flood does not reach.
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} proven_xsks SEC(".maps");

struct lpm4 {
	__u32 prefixlen;
	__u32 addr;
};

struct lpm6 {
	__u32 prefixlen;
	__u32 addr[4];
};

// local4 and local6 are the host's local addresses and prefixes (the
// routes of type local), kept current by the driver.
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_LOCALS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm4);
	__type(value, __u8);
} local4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_LOCALS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm6);
	__type(value, __u8);
} local6 SEC(".maps");

#define MAX_LISTED 65536

// The allow and deny lists, one trie per family and generation, a source
// prefix's value LIST_ALLOW or LIST_DENY. The longest prefix decides; the
// driver gives an allowed prefix inside a denied one the value LIST_DENY,
// so a denied source is denied whatever else allows it (as in the nft
// rules and the engine).
#define LIST_ALLOW 1
#define LIST_DENY 2

#define LIST_TRIE(name, k) \
	struct { \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE); \
		__uint(max_entries, MAX_LISTED); \
		__uint(map_flags, BPF_F_NO_PREALLOC); \
		__type(key, struct k); \
		__type(value, __u8); \
	} name SEC(".maps")

LIST_TRIE(lists4_0, lpm4);
LIST_TRIE(lists4_1, lpm4);
LIST_TRIE(lists6_0, lpm6);
LIST_TRIE(lists6_1, lpm6);

// passed holds the connections whose SYN an on-demand program passed to
// the stack while the cookies were not engaged (the service's own
// listener answered it, through the nft rules): their other segments pass
// too, whatever happens to the mode, so no such connection breaks when the
// cookies engage. Least recently used entries go first.
struct flow {
	struct bpf_sock_tuple t;
	__u32 family;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow);
	__type(value, __u8);
} passed SEC(".maps");

// proven4 and proven6 are the proven sources: those of connections the
// engine handed over after a cookie handshake (the driver adds them), the
// value the bpf_ktime_get_ns() of the last proof. The program refreshes the
// value of a source whose live connections send segments; it adds none, so
// spoofed sources never enter. The driver sets max_entries before loading;
// the least recently used source goes first when a map is full.
struct src6 {
	__u32 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} proven4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct src6);
	__type(value, __u64);
} proven6 SEC(".maps");

// config[CONFIG_PORT] is the protected port, in network byte order;
// config[CONFIG_MODE] the on-demand flags (MODE_); config[CONFIG_LISTS] the
// generation of the allow and deny tries in force (0: lists4_0 and
// lists6_0, 1: lists4_1 and lists6_1). The driver fills the other
// generation, then switches: every packet sees the old lists or the new.
// config[CONFIG_PROVEN] is how long a source stays proven, in
// milliseconds; 0 turns proven clients first off.
enum {
	CONFIG_PORT,
	CONFIG_MODE,
	CONFIG_LISTS,
	CONFIG_PROVEN,
	CONFIG_MAX,
};

#define MODE_ON_DEMAND 1 // SYNs pass to the stack unless MODE_ENGAGED
#define MODE_ENGAGED 2

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CONFIG_MAX);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

// counters, per CPU: what the program did (see the COUNT_ indices).
enum {
	COUNT_REDIRECTED,
	COUNT_SOCKET,
	COUNT_NOT_LOCAL,
	COUNT_ALLOWED, // packets of allowed sources, passed to the stack
	COUNT_DENIED,  // packets of denied sources, dropped
	COUNT_SYN,     // SYNs to the port of sources not listed (on-demand's rate)
	COUNT_SYN_PASSED, // SYNs passed to the service: on demand, not engaged
	COUNT_FLOW_PASSED, // other segments of their connections, passed
	COUNT_PROVEN, // segments of proven sources, sent to the proven socket
	COUNT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 i)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &i);
	if (c)
		*c += 1;
}

// owned reports whether a live socket owns the segment's tuple: one that
// is neither a listener nor in TIME_WAIT. A socket in TIME_WAIT is what
// remains of a connection; the engine decides for its segments (it gives
// a FIN to the kernel, and the handshake ACK of a new connection on the
// tuple replaces the socket), as it does behind a netfilter queue.
static __always_inline int owned(struct xdp_md *ctx, struct bpf_sock_tuple *t, __u32 size)
{
	struct bpf_sock *sk = bpf_skc_lookup_tcp(ctx, t, size, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	int state = sk->state;
	bpf_sk_release(sk);
	return state != BPF_TCP_LISTEN && state != BPF_TCP_TIME_WAIT;
}

SEC("xdp")
int synproxy_lite(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct bpf_sock_tuple t = {};
	struct tcphdr *tcp;
	__u32 size;
	int syn; // a SYN without ACK: read where the header's bounds are known

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	__u32 key = CONFIG_PORT;
	__u32 *port = bpf_map_lookup_elem(&config, &key);
	if (!port)
		return XDP_PASS;
	key = CONFIG_LISTS;
	__u32 *gen = bpf_map_lookup_elem(&config, &key);
	key = CONFIG_MODE;
	__u32 *mode = bpf_map_lookup_elem(&config, &key);
	key = CONFIG_PROVEN;
	__u32 *proven = bpf_map_lookup_elem(&config, &key);
	if (!gen || !mode || !proven)
		return XDP_PASS;
	struct flow f = {};
	__u8 *listed;
	__u64 *seen = 0; // the source's last proof, if proven clients go first

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl < 5)
			return XDP_PASS;
		if (ip->frag_off & bpf_htons(0x3fff)) // a fragment: the stack reassembles it
			return XDP_PASS;
		tcp = (void *)ip + ip->ihl * 4;
		if ((void *)(tcp + 1) > end || tcp->dest != (__u16)*port)
			return XDP_PASS;
		struct lpm4 k = {.prefixlen = 32, .addr = ip->daddr};
		if (!bpf_map_lookup_elem(&local4, &k)) {
			count(COUNT_NOT_LOCAL);
			return XDP_PASS;
		}
		struct lpm4 src = {.prefixlen = 32, .addr = ip->saddr};
		listed = *gen ? bpf_map_lookup_elem(&lists4_1, &src) : bpf_map_lookup_elem(&lists4_0, &src);
		if (*proven) {
			__u32 s4 = ip->saddr;
			seen = bpf_map_lookup_elem(&proven4, &s4);
		}
		syn = tcp->syn && !tcp->ack;
		f.family = 4;
		t.ipv4.saddr = ip->saddr;
		t.ipv4.daddr = ip->daddr;
		t.ipv4.sport = tcp->source;
		t.ipv4.dport = tcp->dest;
		size = sizeof(t.ipv4);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		// Extension headers are the stack's: the driver's nft rules
		// stand behind it.
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return XDP_PASS;
		tcp = (void *)(ip6 + 1);
		if ((void *)(tcp + 1) > end || tcp->dest != (__u16)*port)
			return XDP_PASS;
		struct lpm6 k = {.prefixlen = 128};
		__builtin_memcpy(k.addr, ip6->daddr.in6_u.u6_addr32, 16);
		if (!bpf_map_lookup_elem(&local6, &k)) {
			count(COUNT_NOT_LOCAL);
			return XDP_PASS;
		}
		struct lpm6 src = {.prefixlen = 128};
		__builtin_memcpy(src.addr, ip6->saddr.in6_u.u6_addr32, 16);
		listed = *gen ? bpf_map_lookup_elem(&lists6_1, &src) : bpf_map_lookup_elem(&lists6_0, &src);
		if (*proven) {
			struct src6 s6;
			__builtin_memcpy(s6.addr, ip6->saddr.in6_u.u6_addr32, 16);
			seen = bpf_map_lookup_elem(&proven6, &s6);
		}
		syn = tcp->syn && !tcp->ack;
		f.family = 6;
		__builtin_memcpy(t.ipv6.saddr, ip6->saddr.in6_u.u6_addr32, 16);
		__builtin_memcpy(t.ipv6.daddr, ip6->daddr.in6_u.u6_addr32, 16);
		t.ipv6.sport = tcp->source;
		t.ipv6.dport = tcp->dest;
		size = sizeof(t.ipv6);
	} else {
		return XDP_PASS;
	}

	// A denied source is dropped before anything else; an allowed one
	// goes to the stack, where the nft rules count it and send it to the
	// service.
	if (listed) {
		if (*listed == LIST_DENY) {
			count(COUNT_DENIED);
			return XDP_DROP;
		}
		count(COUNT_ALLOWED);
		return XDP_PASS;
	}

	barrier_var(syn);
	if (syn)
		count(COUNT_SYN);
	// On demand: a SYN passes to the service's listener until the daemon
	// engages the cookies, and the rest of its connection follows it.
	__u32 m = *mode;
	if (m & MODE_ON_DEMAND) {
		__builtin_memcpy(&f.t, &t, sizeof(t));
		if (syn && !(m & MODE_ENGAGED)) {
			__u8 one = 1;
			bpf_map_update_elem(&passed, &f, &one, BPF_ANY);
			count(COUNT_SYN_PASSED);
			return XDP_PASS;
		}
		if (syn) {
			bpf_map_delete_elem(&passed, &f); // a new connection, the engine's
		} else if (bpf_map_lookup_elem(&passed, &f)) {
			count(COUNT_FLOW_PASSED);
			return XDP_PASS;
		}
	}

	// A proven source's proof is fresh while younger than the timeout;
	// the segments of its live connections refresh it, at most every
	// quarter of the timeout (and every second), so the timeout runs from
	// its last packet without a write per packet.
	// (The driver's clock is the same, CLOCK_MONOTONIC: a proof written
	// a moment ago may look younger than zero.)
	__u64 now = 0;
	__s64 age = 0, timeout = (__s64)*proven * 1000000;
	if (seen) {
		now = bpf_ktime_get_ns();
		age = (__s64)(now - *seen);
	}

	// A SYN opens a connection: it is the engine's whatever the tuple
	// held before (the nft rules drop every SYN the stack would get).
	if (!syn && owned(ctx, &t, size)) {
		if (seen) {
			__s64 every = timeout >> 2;
			if (every > 1000000000LL)
				every = 1000000000LL;
			if (age > every)
				*seen = now;
		}
		count(COUNT_SOCKET);
		return XDP_PASS;
	}
	count(COUNT_REDIRECTED);
	// A proven source's segments go to the queue's second socket, whose
	// ring the flood does not fill; without one, to the first.
	if (seen && age < timeout) {
		if (bpf_redirect_map(&proven_xsks, ctx->rx_queue_index, XDP_ABORTED) == XDP_REDIRECT) {
			count(COUNT_PROVEN);
			return XDP_REDIRECT;
		}
	}
	// No socket for the queue: the stack has it (and the nft rules drop
	// it).
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}
