package driver

import (
	"net/netip"
	"time"
)

// Proven configures proven clients first on a driver that serves them
// itself (a tap driver's ring of their own): the driver remembers the
// sources it is told of (Prover.Prove, once per connection handed over)
// and receives their packets apart from the flood's.
type Proven struct {
	// Size is the most sources the driver remembers per family (IPv4,
	// IPv6); a full table forgets its least recently used source. Zero
	// means DefaultProvenSize.
	Size uint32
	// Timeout is how long a source stays proven after its last proof.
	// Zero means DefaultProvenTimeout.
	Timeout time.Duration
}

// Defaults of Proven (those of the nfqueue driver's nft sets too).
const (
	DefaultProvenSize    = 65536
	DefaultProvenTimeout = 10 * time.Minute
)

// SizeOrDefault is Size, or DefaultProvenSize when it is zero.
func (p *Proven) SizeOrDefault() uint32 {
	if p.Size == 0 {
		return DefaultProvenSize
	}
	return p.Size
}

// TimeoutOrDefault is Timeout, or DefaultProvenTimeout when it is not
// positive.
func (p *Proven) TimeoutOrDefault() time.Duration {
	if p.Timeout <= 0 {
		return DefaultProvenTimeout
	}
	return p.Timeout
}

// Prover is implemented by a driver that serves proven clients first
// itself (opened with a Proven configuration).
type Prover interface {
	// Prove marks src as proven now: the engine handed over a connection
	// from it. It is called once per connection, never per packet, from
	// the worker that handed it over.
	Prove(src netip.Addr)
	// ProvenPackets counts the packets of proven sources the driver took
	// on their own ring.
	ProvenPackets() uint64
	// ProvenOverruns counts the packets of proven sources the kernel
	// could not put on their ring.
	ProvenOverruns() uint64
}
