package netlab

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// PacketConn is an AF_PACKET socket bound to one interface, for sending
// whole Ethernet frames and capturing what arrives on the interface (never
// what it sends). It lives in the namespace it was opened in.
type PacketConn struct {
	fd      int
	ifindex int
	vnet    bool
	// MAC is the interface's link-layer address.
	MAC net.HardwareAddr
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// OpenPacket opens a packet socket on the interface dev of the namespace:
// for sending whole Ethernet frames and capturing what arrives on dev
// (never what it sends). With vnetHdr every frame sent is prefixed by a
// virtio-net header (see SendPartial). The receive buffer is made large:
// a batch of replies must never be dropped.
func (n *NS) OpenPacket(dev string, vnetHdr bool) (p *PacketConn, err error) {
	err = n.Do(func() error {
		p, err = openPacket(dev, vnetHdr)
		return err
	})
	if err != nil {
		return nil, &OpError{Op: "open a packet socket on " + dev, NS: n.name, Err: err}
	}
	return p, nil
}

func openPacket(ifname string, vnetHdr bool) (*PacketConn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	p := &PacketConn{fd: fd, ifindex: ifi.Index, vnet: vnetHdr, MAC: ifi.HardwareAddr}
	fail := func(what string, err error) (*PacketConn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
		return fail("SO_RCVBUFFORCE", err)
	}
	if vnetHdr {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return fail("PACKET_VNET_HDR", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	return p, nil
}

// Close closes the socket.
func (p *PacketConn) Close() error { return unix.Close(p.fd) }

// Send sends one Ethernet frame (on a vnet socket, with an empty virtio-net
// header: the checksums in the frame must be complete).
func (p *PacketConn) Send(frame []byte) error {
	if p.vnet {
		return p.SendPartial(frame, -1)
	}
	_, err := unix.Write(p.fd, frame)
	return err
}

// SendPartial sends a frame on a vnet socket marked VIRTIO_NET_HDR_F_NEEDS_CSUM
// with the checksum starting at l4 (the TCP header offset in the frame) and
// stored at l4+16: the TCP checksum field must hold the pseudo-header sum,
// as a NIC's offload would see it. l4 < 0 sends an empty header.
func (p *PacketConn) SendPartial(frame []byte, l4 int) error {
	var h [10]byte // struct virtio_net_hdr
	if l4 >= 0 {
		h[0] = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
		binary.NativeEndian.PutUint16(h[6:], uint16(l4))
		binary.NativeEndian.PutUint16(h[8:], 16)
	}
	_, err := unix.Writev(p.fd, [][]byte{h[:], frame})
	return err
}

// Recv reads one frame, waiting at most timeout. It returns 0, nil on timeout.
func (p *PacketConn) Recv(buf []byte, timeout time.Duration) (int, error) {
	ms := int(timeout / time.Millisecond)
	for {
		fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, nil
		}
		m, _, err := unix.Recvfrom(p.fd, buf, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		return m, err
	}
}
