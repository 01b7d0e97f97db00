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

// config[0] is the protected port, in network byte order.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

// counters, per CPU: what the program did (see the COUNT_ indices).
enum {
	COUNT_REDIRECTED,
	COUNT_SOCKET,
	COUNT_NOT_LOCAL,
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
	__u32 key = 0;
	__u32 *port = bpf_map_lookup_elem(&config, &key);
	if (!port)
		return XDP_PASS;

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
		syn = tcp->syn && !tcp->ack;
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
		syn = tcp->syn && !tcp->ack;
		__builtin_memcpy(t.ipv6.saddr, ip6->saddr.in6_u.u6_addr32, 16);
		__builtin_memcpy(t.ipv6.daddr, ip6->daddr.in6_u.u6_addr32, 16);
		t.ipv6.sport = tcp->source;
		t.ipv6.dport = tcp->dest;
		size = sizeof(t.ipv6);
	} else {
		return XDP_PASS;
	}

	// A SYN opens a connection: it is the engine's whatever the tuple
	// held before (the nft rules drop every SYN the stack would get).
	barrier_var(syn);
	if (!syn && owned(ctx, &t, size)) {
		count(COUNT_SOCKET);
		return XDP_PASS;
	}
	count(COUNT_REDIRECTED);
	// No socket for the queue: the stack has it (and the nft rules drop
	// it).
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}
