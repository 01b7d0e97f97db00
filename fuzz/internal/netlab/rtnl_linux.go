package netlab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

const vethInfoPeer = 1 // VETH_INFO_PEER

// rtnl is a NETLINK_ROUTE socket in the namespace it was opened in.
type rtnl struct {
	fd  int
	seq uint32
}

func openRTNL() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlab: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlab: netlink bind: %w", err)
	}
	return &rtnl{fd: fd}, nil
}

func (r *rtnl) close() { unix.Close(r.fd) }

// msg is a netlink message under construction.
type msg struct {
	b     []byte
	nests []int
}

func newMsg(typ uint16, flags uint16, fixed []byte) *msg {
	m := &msg{b: make([]byte, unix.SizeofNlMsghdr, 256)}
	binary.NativeEndian.PutUint16(m.b[4:], typ)
	binary.NativeEndian.PutUint16(m.b[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	m.b = append(m.b, fixed...)
	m.align()
	return m
}

func (m *msg) align() {
	for len(m.b)%4 != 0 {
		m.b = append(m.b, 0)
	}
}

func (m *msg) attr(typ uint16, data []byte) {
	m.b = binary.NativeEndian.AppendUint16(m.b, uint16(4+len(data)))
	m.b = binary.NativeEndian.AppendUint16(m.b, typ)
	m.b = append(m.b, data...)
	m.align()
}

func (m *msg) str(typ uint16, s string) { m.attr(typ, append([]byte(s), 0)) }
func (m *msg) u32(typ uint16, v uint32) { m.attr(typ, binary.NativeEndian.AppendUint32(nil, v)) }
func (m *msg) begin(typ uint16) {
	m.nests = append(m.nests, len(m.b))
	m.b = binary.NativeEndian.AppendUint16(m.b, 0)
	m.b = binary.NativeEndian.AppendUint16(m.b, typ|unix.NLA_F_NESTED)
}
func (m *msg) end() {
	at := m.nests[len(m.nests)-1]
	m.nests = m.nests[:len(m.nests)-1]
	binary.NativeEndian.PutUint16(m.b[at:], uint16(len(m.b)-at))
}

func (r *rtnl) do(m *msg) error {
	r.seq++
	binary.NativeEndian.PutUint32(m.b[0:], uint32(len(m.b)))
	binary.NativeEndian.PutUint32(m.b[8:], r.seq)
	if err := unix.Sendto(r.fd, m.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(r.fd, buf, 0)
		if err != nil {
			return err
		}
		msgs, err := syscallParseNetlink(buf[:n])
		if err != nil {
			return err
		}
		for _, nm := range msgs {
			if nm.Header.Seq != r.seq || nm.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if len(nm.Data) < 4 {
				return errors.New("short netlink error")
			}
			if e := int32(binary.NativeEndian.Uint32(nm.Data)); e != 0 {
				return unix.Errno(-e)
			}
			return nil
		}
	}
}

func ifinfo(family uint8, index int32, flags, change uint32) []byte {
	var ii unix.IfInfomsg
	ii.Family, ii.Index, ii.Flags, ii.Change = family, index, flags, change
	return (*[unix.SizeofIfInfomsg]byte)(unsafe.Pointer(&ii))[:]
}

// rtnlDo opens a NETLINK_ROUTE socket in the calling thread's namespace and
// runs fn with it.
func rtnlDo(fn func(r *rtnl) error) error {
	r, err := openRTNL()
	if err != nil {
		return err
	}
	defer r.close()
	return fn(r)
}

// AddVeth creates a veth pair in the calling thread's namespace: name stays
// here, peer is moved into peerNS.
func AddVeth(name, peer string, peerNS *NS) error {
	return rtnlDo(func(r *rtnl) error {
		m := newMsg(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ifinfo(unix.AF_UNSPEC, 0, 0, 0))
		m.str(unix.IFLA_IFNAME, name)
		m.begin(unix.IFLA_LINKINFO)
		m.str(unix.IFLA_INFO_KIND, "veth")
		m.begin(unix.IFLA_INFO_DATA)
		m.begin(vethInfoPeer)
		m.b = append(m.b, ifinfo(unix.AF_UNSPEC, 0, 0, 0)...)
		m.str(unix.IFLA_IFNAME, peer)
		m.u32(unix.IFLA_NET_NS_FD, uint32(peerNS.fd))
		m.end()
		m.end()
		m.end()
		if err := r.do(m); err != nil {
			return fmt.Errorf("netlab: create veth %s/%s: %w", name, peer, err)
		}
		return nil
	})
}

// LinkUp sets an interface of the calling thread's namespace up.
func LinkUp(name string) error {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	return rtnlDo(func(r *rtnl) error {
		m := newMsg(unix.RTM_NEWLINK, 0, ifinfo(unix.AF_UNSPEC, int32(ifi.Index), unix.IFF_UP, unix.IFF_UP))
		if err := r.do(m); err != nil {
			return fmt.Errorf("netlab: set %s up: %w", name, err)
		}
		return nil
	})
}

// AddAddr adds an address (IPv6 without duplicate address detection).
func AddAddr(name string, p netip.Prefix) error {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	return rtnlDo(func(r *rtnl) error {
		fam := uint8(unix.AF_INET)
		var flags uint32
		if p.Addr().Is6() {
			fam, flags = unix.AF_INET6, unix.IFA_F_NODAD
		}
		ia := unix.IfAddrmsg{Family: fam, Prefixlen: uint8(p.Bits()), Flags: uint8(flags), Index: uint32(ifi.Index)}
		m := newMsg(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, (*[unix.SizeofIfAddrmsg]byte)(unsafe.Pointer(&ia))[:])
		a := p.Addr().AsSlice()
		m.attr(unix.IFA_LOCAL, a)
		m.attr(unix.IFA_ADDRESS, a)
		m.u32(unix.IFA_FLAGS, flags)
		if err := r.do(m); err != nil {
			return fmt.Errorf("netlab: add %v to %s: %w", p, name, err)
		}
		return nil
	})
}

// AddRoute adds a route to dst via gateway gw on interface name.
func AddRoute(name string, dst netip.Prefix, gw netip.Addr) error {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	return rtnlDo(func(r *rtnl) error {
		fam := uint8(unix.AF_INET)
		if dst.Addr().Is6() {
			fam = unix.AF_INET6
		}
		rt := unix.RtMsg{Family: fam, Dst_len: uint8(dst.Bits()), Table: unix.RT_TABLE_MAIN,
			Protocol: unix.RTPROT_BOOT, Scope: unix.RT_SCOPE_UNIVERSE, Type: unix.RTN_UNICAST}
		m := newMsg(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, (*[unix.SizeofRtMsg]byte)(unsafe.Pointer(&rt))[:])
		m.attr(unix.RTA_DST, dst.Masked().Addr().AsSlice())
		m.attr(unix.RTA_GATEWAY, gw.AsSlice())
		m.u32(unix.RTA_OIF, uint32(ifi.Index))
		if err := r.do(m); err != nil {
			return fmt.Errorf("netlab: route %v via %v: %w", dst, gw, err)
		}
		return nil
	})
}
