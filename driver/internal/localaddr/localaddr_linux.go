package localaddr

import (
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver"
)

// Watch keeps a Set current: it dumps the routing tables
// once, then again after every change of a route or an address the kernel
// announces. Between a change and the next dump (well under a millisecond
// on an idle host) a packet to a new address is taken for forwarded
// traffic.
type Watch struct {
	cur    atomic.Pointer[Set]
	dumpFd int      // for the dumps
	events *os.File // subscribed to route and address changes
	seq    uint32
	buf    []byte
	done   chan struct{}
	// changed, if not nil, is called with each new snapshot (from the
	// watch's goroutine), and once with the first from New.
	changed func(*Set)
}

// New opens a watch in the calling thread's network namespace. changed
// may be nil.
func New(changed func(*Set)) (w *Watch, err error) {
	w = &Watch{dumpFd: -1, buf: make([]byte, 256<<10), done: make(chan struct{}), changed: changed}
	defer func() {
		if err != nil {
			if w.events != nil {
				w.events.Close()
			}
			if w.dumpFd >= 0 {
				unix.Close(w.dumpFd)
			}
		}
	}()
	// Subscribe first, so that no change between the dump and the
	// subscription goes unseen.
	ev, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, driver.NewOpError("open rtnetlink socket", err)
	}
	w.events = os.NewFile(uintptr(ev), "rtnetlink")
	groups := uint32(unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR)
	if err := unix.Bind(ev, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		return nil, driver.NewOpError("subscribe to route changes", err)
	}
	if w.dumpFd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE); err != nil {
		return nil, driver.NewOpError("open rtnetlink socket", err)
	}
	if err := unix.Bind(w.dumpFd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, driver.NewOpError("bind rtnetlink socket", err)
	}
	l, err := w.load()
	if err != nil {
		return nil, driver.NewOpError("list local routes", err)
	}
	w.cur.Store(l)
	if w.changed != nil {
		w.changed(l)
	}
	go w.run()
	return w, nil
}

// run reloads the snapshot after each burst of change notifications, until
// close.
func (w *Watch) run() {
	defer close(w.done)
	rc, err := w.events.SyscallConn()
	if err != nil {
		return
	}
	msg := make([]byte, 64<<10)
	for {
		got := false
		err := rc.Read(func(fd uintptr) bool {
			for {
				_, _, err := unix.Recvfrom(int(fd), msg, 0)
				switch err {
				case unix.EAGAIN:
					return got // false: wait until readable
				case unix.EINTR:
					continue
				}
				// A notification, or ENOBUFS: some were lost, and the
				// dump will see what they said.
				got = true
			}
		})
		if err != nil {
			return // closed
		}
		if l, err := w.load(); err == nil {
			w.cur.Store(l)
			if w.changed != nil {
				w.changed(l)
			}
		}
	}
}

// Load returns the latest snapshot. It allocates nothing.
func (w *Watch) Load() *Set { return w.cur.Load() }

// Close stops the watch.
func (w *Watch) Close() {
	w.events.Close()
	<-w.done
	unix.Close(w.dumpFd)
}

// load dumps the routes of every table and keeps those of type local.
func (w *Watch) load() (*Set, error) {
	w.seq++
	var req struct {
		h unix.NlMsghdr
		r unix.RtMsg
	}
	req.h = unix.NlMsghdr{Len: uint32(unsafe.Sizeof(req)), Type: unix.RTM_GETROUTE,
		Flags: unix.NLM_F_REQUEST | unix.NLM_F_DUMP, Seq: w.seq}
	req.r.Family = unix.AF_UNSPEC
	b := unsafe.Slice((*byte)(unsafe.Pointer(&req)), unsafe.Sizeof(req))
	if err := unix.Sendto(w.dumpFd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	l := &Set{Addrs: map[netip.Addr]struct{}{}}
	for {
		n, _, err := unix.Recvfrom(w.dumpFd, w.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		msgs, err := syscall.ParseNetlinkMessage(w.buf[:n])
		if err != nil {
			return nil, err
		}
		for i := range msgs {
			m := &msgs[i]
			if m.Header.Seq != w.seq {
				continue // the answer to an earlier dump cut short
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return l, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := *(*int32)(unsafe.Pointer(&m.Data[0])); e != 0 {
						return nil, unix.Errno(-e)
					}
				}
				return nil, ErrDump
			case unix.RTM_NEWROUTE:
				l.addRoute(m)
			}
		}
	}
}

func (l *Set) addRoute(m *syscall.NetlinkMessage) {
	if len(m.Data) < unix.SizeofRtMsg {
		return
	}
	rt := (*unix.RtMsg)(unsafe.Pointer(&m.Data[0]))
	if rt.Type != unix.RTN_LOCAL {
		return
	}
	attrs, err := syscall.ParseNetlinkRouteAttr(m)
	if err != nil {
		return
	}
	var a netip.Addr
	switch rt.Family {
	case unix.AF_INET:
		a = netip.IPv4Unspecified()
	case unix.AF_INET6:
		a = netip.IPv6Unspecified()
	default:
		return
	}
	for _, at := range attrs {
		if at.Attr.Type == unix.RTA_DST {
			if v, ok := netip.AddrFromSlice(at.Value); ok && v.BitLen() == a.BitLen() {
				a = v
			}
		}
	}
	p, err := a.Prefix(int(rt.Dst_len))
	if err != nil {
		return
	}
	if p.IsSingleIP() {
		l.Addrs[a] = struct{}{}
	} else {
		l.Nets = append(l.Nets, p)
	}
}
