// Package bgp is a minimal eBGP speaker that announces and withdraws a
// node's service addresses, and nothing else.
//
// It speaks the part of BGP-4 (RFC 4271) that an anycast node needs: it
// opens a session to each configured peer (OPEN with the multiprotocol
// capability of RFC 4760 for IPv4 and IPv6 unicast, the four-octet AS
// number of RFC 6793 and, if asked, the graceful restart capability of
// RFC 4724), keeps it alive with KEEPALIVEs under the negotiated hold
// time, and sends UPDATEs: IPv4 prefixes in the NLRI field with ORIGIN,
// AS_PATH, NEXT_HOP and COMMUNITIES (RFC 1997), IPv6 prefixes in
// MP_REACH_NLRI and MP_UNREACH_NLRI. It learns no routes: the UPDATEs a
// peer sends are parsed (so a malformed one ends the session, as the RFC
// wants) and dropped. It does not listen: it connects to its peers, and
// their own attempts to connect are refused, which BGP allows.
//
// A Speaker announces its prefixes while its readiness function says
// ready and withdraws them when it does not, or when Withdraw is called
// (a daemon that stops). Close ends the sessions with a NOTIFICATION
// (Cease), so the peers withdraw at once; Detach closes them without one,
// so a peer that was told of graceful restart keeps the routes for the
// restart time while a new process takes over.
//
// # Messages
//
// The encoders (AppendOpen, AppendUpdate, AppendKeepalive,
// AppendNotification) write into caller memory; the parser (ParseMessage,
// then ParseOpen, ParseUpdate or ParseNotification on the body) never
// panics on any input, which FuzzParse checks.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                           Marker (all ones)                   +
//	|                           16 octets                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Length               |      Type     |   body ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
package bgp
