// Package localaddr follows the host's local addresses: a Watch dumps the
// routes of type local of every routing table (rtnetlink), then dumps them
// again after every change of a route or an address the kernel announces,
// and keeps the latest Set, which answers Has without allocating.
//
// driver/afpacket asks the Set whether a frame is for this host;
// driver/afxdp copies each new Set into its XDP program's maps through the
// Watch's change callback.
//
// The watch exists on Linux only: elsewhere New returns ErrNotSupported.
package localaddr
