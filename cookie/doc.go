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
// # The full profile
//
// The layout above is the Linux profile ([ProfileLinux]). It keeps only a
// 2-bit MSS index in the ISN; window scale, SACK and ECN ride in the
// timestamp, so a client that sends no timestamps loses window scaling and
// SACK for the whole connection (a 64 KB window: about 13 Mbit/s on a 40 ms
// path). [ProfileFull], "full" because every SYN option the handshake needs
// comes back in the ISN alone, keeps them for every client, at the cost of
// a shorter MAC. A proxy that makes the server socket itself (TCP_REPAIR)
// owns both ends and need not match the kernel's layout; FreeBSD (2013) and
// the BPF custom-cookie work for Linux made the same move.
//
//	 31                                         11 10  9  8  7  6      3 2    0
//	+---------------------------------------------+--+--+--+--+--------+------+
//	|                 MAC (21 bits)               |  fields, XOR MAC bits 20..10 |
//	+---------------------------------------------+--+--+--+--+--------+------+
//	                                               |S |K |E |A | wscale | MSS  |
//
//	S      slot parity: count mod 2 (age 0 or 1 is read from it, no trial)
//	K      key bit: the parity of the key's epoch in a Ring (no trial key)
//	E      ECN
//	A      SACK-permitted
//	wscale the client's window-scale shift, 0..14 exactly; 15 = no option
//	MSS    index into an 8-entry table (FullMSSTable), rounded down
//
// The MAC is the low 21 bits of one SipHash-2-4, keyed by half 0 of the key,
// over the tuple, the client's ISN, the full 32-bit slot and the 11 field
// bits. The fields go out XORed with the MAC's top 11 bits, so the ISN shows
// no constant bits on the wire (reading them back needs no key). Bits 21..28
// of the same hash ride in the low 8 bits of the SYN-ACK's TSval when the
// client sends timestamps ([FullTSval]) and must come back in the ACK's
// TSecr: 29 MAC bits for those ACKs.
//
// Hash input: IPv4 24 bytes: client address, server address, client port,
// server port (wire bytes), client ISN (LE32), slot (LE32), fields (LE16),
// 'F', 4. IPv6 48 bytes: the same with 16-byte addresses and 6 last. The
// Linux profile never hashes messages of these lengths.
//
// Forgery odds per ACK (docs/cookie.md): every field value decodes to
// something valid, so 2^11 of the 2^32 cookies pass the MAC, 2^-21; a Ring
// holding one key refuses the other key bit, 2^-22 (2^-21 in a grace period,
// when both keys are held). With timestamps the TSecr adds 8 bits: 2^-30.
// The Linux profile's 2^-29 is 128 times smaller than the TS-less 2^-22.
//
// # Two tiers
//
// [Key.Encode] and [Key.Check] are pure: the caller passes the time slot, which
// makes them exact for parity tests against a kernel (whose slot is jiffies_64 /
// (60·HZ), see [KernelSlot]). [Ring] holds keys, an injected clock and a
// rotation policy, and uses wall-clock minutes ([WallSlot]) so that proxies with
// synchronised clocks agree.
//
// Encode and Check allocate nothing, nor do EncodeFull and CheckFull.
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
