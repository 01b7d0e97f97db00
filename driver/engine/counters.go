package engine

import (
	"errors"
	"sync/atomic"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// Counters are the engine's counters: atomics, read at any time from any
// goroutine (driver/metrics exports them to Prometheus at scrape time). The
// names in the comments are those of the kernel's /proc/net/stat/synproxy
// where one exists.
type Counters struct {
	Packets       atomic.Uint64 // every packet the engine looked at
	SYNReceived   atomic.Uint64 // syn_received
	SYNACKSent    atomic.Uint64 // cookie SYN-ACKs transmitted
	SYNACKResent  atomic.Uint64 // SYN-ACKs sent again while their ACK was missing
	WindowUpdates atomic.Uint64 // window-opening ACKs sent to handed-over clients
	CookieValid   atomic.Uint64 // cookie_valid
	CookieInvalid atomic.Uint64 // cookie_invalid (sum of the three below)
	CookieRetrans atomic.Uint64 // cookie_retrans: segments of a just-handed-over connection, or of one whose socket exists
	Established   atomic.Uint64 // segments of connections handed over earlier (never checked as cookies)
	Strays        atomic.Uint64 // FIN segments of connections the engine does not know (never a handshake): dropped
	ConnReopened  atomic.Uint64 // conn_reopened: a SYN on the tuple of a connection handed over before
	HandedOver    atomic.Uint64 // connections handed over
	HandoffFailed atomic.Uint64
	// HandoffRefused counts the handshakes the handoff refused at one of
	// its limits (handoff.ErrRefused): no socket was made, the ACK was
	// dropped, and the client's retransmission is checked again. By
	// reason below; RefusedOther is a refusal of another Handoff.
	HandoffRefused   atomic.Uint64
	RefusedMaxConns  atomic.Uint64
	RefusedPerSource atomic.Uint64
	RefusedDials     atomic.Uint64
	RefusedOther     atomic.Uint64
	Passed           atomic.Uint64 // given back to the kernel (resets, strays)
	TxErrors         atomic.Uint64

	InvalidStale     atomic.Uint64 // cookie older than two slots or from the future
	InvalidHash      atomic.Uint64 // MSS index >= 4: forged or mismatched
	InvalidMalformed atomic.Uint64 // tuple the cookie code refused

	Malformed         atomic.Uint64 // sum of the malformed reasons below
	MalformedTrunc    atomic.Uint64
	MalformedHeader   atomic.Uint64
	MalformedChecksum atomic.Uint64
	MalformedOptions  atomic.Uint64
	MalformedFlags    atomic.Uint64
	MalformedNotTCP   atomic.Uint64
}

func (c *Counters) countMalformed(r parseErr) {
	c.Malformed.Add(1)
	switch r {
	case parseTruncated:
		c.MalformedTrunc.Add(1)
	case parseChecksum:
		c.MalformedChecksum.Add(1)
	case parseBadOptions:
		c.MalformedOptions.Add(1)
	case parseNotTCP, parseFragment:
		c.MalformedNotTCP.Add(1)
	default:
		c.MalformedHeader.Add(1)
	}
}

// countRefused counts a refused handoff by its reason.
func (c *Counters) countRefused(err error) {
	c.HandoffRefused.Add(1)
	switch {
	case errors.Is(err, handoff.ErrMaxConns):
		c.RefusedMaxConns.Add(1)
	case errors.Is(err, handoff.ErrPerSource):
		c.RefusedPerSource.Add(1)
	case errors.Is(err, handoff.ErrMaxDials):
		c.RefusedDials.Add(1)
	default:
		c.RefusedOther.Add(1)
	}
}
