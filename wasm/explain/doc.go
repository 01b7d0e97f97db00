// Package explain computes everything the browser explainer shows, with the
// real cookie package: the packets of a SYNPROXY handshake, each term of the
// cookie as a 32-bit row, the check that decodes it, the timestamp-option
// bits, forging experiments, a SYN-flood simulation and a table of common
// claims checked against the computation.
//
// It is an ordinary Go package, tested natively; the WebAssembly build
// (package main in the parent directory) only passes its results to the page.
// Results are plain structs with JSON tags, so the page receives them as
// JavaScript objects.
//
// The handshake follows netfilter SYNPROXY with the rule
//
//	synproxy mss 1460 wscale 7 timestamp sack-perm
//
// as Linux 6.1 builds it (net/netfilter/nf_synproxy_core.c): a SYN-ACK with
// window 0 whose sequence number is the cookie, the client's ACK checked by
// decoding ack-1, then a SYN to the server that relays the decoded options.
package explain
