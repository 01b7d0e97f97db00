// Package netlab builds the small network the parity harnesses need, with
// nothing but NETLINK_ROUTE and NETLINK_NETFILTER (a kernel under test may
// lack other netlink families): anonymous network namespaces held by file
// descriptor, veth pairs, addresses, routes, sysctls, the synproxy ruleset
// and raw AF_PACKET sockets.
package netlab
