package proxy

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/driver/afxdp"
)

// ChooseDriver picks the fastest driver that works on this host: afxdp
// where its XDP program attaches to iface (the interface the protected
// addresses are reached through; it attaches the program and detaches it
// at once to find out), else afpacket where an AF_PACKET socket opens on
// iface, else nfqueue. With no interface, or with failOpen, it is nfqueue:
// the one driver that needs no interface and can let packets bypass the
// daemon.
func ChooseDriver(iface string, failOpen bool) Choice {
	switch {
	case failOpen:
		return Choice{"nfqueue", "fail-open: only nfqueue lets packets bypass a daemon that is gone"}
	case iface == "":
		return Choice{"nfqueue", "no interface given: afxdp and afpacket need one"}
	}
	mode, err := afxdp.Probe(iface)
	if err == nil {
		return Choice{"afxdp", fmt.Sprintf("the XDP program attaches to %s in %s mode", iface, mode)}
	}
	xdpErr := err
	if err = probeAFPacket(iface); err == nil {
		return Choice{"afpacket", fmt.Sprintf("no XDP on %s (%v); AF_PACKET sockets open on it", iface, xdpErr)}
	}
	return Choice{"nfqueue", fmt.Sprintf("no XDP on %s (%v), no AF_PACKET socket (%v)", iface, xdpErr, err)}
}

// probeAFPacket opens an AF_PACKET socket and binds it to iface, receiving
// nothing (protocol 0).
func probeAFPacket(iface string) error {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index})
}
