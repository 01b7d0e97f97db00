package netlab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// rtnl is a NETLINK_ROUTE socket. A netlink socket belongs to the network
// namespace it was created in, so each NS keeps one, opened inside it, and
// programs its links, addresses and routes through it without setns.
type rtnl struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte
}

const (
	vethInfoPeer   = 1     // VETH_INFO_PEER
	nlmFAckTLVs    = 0x200 // NLM_F_ACK_TLVS
	nlmsgerrAttrMs = 1     // NLMSGERR_ATTR_MSG
)

func newRTNL() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Errors carry the kernel's text (extended ACK), without an echo of
	// the request.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &rtnl{fd: fd, buf: make([]byte, 1<<16)}, nil
}

func (r *rtnl) close() error { return unix.Close(r.fd) }

// msg is a netlink request under construction.
type msg struct{ b []byte }

func newMsg(typ, flags uint16, body []byte) *msg {
	m := &msg{b: make([]byte, unix.SizeofNlMsghdr, 256)}
	binary.NativeEndian.PutUint16(m.b[4:], typ)
	binary.NativeEndian.PutUint16(m.b[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	m.b = append(m.b, body...)
	m.pad()
	return m
}

func (m *msg) pad() {
	for len(m.b)%4 != 0 {
		m.b = append(m.b, 0)
	}
}

func (m *msg) attr(typ uint16, data []byte) {
	m.b = binary.NativeEndian.AppendUint16(m.b, uint16(unix.SizeofRtAttr+len(data)))
	m.b = binary.NativeEndian.AppendUint16(m.b, typ)
	m.b = append(m.b, data...)
	m.pad()
}

func (m *msg) attrString(typ uint16, s string) { m.attr(typ, append([]byte(s), 0)) }

func (m *msg) attrU32(typ uint16, v uint32) {
	m.attr(typ, binary.NativeEndian.AppendUint32(nil, v))
}

// nest opens a nested attribute; end closes it.
func (m *msg) nest(typ uint16) int {
	off := len(m.b)
	m.attr(typ|unix.NLA_F_NESTED, nil)
	return off
}

func (m *msg) end(off int) {
	binary.NativeEndian.PutUint16(m.b[off:], uint16(len(m.b)-off))
}

func ifinfomsg(family uint8, index int32, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = family
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

// do sends m and waits for its acknowledgement, returning the other
// messages of the answer.
func (r *rtnl) do(m *msg) ([]syscall.NetlinkMessage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	seq := r.seq
	binary.NativeEndian.PutUint32(m.b[0:], uint32(len(m.b)))
	binary.NativeEndian.PutUint32(m.b[8:], seq)
	if err := unix.Sendto(r.fd, m.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	var out []syscall.NetlinkMessage
	for {
		n, _, err := unix.Recvfrom(r.fd, r.buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				return nil, errors.New("no answer from the kernel within 5s")
			}
			return nil, err
		}
		msgs, err := syscall.ParseNetlinkMessage(r.buf[:n])
		if err != nil {
			return nil, err
		}
		for _, nm := range msgs {
			if nm.Header.Seq != seq {
				continue
			}
			switch nm.Header.Type {
			case unix.NLMSG_ERROR:
				if len(nm.Data) < 4 {
					return nil, errors.New("short netlink error message")
				}
				errno := -int32(binary.NativeEndian.Uint32(nm.Data))
				if errno == 0 {
					return out, nil
				}
				return nil, extErr(syscall.Errno(errno), nm)
			case unix.NLMSG_DONE:
				return out, nil
			default:
				// Copy: r.buf is reused.
				nm.Data = append([]byte(nil), nm.Data...)
				out = append(out, nm)
			}
		}
	}
}

// extErr adds the kernel's extended-ACK message, if any, to errno.
func extErr(errno syscall.Errno, nm syscall.NetlinkMessage) error {
	if nm.Header.Flags&nlmFAckTLVs == 0 || len(nm.Data) < 4+unix.SizeofNlMsghdr {
		return errno
	}
	tlv := nm.Data[4+unix.SizeofNlMsghdr:]
	for len(tlv) >= 4 {
		l := int(binary.NativeEndian.Uint16(tlv))
		t := binary.NativeEndian.Uint16(tlv[2:])
		if l < 4 || l > len(tlv) {
			break
		}
		if t == nlmsgerrAttrMs {
			s := string(tlv[4:l])
			for len(s) > 0 && s[len(s)-1] == 0 {
				s = s[:len(s)-1]
			}
			return fmt.Errorf("%w (%s)", errno, s)
		}
		tlv = tlv[(l+3)&^3:]
	}
	return errno
}

// linkIndex returns the index of the interface called name.
func (r *rtnl) linkIndex(name string) (int32, error) {
	m := newMsg(unix.RTM_GETLINK, 0, ifinfomsg(unix.AF_UNSPEC, 0, 0, 0))
	m.attrString(unix.IFLA_IFNAME, name)
	msgs, err := r.do(m)
	if err != nil {
		return 0, err
	}
	for _, nm := range msgs {
		if nm.Header.Type == unix.RTM_NEWLINK && len(nm.Data) >= unix.SizeofIfInfomsg {
			return int32(binary.NativeEndian.Uint32(nm.Data[4:])), nil
		}
	}
	return 0, fmt.Errorf("no interface %q", name)
}

// setUp brings the interface up.
func (r *rtnl) setUp(index int32) error {
	_, err := r.do(newMsg(unix.RTM_NEWLINK, 0, ifinfomsg(unix.AF_UNSPEC, index, unix.IFF_UP, unix.IFF_UP)))
	return err
}

// addVeth creates a veth pair: name in this socket's namespace and peer in
// the namespace of peerNS (a namespace file descriptor), with the
// interface indexes index and peerIndex (0: the kernel's choice; the
// kernel honours peerIndex only together with index).
func (r *rtnl) addVeth(name, peer string, peerNS int, index, peerIndex int32, mtu int) error {
	m := newMsg(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ifinfomsg(unix.AF_UNSPEC, index, 0, 0))
	m.attrString(unix.IFLA_IFNAME, name)
	if mtu > 0 {
		m.attrU32(unix.IFLA_MTU, uint32(mtu))
	}
	li := m.nest(unix.IFLA_LINKINFO)
	m.attrString(unix.IFLA_INFO_KIND, "veth")
	data := m.nest(unix.IFLA_INFO_DATA)
	p := m.nest(vethInfoPeer)
	m.b = append(m.b, ifinfomsg(unix.AF_UNSPEC, peerIndex, 0, 0)...)
	m.attrString(unix.IFLA_IFNAME, peer)
	m.attrU32(unix.IFLA_NET_NS_FD, uint32(peerNS))
	if mtu > 0 {
		m.attrU32(unix.IFLA_MTU, uint32(mtu))
	}
	m.end(p)
	m.end(data)
	m.end(li)
	_, err := r.do(m)
	return err
}

// addAddr adds the address p to the interface; IPv6 addresses skip DAD.
func (r *rtnl) addAddr(index int32, p netip.Prefix) error {
	fam := uint8(unix.AF_INET)
	var flags uint32
	if p.Addr().Is6() {
		fam = unix.AF_INET6
		flags = unix.IFA_F_NODAD
	}
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0] = fam
	body[1] = uint8(p.Bits())
	body[2] = uint8(flags)
	binary.NativeEndian.PutUint32(body[4:], uint32(index))
	m := newMsg(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body)
	a := p.Addr().AsSlice()
	m.attr(unix.IFA_LOCAL, a)
	m.attr(unix.IFA_ADDRESS, a)
	m.attrU32(unix.IFA_FLAGS, flags)
	_, err := r.do(m)
	return err
}

// addRoute adds a route to dst (the zero Prefix: the default route of
// gw's family) via gw and/or out of interface index (0: none).
func (r *rtnl) addRoute(dst netip.Prefix, gw netip.Addr, index int32) error {
	v6 := gw.Is6() || (!gw.IsValid() && dst.Addr().Is6())
	fam := uint8(unix.AF_INET)
	if v6 {
		fam = unix.AF_INET6
	}
	body := make([]byte, unix.SizeofRtMsg)
	body[0] = fam
	if dst.IsValid() {
		body[1] = uint8(dst.Bits())
	}
	body[4] = unix.RT_TABLE_MAIN
	body[5] = unix.RTPROT_BOOT
	body[6] = unix.RT_SCOPE_UNIVERSE
	if !gw.IsValid() {
		body[6] = unix.RT_SCOPE_LINK
	}
	body[7] = unix.RTN_UNICAST
	m := newMsg(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body)
	if dst.IsValid() && dst.Bits() > 0 {
		m.attr(unix.RTA_DST, dst.Masked().Addr().AsSlice())
	}
	if gw.IsValid() {
		m.attr(unix.RTA_GATEWAY, gw.AsSlice())
	}
	if index != 0 {
		m.attrU32(unix.RTA_OIF, uint32(index))
	}
	_, err := r.do(m)
	return err
}

// addBridge creates a bridge called name.
func (r *rtnl) addBridge(name string) error {
	m := newMsg(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ifinfomsg(unix.AF_UNSPEC, 0, 0, 0))
	m.attrString(unix.IFLA_IFNAME, name)
	li := m.nest(unix.IFLA_LINKINFO)
	m.attrString(unix.IFLA_INFO_KIND, "bridge")
	m.end(li)
	_, err := r.do(m)
	return err
}

// setMaster makes the interface a port of the bridge master.
func (r *rtnl) setMaster(index, master int32) error {
	m := newMsg(unix.RTM_NEWLINK, 0, ifinfomsg(unix.AF_UNSPEC, index, 0, 0))
	m.attrU32(unix.IFLA_MASTER, uint32(master))
	_, err := r.do(m)
	return err
}

// setNeighbour adds or replaces a permanent neighbour entry: addr is at
// the link-layer address mac on the interface.
func (r *rtnl) setNeighbour(index int32, addr netip.Addr, mac []byte) error {
	body := make([]byte, unix.SizeofNdMsg)
	body[0] = unix.AF_INET
	if addr.Is6() {
		body[0] = unix.AF_INET6
	}
	binary.NativeEndian.PutUint32(body[4:], uint32(index))
	binary.NativeEndian.PutUint16(body[8:], unix.NUD_PERMANENT)
	m := newMsg(unix.RTM_NEWNEIGH, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, body)
	m.attr(unix.NDA_DST, addr.AsSlice())
	m.attr(unix.NDA_LLADDR, mac)
	_, err := r.do(m)
	return err
}
