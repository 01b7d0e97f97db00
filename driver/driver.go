package driver

import (
	"errors"
	"fmt"
	"syscall"
)

// Verdict says what happens to a received packet when its batch is released.
type Verdict uint8

const (
	// VerdictDrop consumes the packet: the kernel stack never sees it.
	VerdictDrop Verdict = iota
	// VerdictAccept gives the packet back to the kernel stack unchanged.
	VerdictAccept
)

func (v Verdict) String() string {
	switch v {
	case VerdictDrop:
		return "drop"
	case VerdictAccept:
		return "accept"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Link says what precedes the IP header of a packet: the link type of a
// queue. Its values are those of packet.LinkType, value for value.
type Link uint8

const (
	// LinkIP: the packet starts with its IPv4 or IPv6 header (a netfilter
	// queue, a raw IP socket). packet.LinkIP.
	LinkIP Link = iota
	// LinkEthernet: the packet is an Ethernet II frame (AF_PACKET).
	// packet.LinkEthernet.
	LinkEthernet
)

func (l Link) String() string {
	switch l {
	case LinkIP:
		return "ip"
	case LinkEthernet:
		return "ethernet"
	}
	return fmt.Sprintf("link(%d)", uint8(l))
}

// Packet is a receive descriptor. The caller allocates a slice of them once
// (BatchSize long) and reuses it for every batch.
type Packet struct {
	// Data is the packet, starting with the link header Link names, set by
	// ReadBatch. See the package documentation for how long it stays
	// valid.
	Data []byte
	// Link is the link type of Data, set by ReadBatch.
	Link Link
	// Verdict is set by the caller before Release. ReadBatch resets it to
	// VerdictDrop.
	Verdict Verdict
	// ID is private to the driver (the nfqueue packet id, a ring frame index).
	ID uint64
}

// Queue is one receive/transmit queue, served by one worker goroutine.
// Its methods are not safe for concurrent use, except Close.
type Queue interface {
	// ReadBatch fills pkts with up to len(pkts) packets and returns how many.
	// It blocks until at least one packet is available or the queue is
	// closed, when it returns ErrClosed.
	ReadBatch(pkts []Packet) (int, error)
	// Release applies the verdicts of pkts (the descriptors of the last
	// ReadBatch) and returns their buffers to the driver.
	Release(pkts []Packet) error
	// WriteBatch transmits new packets (such as SYN-ACKs), in the link
	// format ReadBatch delivers (see the package documentation), and
	// returns how many were sent.
	WriteBatch(bufs [][]byte) (int, error)
	// BatchSize is the largest batch ReadBatch fills and WriteBatch takes
	// in one call.
	BatchSize() int
	// Close unblocks ReadBatch and releases the queue's resources. It may
	// be called from any goroutine, more than once.
	Close() error
}

// Waker is implemented by queues whose ReadBatch can be woken without a
// packet: after Wake, a blocked (or the next) ReadBatch returns 0, nil. The
// engine uses it to run its timers (SYN-ACK re-sends) on idle queues. Wake
// may be called from any goroutine.
type Waker interface {
	Wake()
}

// Driver is a packet I/O backend: a set of queues.
type Driver interface {
	// Name is the driver's name as given to --driver.
	Name() string
	// Queues returns the driver's queues; the engine runs one worker per
	// queue.
	Queues() []Queue
	// Stats returns driver-level counters (kernel drops, buffer overruns).
	Stats() DriverStats
	// Close closes every queue.
	Close() error
}

// DriverStats are counters a driver keeps about its own I/O.
type DriverStats struct {
	// Overruns counts receive buffer overruns (ENOBUFS on a netlink
	// socket): packets the kernel could not deliver to userspace.
	Overruns uint64
	// TxErrors counts packets the driver failed to transmit.
	TxErrors uint64
	// RxErrors counts errors read from receive sockets, such as ENETDOWN
	// after the interface went down.
	RxErrors uint64
	// IdleWakeups counts the times a worker woke up with nothing to read
	// and no wake-up asked for (a socket error, a spurious wake-up). A
	// count growing by thousands a second is a worker spinning.
	IdleWakeups uint64
	// Skipped counts received frames the driver did not hand to the
	// engine, by reason. The kernel stack still gets them.
	Skipped SkipStats
}

// SkipStats are the frames a driver received and did not hand to the
// engine, by reason.
type SkipStats struct {
	// NotHost: frames not addressed to this host at the link layer (another
	// host's, seen in promiscuous mode; broadcast; multicast).
	NotHost uint64
	// NotLocal: frames whose destination address is not a local address of
	// the host (traffic it routes to others).
	NotLocal uint64
	// VLAN: tagged frames the driver could not hand over with their tags.
	VLAN uint64
	// Truncated: frames cut short by the ring or shorter than their
	// headers.
	Truncated uint64
	// NotIP: frames that are neither IPv4 nor IPv6.
	NotIP uint64
}

var (
	// ErrClosed is returned by ReadBatch once the queue is closed.
	ErrClosed = errors.New("driver: queue closed")
	// ErrNotSupported is returned on systems without the kernel interfaces
	// a driver needs.
	ErrNotSupported = errors.New("driver: not supported on this system")
)

// OpError is an error of a system operation, with the operation named.
type OpError struct {
	// Op names the operation, e.g. "open nfqueue 3" or "add nft table".
	Op string
	// Err is the underlying error.
	Err error
}

func (e *OpError) Error() string {
	if errors.Is(e.Err, syscall.EPERM) || errors.Is(e.Err, syscall.EACCES) {
		return "driver: " + e.Op + ": " + e.Err.Error() + " (needs CAP_NET_ADMIN and CAP_NET_RAW)"
	}
	return "driver: " + e.Op + ": " + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }

// NewOpError wraps err as an *OpError for op; nil stays nil.
func NewOpError(op string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Err: err}
}
