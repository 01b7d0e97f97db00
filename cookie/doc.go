// Package cookie implements Linux TCP SYN cookies bit for bit, as the kernel's
// netfilter SYNPROXY (nftables "synproxy", iptables "SYNPROXY"), its TCP stack
// and its BPF cookie helpers compute them (Linux 4.11 and later, SipHash era),
// plus the timestamp-option bits that carry window scale, SACK and ECN, key
// rotation and fleet-wide keys.
//
// # The cookie
//
// A SYN cookie is the initial sequence number (ISN) of the SYN-ACK. It is made
// from two SipHash-2-4 values keyed by the two 16-byte halves of a 32-byte
// secret (laid out exactly as the kernel's syncookie_secret lies in memory):
//
//	h0 = low32(SipHash(key[0:16],  tuple, count = 0))   time-independent
//	h1 = low32(SipHash(key[16:32], tuple, count))       changes every slot
//
//	ISN = h0 + sseq + (count mod 256) << 24 + ((h1 + idx) mod 2^24)   (mod 2^32)
//
// where sseq is the client's ISN, count is the time slot (one every 60 s) and
// idx the 2-bit index of the client's MSS in a 4-entry table. Once h0 and sseq
// are subtracted, the 32 bits read:
//
//	 31            24 23                                             0
//	+----------------+------------------------------------------------+
//	| count mod 256  |            (h1 + idx) mod 2^24                 |
//	+----------------+------------------------------------------------+
//
// # The check
//
// The client's ACK carries cookie+1 in its acknowledgment number and sseq+1 in
// its sequence number. The checker recovers the slot's low byte from the top 8
// bits, accepts an age of 0 or 1 slot (so a cookie lives between 60 and 120
// seconds), recomputes h1 for that slot and accepts the MSS index only if it is
// below 4. A random 32-bit value therefore passes with probability
// (2/256)·(4/2^24) = 2^-29 per try; with two keys in a rotation overlap it is
// at most twice that, 2^-28.
//
// # Hash input
//
// IPv4 hashes 16 bytes: client address, server address (wire bytes), server
// port, client port (wire bytes: the kernel's little-endian load of the port
// word swaps them), count as little-endian u32. IPv6 hashes 40 bytes: client
// address, server address, count (LE32), client port, server port. The full
// 32-bit count is hashed; only its low byte is visible in the cookie.
//
// # Two tiers
//
// [Key.Encode] and [Key.Check] are pure: the caller passes the time slot, which
// makes them exact for parity tests against a kernel (whose slot is jiffies_64 /
// (60·HZ), see [KernelSlot]). [Ring] holds keys, an injected clock and a
// rotation policy, and uses wall-clock minutes ([WallSlot]) so that proxies with
// synchronised clocks agree.
//
// Encode and Check allocate nothing.
//
// # WebAssembly
//
// Built for js/wasm (the browser explainer), the package is the codec only:
// [Ring], [FleetSecret], [DefaultGrace], [WallSlot] and [SlotPeriod] need
// package time and HKDF-SHA256, which would add about half a megabyte to the
// binary, and are left out; [GenerateKey] reads the browser's
// crypto.getRandomValues (the source crypto/rand uses there) without
// crypto/rand, which links math/big and fmt.
//
// The specification this package follows is the kernel's own code:
// net/ipv4/syncookies.c, net/ipv6/syncookies.c and net/netfilter/nf_synproxy_core.c.
// The package assumes a little-endian kernel (x86-64, arm64), which is what the
// kernel parity tests run against.
package cookie
