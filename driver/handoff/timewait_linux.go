package handoff

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A client that opens a new connection from a port whose previous
// connection to the same server address ended with the server side closing
// first finds that server side in TIME_WAIT for 60 s. The kernel's own
// listener would take the new SYN over the TIME_WAIT socket
// (tcp_timewait_state_process, TCP_TW_SYN). A repair-mode connect does not
// always: the socket's port is bound explicitly and shared with other
// sockets (the listener, other handed-off connections), so
// __inet_hash_connect checks the established table without a TIME_WAIT
// reuse slot, and tcp_twsk_unique then reuses the TIME_WAIT socket only if
// it holds a peer timestamp (ts_recent_stamp). Without timestamps connect
// fails with EADDRNOTAVAIL, like a true duplicate. The cookie has proven
// that the client started a new connection on the tuple, so the TIME_WAIT
// socket is what the kernel would have dropped: killTimeWait destroys it
// with SOCK_DESTROY (NETLINK_SOCK_DIAG, CONFIG_INET_DIAG_DESTROY) and the
// repair is run again. A socket in any other state is left alone.

// Layouts of include/uapi/linux/inet_diag.h, which golang.org/x/sys/unix
// does not declare.
type diagSockID struct {
	SPort, DPort [2]byte // network order
	Src, Dst     [16]byte
	If           uint32
	Cookie       [2]uint32
}

type diagReq struct {
	Family, Protocol, Ext, Pad uint8
	States                     uint32
	ID                         diagSockID
}

type diagMsg struct {
	Family, State, Timer, Retrans uint8
	ID                            diagSockID
	Expires, RQueue, WQueue       uint32
	UID, Inode                    uint32
}

const (
	tcpFinWait2  = 5 // TCP_FIN_WAIT2
	tcpTimeWait  = 6 // TCP_TIME_WAIT
	diagTimerTW  = 3 // idiag_timer of a timewait socket
	nlmsgHdrLen  = unix.SizeofNlMsghdr
	diagReqLen   = int(unsafe.Sizeof(diagReq{}))
	diagMsgLen   = int(unsafe.Sizeof(diagMsg{}))
	diagRecvSize = 4096
)

// killTimeWait destroys the TIME_WAIT socket of the connection local <->
// remote, if there is one, and reports whether it did. It must run in the
// network namespace of the connection.
func killTimeWait(local, remote netip.AddrPort) (bool, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return false, &OpError{Op: "open NETLINK_SOCK_DIAG", Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, &OpError{Op: "bind NETLINK_SOCK_DIAG", Err: err}
	}
	req := diagReq{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, States: ^uint32(0)}
	if local.Addr().Is6() {
		req.Family = unix.AF_INET6
	}
	binary.BigEndian.PutUint16(req.ID.SPort[:], local.Port())
	binary.BigEndian.PutUint16(req.ID.DPort[:], remote.Port())
	putAddr(&req.ID.Src, local.Addr())
	putAddr(&req.ID.Dst, remote.Addr())
	req.ID.Cookie = [2]uint32{^uint32(0), ^uint32(0)} // INET_DIAG_NOCOOKIE

	// The exact lookup (no NLM_F_DUMP) answers with the socket the kernel
	// would deliver a segment of this tuple to: the connection's, or else
	// the port's listener.
	msg, err := diagRoundTrip(fd, unix.SOCK_DIAG_BY_FAMILY, &req)
	if err != nil {
		if err == unix.ENOENT {
			return false, nil
		}
		return false, &OpError{Op: "sock_diag lookup of " + local.String() + "<-" + remote.String(), Err: err}
	}
	tw := msg.State == tcpTimeWait || msg.State == tcpFinWait2 && msg.Timer == diagTimerTW
	if !tw || msg.ID.SPort != req.ID.SPort || msg.ID.DPort != req.ID.DPort ||
		msg.ID.Src != req.ID.Src || msg.ID.Dst != req.ID.Dst {
		return false, nil
	}
	// Destroy exactly that socket: its cookie makes the kernel refuse any
	// other one that took the tuple in between.
	req.ID.Cookie = msg.ID.Cookie
	if _, err := diagRoundTrip(fd, unix.SOCK_DESTROY, &req); err != nil {
		if err == unix.ENOENT {
			return true, nil // expired meanwhile
		}
		return false, &OpError{Op: "SOCK_DESTROY of the TIME_WAIT socket " + local.String() + "<-" + remote.String(), Err: err}
	}
	return true, nil
}

func putAddr(dst *[16]byte, a netip.Addr) {
	if a.Is4() {
		b := a.As4()
		copy(dst[:4], b[:])
		return
	}
	*dst = a.As16()
}

// diagRoundTrip sends one request and reads its answer: the socket's
// inet_diag_msg, or for SOCK_DESTROY the acknowledgement.
func diagRoundTrip(fd int, typ uint16, req *diagReq) (diagMsg, error) {
	var m diagMsg
	b := make([]byte, nlmsgHdrLen+diagReqLen)
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(b[8:], 1)
	copy(b[nlmsgHdrLen:], unsafe.Slice((*byte)(unsafe.Pointer(req)), diagReqLen))
	if err := unix.Sendto(fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return m, err
	}
	buf := make([]byte, diagRecvSize)
	got := false
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return m, err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return m, err
		}
		for _, nm := range msgs {
			switch nm.Header.Type {
			case unix.NLMSG_ERROR:
				if len(nm.Data) < 4 {
					return m, unix.EBADMSG
				}
				if e := int32(binary.NativeEndian.Uint32(nm.Data)); e != 0 {
					return m, unix.Errno(-e)
				}
				// The acknowledgement ends the exchange.
				if typ == unix.SOCK_DIAG_BY_FAMILY && !got {
					return m, unix.ENOENT
				}
				return m, nil
			case unix.NLMSG_DONE:
				if !got && typ == unix.SOCK_DIAG_BY_FAMILY {
					return m, unix.ENOENT
				}
				return m, nil
			case unix.SOCK_DIAG_BY_FAMILY:
				if len(nm.Data) >= diagMsgLen {
					m = *(*diagMsg)(unsafe.Pointer(&nm.Data[0]))
					got = true
				}
			}
		}
	}
}
