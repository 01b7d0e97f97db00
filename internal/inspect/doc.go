// Package inspect reads packet captures and reports the TCP handshakes in
// them with their SYN cookies decoded: what `synproxy-lite inspect` prints.
//
// Read takes a pcap or pcapng capture (Ethernet, raw IP, Linux cooked SLL
// and SLL2, or loopback link types) and files every TCP segment into its
// handshake: the client's SYN, the SYN-ACK and the client's ACK, with
// retransmissions counted. For each SYN-ACK the report gives:
//
//   - the timestamp cookie: the low 6 bits of its TSval decoded (window
//     scale, SACK, ECN) and compared with what the SYN offered;
//   - its shape: whether it is what the kernel's nftables synproxy sends
//     (packet.Packet.SynproxyShape), and if so the least rule that answers so;
//   - with Options.Key, its ISN checked as a cookie for the SYN
//     (cookie.Key.Trace).
//
// # The time slot
//
// A cookie is valid in the slot it was made in and the next. With
// Options.HasCheckSlot the check uses Options.CheckSlot. Without it the check
// recovers the slot's low 8 bits from the cookie and searches for a full
// slot with those bits whose hash gives a valid MSS index (the SYN's, when
// the SYN was captured): first near the capture's wall-clock time (Unix
// minutes, synproxy-lite's slots), then over kernel uptimes up to a year at
// HZ 250, 1000, 300 and 100 (a kernel's slots count from its boot). A match
// found that way is reported as inferred, with its chance of being a fluke.
//
// The report's words are those of `synproxy-lite cookie check --json` and
// of the metrics: a cookie's slot is the slot it was made in, its age how
// many slots later it is checked (check_slot), and a rejected cookie's
// reason is the reason label of synproxy_lite_cookie_invalid_total (stale,
// hash, tuple), or unknown-slot when no slot could be found.
//
// Malformed and truncated frames are reported and skipped; a capture that
// ends inside a record is reported up to there and Report.Err returns a
// *CaptureError. A panic of gopacket's capture readers on a malformed file
// is turned into an error. Report.WriteText and Report.WriteJSON render the
// report.
package inspect
