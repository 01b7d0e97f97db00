package afxdp

import (
	"log/slog"
	"net/netip"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// Config configures the driver. Interface and Port are required; the other
// fields have defaults.
type Config struct {
	// Interface is the name of the interface the XDP program attaches to
	// and the sockets transmit from: the interface the protected address
	// is reached through.
	Interface string

	// Port is the protected TCP port: the XDP program sends only segments
	// to it (at a local address, of no existing socket) to the sockets.
	Port uint16

	// Queues is the number of receive queues served, from queue 0, one
	// AF_XDP socket (and one worker) each. Zero means every receive queue
	// of the interface. The program passes to the stack what arrives on a
	// queue without a socket; the nft rules drop its handshake packets.
	Queues int

	// BatchSize is the largest burst. Zero means 64.
	BatchSize int

	// Frames is the number of UMEM frames (2 KiB) of each socket, a power
	// of two of at least 8 times BatchSize: an eighth are transmit
	// buffers, the rest receive buffers (on the fill ring). Zero means
	// 8192 (16 MiB). The RX ring has a slot for each frame; with Proven,
	// half a slot (and the proven socket's ring a quarter), so that a
	// flood that fills its ring leaves receive buffers for the proven
	// sources.
	Frames int

	// Mode chooses how the program attaches: ModeAuto (native, else
	// generic), ModeNative or ModeGeneric.
	Mode Mode

	// BusyPoll makes an empty ring spin (with SO_PREFER_BUSY_POLL on the
	// sockets) instead of sleeping in poll(2): lower latency under load,
	// one CPU per worker burnt while idle.
	BusyPoll bool

	// Allow and Deny are the first allow and deny lists of the program
	// (Driver.SetLists replaces them): the packets to the port of an
	// allowed source pass to the stack, those of a denied one are
	// dropped.
	Allow, Deny []netip.Prefix

	// OnDemand lets the SYNs to the port pass to the stack (the service's
	// own listener, through the nft rules) until Driver.SetEngaged
	// engages the cookies; the segments of a connection whose SYN passed
	// keep passing.
	OnDemand bool

	// Proven turns proven clients first on (nil: off). The program keeps
	// the sources the driver proves (Driver.Prove: the engine handed over
	// a connection of theirs) in LRU maps, and sends their segments to a
	// second socket on each receive queue, sharing the first's UMEM,
	// whose RX ring the flood does not fill; ReadBatch drains it first.
	Proven *driver.Proven

	// Logger receives the driver's notices (the mode it attached in).
	// Nil means slog.Default().
	Logger *slog.Logger
}

// provenTimeoutMs is p's timeout in the program's unit, at least 1. The
// program keeps a proof for Timeout after the last proof or the last
// segment of a live connection of the source (to within a quarter of it,
// and a second).
func provenTimeoutMs(p *driver.Proven) uint32 {
	return uint32(max(min(p.TimeoutOrDefault().Milliseconds(), 1<<32-1), 1))
}

// Mode is how the XDP program attaches to the interface.
type Mode uint8

const (
	// ModeAuto tries native mode, then generic mode.
	ModeAuto Mode = iota
	// ModeNative runs the program in the driver, before an skb exists.
	ModeNative
	// ModeGeneric runs the program on the skb, after the driver: any
	// interface has it, at the cost of the allocation.
	ModeGeneric
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeNative:
		return "native"
	case ModeGeneric:
		return "generic"
	}
	return "mode(?)"
}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

func (c *Config) withDefaults() Config {
	var o Config
	if c != nil {
		o = *c
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 64
	}
	if o.Frames <= 0 {
		o.Frames = 8192
	}
	return o
}
