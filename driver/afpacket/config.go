package afpacket

import (
	"log/slog"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// Config configures the driver. Interface and Port are required; the other
// fields have defaults.
type Config struct {
	// Interface is the name of the interface the driver receives on and
	// transmits from (the interface the protected address is reached
	// through; a bridge, not its ports).
	Interface string

	// Port is the protected TCP port: the receive filter lets only
	// segments to it into the rings.
	Port uint16

	// Workers is the number of sockets (queues) in the fanout group.
	// Zero means 1.
	Workers int

	// BatchSize is the largest burst. Zero means 64.
	BatchSize int

	// BlockSize is the size of a receive ring block in bytes, a multiple
	// of the page size that holds the largest packet (a GSO segment up to
	// 64 KiB). Zero means 256 KiB.
	BlockSize int

	// Blocks is the number of blocks in each worker's receive ring. Zero
	// means 16.
	Blocks int

	// BlockTimeout is how long the kernel fills a block before it hands
	// it over even when it is not full: the receive latency under light
	// load. The kernel rounds it up to a jiffy. Zero means 1ms.
	BlockTimeout time.Duration

	// TxFrames is the number of slots in each worker's transmit ring.
	// Zero means 512.
	TxFrames int

	// SendMMsg transmits with sendmmsg(2) instead of a transmit ring. It
	// is also used when the kernel refuses the ring.
	SendMMsg bool

	// Defrag sets PACKET_FANOUT_FLAG_DEFRAG: the kernel reassembles IP
	// fragments before the fanout picks a socket.
	Defrag bool

	// FanoutCPU spreads packets by the receiving CPU instead of by flow
	// hash.
	FanoutCPU bool

	// FanoutGroup is the fanout group id. Zero derives one from the
	// process id and the number of drivers the process opened before,
	// so that each driver has a group of its own.
	FanoutGroup uint16

	// BusyPoll makes an empty ring spin (checking the next block's status)
	// instead of sleeping in poll(2): lower latency under load, one CPU
	// per worker burnt while idle.
	BusyPoll bool

	// Proven serves proven clients first: sources that completed a
	// handshake recently (Driver.Prove) are received on a socket and ring
	// of their own, which a flood from other sources cannot fill. Nil
	// means off.
	Proven *driver.Proven

	// Logger receives the driver's warnings (a receive socket error after
	// the interface went down), rate-limited, never one per packet. Nil
	// means slog.Default().
	Logger *slog.Logger
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
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 64
	}
	if o.BlockSize <= 0 {
		o.BlockSize = 256 << 10
	}
	if o.Blocks <= 0 {
		o.Blocks = 16
	}
	if o.BlockTimeout <= 0 {
		o.BlockTimeout = time.Millisecond
	}
	if o.TxFrames <= 0 {
		o.TxFrames = 512
	}
	return o
}
