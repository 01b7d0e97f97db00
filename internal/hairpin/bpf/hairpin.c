// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0-only)
//
// The benchmark's ceiling: an XDP program that sends every IPv4 TCP SYN
// from a source prefix to a port back where it came from (XDP_TX) with the
// Ethernet and IP addresses and the ports swapped. No cookie, no copy, no
// checksum to compute (a swap leaves the sums as they are): the fastest any
// responder can reflect a SYN on the path it runs on. Everything else
// passes. Rebuild with `go generate ./internal/hairpin`.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual Apache/GPL";

struct match {
	__u32 net;  // source network, network byte order
	__u32 mask; // its mask, network byte order
	__u32 port; // destination port, network byte order in the low 16 bits
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct match);
} config SEC(".maps");

SEC("xdp")
int hairpin(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 key = 0;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct match *m = bpf_map_lookup_elem(&config, &key);
	if (!m)
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->ihl != 5 || ip->protocol != IPPROTO_TCP)
		return XDP_PASS;
	struct tcphdr *tcp = (void *)(ip + 1);
	if ((void *)(tcp + 1) > end || tcp->dest != (__u16)m->port || (ip->saddr & m->mask) != m->net)
		return XDP_PASS;
	if (!tcp->syn || tcp->ack)
		return XDP_PASS;

	unsigned char mac[ETH_ALEN];
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	__u32 a = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = a;
	__u16 p = tcp->source;
	tcp->source = tcp->dest;
	tcp->dest = p;
	return XDP_TX;
}
