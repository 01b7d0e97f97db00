// Package hairpin is the benchmark's ceiling: an XDP program that reflects
// the IPv4 TCP SYNs of a source prefix to a port back to their sender
// (XDP_TX), with the Ethernet and IP addresses and the ports swapped. It
// computes no cookie and copies nothing, so its rate is the fastest any
// responder can reflect a SYN on the path it runs on; the benchmark shows
// every row as a ratio to it.
package hairpin
