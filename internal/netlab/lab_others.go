//go:build !linux

package netlab

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"time"

	"github.com/synproxy-lite/synproxy-lite/packet"
)

// NetnsDir is where namespaces are bind-mounted, as ip-netns(8) expects.
const NetnsDir = "/run/netns"

// Lab is a set of network namespaces; on this system every operation
// returns ErrNotSupported.
type Lab struct{}

// NS is a network namespace of a Lab.
type NS struct{}

// New returns ErrNotSupported.
func New(cfg *Config) (*Lab, error) { return nil, ErrNotSupported }

// Sweep returns ErrNotSupported.
func Sweep(prefix string) ([]string, error) { return nil, ErrNotSupported }

func (l *Lab) ID() string                               { return "" }
func (l *Lab) Namespaces() []*NS                        { return nil }
func (l *Lab) AddNS(role string) (*NS, error)           { return nil, ErrNotSupported }
func (l *Lab) Close() error                             { return nil }
func (l *Lab) Link(a, b *NS, cfg *LinkConfig) error     { return ErrNotSupported }
func (n *NS) Name() string                              { return "" }
func (n *NS) Role() string                              { return "" }
func (n *NS) Path() string                              { return "" }
func (n *NS) FD() int                                   { return -1 }
func (n *NS) LinkIndex(name string) (int, error)        { return 0, ErrNotSupported }
func (n *NS) LinkUp(name string) error                  { return ErrNotSupported }
func (n *NS) AddAddr(name string, p netip.Prefix) error { return ErrNotSupported }
func (n *NS) AddRoute(dst netip.Prefix, gw netip.Addr, dev string) error {
	return ErrNotSupported
}
func (n *NS) DefaultRoute(gw netip.Addr) error { return ErrNotSupported }
func (n *NS) AddBridge(name string) error      { return ErrNotSupported }
func (n *NS) HardwareAddr(name string) (net.HardwareAddr, error) {
	return nil, ErrNotSupported
}
func (n *NS) SetNeighbour(name string, addr netip.Addr, mac net.HardwareAddr) error {
	return ErrNotSupported
}
func (n *NS) Synproxy(table string, r packet.Rule) (remove func() error, err error) {
	return nil, ErrNotSupported
}
func (n *NS) Do(fn func() error) error { return ErrNotSupported }

// DoNamed is not supported outside Linux.
func DoNamed(name string, fn func() error) error { return ErrNotSupported }

func (n *NS) SetSysctl(key, value string) error { return ErrNotSupported }
func (n *NS) Sysctl(key string) (string, error) { return "", ErrNotSupported }
func (n *NS) Listen(network, address string) (net.Listener, error) {
	return nil, ErrNotSupported
}
func (n *NS) ListenPacket(network, address string) (net.PacketConn, error) {
	return nil, ErrNotSupported
}
func (n *NS) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return nil, ErrNotSupported
}
func (n *NS) Start(cmd *exec.Cmd) error { return ErrNotSupported }
func (n *NS) Run(cmd *exec.Cmd) error   { return ErrNotSupported }
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}
func (n *NS) CombinedOutput(ctx context.Context, name string, args ...string) ([]byte, error) {
	return nil, ErrNotSupported
}

// PacketConn is an AF_PACKET socket; it does not exist on this system.
type PacketConn struct {
	// MAC is the interface's link-layer address.
	MAC net.HardwareAddr
}

func (n *NS) OpenPacket(dev string, vnetHdr bool) (*PacketConn, error) {
	return nil, ErrNotSupported
}
func (p *PacketConn) Close() error                                        { return ErrNotSupported }
func (p *PacketConn) Send(frame []byte) error                             { return ErrNotSupported }
func (p *PacketConn) SendPartial(frame []byte, l4 int) error              { return ErrNotSupported }
func (p *PacketConn) Recv(buf []byte, timeout time.Duration) (int, error) { return 0, ErrNotSupported }
