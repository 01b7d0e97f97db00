package rawsock

import (
	"errors"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// Batch is the scratch of sendmmsg(2) calls: up to Cap messages of one
// buffer each. The buffers are referenced, not copied: they must stay
// untouched until Send returns. A Batch is not safe for concurrent use.
type Batch struct {
	msgs []mmsghdr
	iovs []unix.Iovec
	sa4  []unix.RawSockaddrInet4
	sa6  []unix.RawSockaddrInet6
	n    int
}

// NewBatch returns a batch of room for n messages.
func NewBatch(n int) *Batch {
	return &Batch{msgs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n),
		sa4: make([]unix.RawSockaddrInet4, n), sa6: make([]unix.RawSockaddrInet6, n)}
}

// Len returns the number of messages queued.
func (b *Batch) Len() int { return b.n }

// Cap returns the number of messages the batch has room for.
func (b *Batch) Cap() int { return len(b.msgs) }

// Reset forgets the queued messages.
func (b *Batch) Reset() { b.n = 0 }

// Add queues p with no destination address, for a socket that has one (an
// AF_PACKET socket bound to an interface, a connected socket). It reports
// false, queueing nothing, when the batch is full or p is empty.
func (b *Batch) Add(p []byte) bool {
	if b.n == len(b.msgs) || len(p) == 0 {
		return false
	}
	b.add(p)
	b.n++
	return true
}

func (b *Batch) add(p []byte) *mmsghdr {
	i := b.n
	h := &b.msgs[i]
	*h = mmsghdr{}
	b.iovs[i] = unix.Iovec{Base: &p[0]}
	b.iovs[i].SetLen(len(p))
	h.hdr.Iov = &b.iovs[i]
	h.hdr.SetIovlen(1)
	return h
}

// AddIP queues the IPv4 or IPv6 packet p to the destination address of its
// header, for a raw IP socket of its family. It reports false, queueing
// nothing, when the batch is full or p is shorter than its fixed header.
func (b *Batch) AddIP(p []byte) bool {
	if b.n == len(b.msgs) || len(p) < 20 {
		return false
	}
	switch p[0] >> 4 {
	case 4:
		sa := &b.sa4[b.n]
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET}
		copy(sa.Addr[:], p[16:20])
		h := b.add(p)
		h.hdr.Name = (*byte)(unsafe.Pointer(sa))
		h.hdr.Namelen = unix.SizeofSockaddrInet4
	case 6:
		if len(p) < 40 {
			return false
		}
		sa := &b.sa6[b.n]
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6}
		copy(sa.Addr[:], p[24:40])
		h := b.add(p)
		h.hdr.Name = (*byte)(unsafe.Pointer(sa))
		h.hdr.Namelen = unix.SizeofSockaddrInet6
	default:
		return false
	}
	b.n++
	return true
}

// Send sends the queued messages on fd with as few sendmmsg(2) calls as the
// kernel allows and resets the batch. A call the kernel interrupted
// (EINTR, EAGAIN) is made again; a message it refused (no route, a full
// device queue) is counted in failed and skipped, and the first such error
// is returned. sent+failed is the number of messages queued.
func (b *Batch) Send(fd int) (sent, failed int, err error) {
	m := b.n
	b.n = 0
	for off := 0; off < m; {
		r, _, errno := syscall.Syscall6(unix.SYS_SENDMMSG, uintptr(fd),
			uintptr(unsafe.Pointer(&b.msgs[off])), uintptr(m-off), 0, 0, 0)
		if errno == unix.EINTR || errno == unix.EAGAIN {
			continue
		}
		if errno != 0 {
			if err == nil {
				err = errno
			}
			failed++
			off++
			continue
		}
		sent += int(r)
		off += int(r)
	}
	return sent, failed, err
}

// IP is a pair of raw IP sockets (IPPROTO_RAW: the packets carry their own
// header) with a Batch each: Add queues a packet on the batch of its
// family, Flush sends both. It is not safe for concurrent use; Close must
// not run under a Flush.
type IP struct {
	fd4, fd6 int
	b4, b6   *Batch
}

// OpenIP opens the raw sockets, each with a batch of n messages; sndbuf,
// when above 0, sets their SO_SNDBUF. It needs CAP_NET_RAW; the error is a
// *driver.OpError naming the socket that could not be opened.
func OpenIP(n, sndbuf int) (*IP, error) {
	s := &IP{fd4: -1, fd6: -1, b4: NewBatch(n), b6: NewBatch(n)}
	var err error
	if s.fd4, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
		return nil, driver.NewOpError("open raw IPv4 socket", err)
	}
	if s.fd6, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
		s.Close()
		return nil, driver.NewOpError("open raw IPv6 socket", err)
	}
	// IPPROTO_RAW implies IP_HDRINCL; say so explicitly for IPv6.
	_ = unix.SetsockoptInt(s.fd6, unix.IPPROTO_IPV6, unix.IPV6_HDRINCL, 1)
	if sndbuf > 0 {
		for _, fd := range []int{s.fd4, s.fd6} {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndbuf)
		}
	}
	return s, nil
}

// Add queues the IPv4 or IPv6 packet p (see Batch.AddIP).
func (s *IP) Add(p []byte) bool {
	if len(p) > 0 && p[0]>>4 == 6 {
		return s.b6.AddIP(p)
	}
	return s.b4.AddIP(p)
}

// Len returns the number of packets queued.
func (s *IP) Len() int { return s.b4.Len() + s.b6.Len() }

// Flush sends the queued packets, IPv4 first, as Batch.Send does.
func (s *IP) Flush() (sent, failed int, err error) {
	s4, f4, err4 := s.b4.Send(s.fd4)
	s6, f6, err6 := s.b6.Send(s.fd6)
	if err4 == nil {
		err4 = err6
	}
	return s4 + s6, f4 + f6, err4
}

// Close closes the sockets; it may be called more than once.
func (s *IP) Close() error {
	var errs []error
	for _, fd := range []*int{&s.fd4, &s.fd6} {
		if *fd >= 0 {
			errs = append(errs, unix.Close(*fd))
			*fd = -1
		}
	}
	s.b4.Reset()
	s.b6.Reset()
	return errors.Join(errs...)
}
