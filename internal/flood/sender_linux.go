package flood

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Sender sends a Generator's SYNs on a raw IPv4 socket (IPPROTO_RAW: the
// IP header is ours). The socket belongs to the network namespace of the
// thread that called NewSender (netlab's NS.Do).
type Sender struct {
	fd  int
	to  unix.SockaddrInet4
	gen *Generator
	buf []byte
}

// NewSender opens the raw socket for gen's SYNs, which must be IPv4.
func NewSender(gen *Generator) (*Sender, error) {
	dst := gen.seg.Dst.Addr()
	if !dst.Is4() {
		return nil, fmt.Errorf("%w: the sender is IPv4 only, not %v", ErrAddr, dst)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("flood: raw socket: %w", err)
	}
	return &Sender{fd: fd, to: unix.SockaddrInet4{Addr: dst.As4()}, gen: gen, buf: make([]byte, 0, 64)}, nil
}

// Close closes the socket.
func (s *Sender) Close() error {
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}

// Run sends count SYNs at rate per second, in 10 ms slices, until they are
// sent or ctx ends. It adds every SYN the kernel took to sent (a SYN the
// kernel refused is not retried).
func (s *Sender) Run(ctx context.Context, rate, count int, sent *atomic.Uint64) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	n := 0
	for n < count {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := min(int(int64(rate)*int64(time.Since(start))/int64(time.Second)), count)
		for ; n < due; n++ {
			s.buf = s.gen.Append(s.buf[:0])
			if err := unix.Sendto(s.fd, s.buf, 0, &s.to); err != nil {
				continue
			}
			sent.Add(1)
		}
	}
}
