package netlab

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// NetnsDir is where namespaces are bind-mounted, as ip-netns(8) expects.
const NetnsDir = "/run/netns"

// Lab is a set of network namespaces and the veth pairs between them. Its
// methods are safe for concurrent use.
type Lab struct {
	id     string
	prefix string

	mu     sync.Mutex
	nss    []*NS
	closed bool

	nextIndex atomic.Int32 // interface indexes given to veth ends
}

// NS is a network namespace of a Lab.
type NS struct {
	lab  *Lab
	role string
	name string
	fd   int // the namespace, open O_RDONLY
	nl   *rtnl
}

// vethIndexBase is where the interface indexes of veth peers start.
const vethIndexBase = 1000

// New returns an empty lab. Close it (t.Cleanup, defer) to remove every
// namespace it made; that also removes their interfaces.
func New(cfg *Config) (*Lab, error) {
	prefix := cfg.prefix()
	if strings.ContainsAny(prefix, "/-") || strings.ContainsFunc(prefix, unicodeSpace) {
		return nil, fmt.Errorf("netlab: prefix %q may not contain '/', '-' or spaces", prefix)
	}
	// The suffix only tells labs of one process apart: math/rand, which
	// never waits for the kernel's entropy (a freshly booted guest may
	// not have it yet).
	var r [2]byte
	binary.BigEndian.PutUint16(r[:], uint16(rand.Uint32()))
	id := prefix + "-" + strconv.FormatInt(int64(os.Getpid()), 36) + "-" + hex.EncodeToString(r[:])
	return &Lab{id: id, prefix: prefix}, nil
}

func unicodeSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' }

// ID is the common start of the lab's namespace names.
func (l *Lab) ID() string { return l.id }

// Namespaces returns the lab's namespaces in the order they were added.
func (l *Lab) Namespaces() []*NS {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*NS(nil), l.nss...)
}

// AddNS creates a namespace named ID()+"-"+role, with lo up and IPv6
// enabled without duplicate address detection (net.ipv6.conf.{all,default}
// .disable_ipv6=0 and accept_dad=0).
func (l *Lab) AddNS(role string) (*NS, error) {
	if role == "" || strings.ContainsAny(role, "/ ") {
		return nil, fmt.Errorf("netlab: bad namespace role %q", role)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	for _, n := range l.nss {
		if n.role == role {
			l.mu.Unlock()
			return nil, fmt.Errorf("netlab: namespace role %q exists", role)
		}
	}
	l.mu.Unlock()

	name := l.id + "-" + role
	n, err := createNS(name)
	if err != nil {
		return nil, err
	}
	n.lab, n.role = l, role
	if err := n.init(); err != nil {
		n.remove()
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		n.remove()
		return nil, ErrClosed
	}
	l.nss = append(l.nss, n)
	return n, nil
}

func (n *NS) init() error {
	idx, err := n.nl.linkIndex("lo")
	if err == nil {
		err = n.nl.setUp(idx)
	}
	if err != nil {
		return &OpError{Op: "bring lo up", NS: n.name, Err: err}
	}
	for _, kv := range [][2]string{
		{"net.ipv6.conf.all.disable_ipv6", "0"},
		{"net.ipv6.conf.default.disable_ipv6", "0"},
		{"net.ipv6.conf.all.accept_dad", "0"},
		{"net.ipv6.conf.default.accept_dad", "0"},
	} {
		if err := n.SetSysctl(kv[0], kv[1]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// createNS makes a namespace on a thread of its own and bind-mounts it.
// The thread is never unlocked, so Go ends it with the goroutine instead
// of reusing a thread that sits in another namespace.
func createNS(name string) (*NS, error) {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return nil, &OpError{Op: "create " + NetnsDir, Err: err}
	}
	path := filepath.Join(NetnsDir, name)
	type result struct {
		n   *NS
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		n, err := func() (*NS, error) {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return nil, &OpError{Op: "unshare(CLONE_NEWNET)", Err: err}
			}
			f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
			if err != nil {
				return nil, &OpError{Op: "create mount point", NS: name, Err: err}
			}
			f.Close()
			src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
			if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
				os.Remove(path)
				return nil, &OpError{Op: "bind-mount " + src, NS: name, Err: err}
			}
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				unmount(path)
				return nil, &OpError{Op: "open", NS: name, Err: err}
			}
			nl, err := newRTNL()
			if err != nil {
				unix.Close(fd)
				unmount(path)
				return nil, &OpError{Op: "open NETLINK_ROUTE", NS: name, Err: err}
			}
			return &NS{name: name, fd: fd, nl: nl}, nil
		}()
		ch <- result{n, err}
		// Return with the thread locked: it is discarded.
	}()
	r := <-ch
	return r.n, r.err
}

func unmount(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if rerr := os.Remove(path); err == nil && rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = rerr
	}
	return err
}

// remove closes the namespace's descriptors and deletes its mount. The
// kernel destroys the namespace once nothing else holds it.
func (n *NS) remove() error {
	n.nl.close()
	unix.Close(n.fd)
	if err := unmount(filepath.Join(NetnsDir, n.name)); err != nil {
		return &OpError{Op: "remove", NS: n.name, Err: err}
	}
	return nil
}

// Close removes every namespace of the lab, in reverse order of creation,
// and with them their interfaces. It returns the first error but tries
// them all. It may be called more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	nss := l.nss
	l.nss, l.closed = nil, true
	l.mu.Unlock()
	var first error
	for i := len(nss) - 1; i >= 0; i-- {
		if err := nss[i].remove(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Link joins namespaces a and b with a veth pair, gives both ends their
// addresses and brings them up.
func (l *Lab) Link(a, b *NS, cfg *LinkConfig) error {
	if cfg == nil {
		cfg = &LinkConfig{}
	}
	an, bn := cfg.AName, cfg.BName
	if an == "" {
		an = ifname("v" + b.role)
	}
	if bn == "" {
		bn = ifname("v" + a.role)
	}
	for _, s := range []string{an, bn} {
		if len(s) > unix.IFNAMSIZ-1 || strings.ContainsAny(s, "/ :") {
			return fmt.Errorf("netlab: bad interface name %q (at most 15 bytes, no '/', ':' or spaces)", s)
		}
	}
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	// Both ends get interface indexes of the lab's own numbering. Two
	// ends with the same index (in fresh namespaces both would be 2) make
	// the kernel treat their carrier changes as non-urgent, and IPv6 then
	// waits up to a second for the link to become ready.
	var err error
	for range 16 {
		ia := vethIndexBase + l.nextIndex.Add(1)
		ib := vethIndexBase + l.nextIndex.Add(1)
		err = a.nl.addVeth(an, bn, b.fd, ia, ib, cfg.MTU)
		if !errors.Is(err, unix.EBUSY) {
			break
		}
	}
	if err != nil {
		return &OpError{Op: fmt.Sprintf("create veth %s (peer %s in %s)", an, bn, b.name), NS: a.name, Err: err}
	}
	ends := []struct {
		n      *NS
		name   string
		addrs  []netip.Prefix
		master string
	}{{a, an, cfg.AAddrs, cfg.AMaster}, {b, bn, cfg.BAddrs, cfg.BMaster}}
	for _, end := range ends {
		if end.master != "" {
			if err := end.n.setMaster(end.name, end.master); err != nil {
				return err
			}
		}
		if err := end.n.LinkUp(end.name); err != nil {
			return err
		}
	}
	for _, end := range ends {
		for _, p := range end.addrs {
			if err := end.n.AddAddr(end.name, p); err != nil {
				return err
			}
		}
	}
	for _, end := range ends {
		if err := end.n.waitIPv6(end.name, end.addrs); err != nil {
			return err
		}
	}
	return nil
}

func ifname(s string) string {
	if len(s) > 15 {
		s = s[:15]
	}
	return s
}

// Name is the namespace's name under /run/netns, for `ip netns exec`.
func (n *NS) Name() string { return n.name }

// Role is the role the namespace was created with.
func (n *NS) Role() string { return n.role }

// Path is the namespace's file, /run/netns/Name().
func (n *NS) Path() string { return filepath.Join(NetnsDir, n.name) }

// FD is the namespace's file descriptor, valid until the lab is closed
// (for setns(2) or IFLA_NET_NS_FD).
func (n *NS) FD() int { return n.fd }

// LinkIndex returns the index of the interface called name.
func (n *NS) LinkIndex(name string) (int, error) {
	idx, err := n.nl.linkIndex(name)
	if err != nil {
		return 0, &OpError{Op: "find interface " + name, NS: n.name, Err: err}
	}
	return int(idx), nil
}

// LinkUp brings the interface called name up.
func (n *NS) LinkUp(name string) error {
	idx, err := n.nl.linkIndex(name)
	if err == nil {
		err = n.nl.setUp(idx)
	}
	if err != nil {
		return &OpError{Op: "bring " + name + " up", NS: n.name, Err: err}
	}
	return nil
}

// AddBridge creates a bridge called name and brings it up. Ports join it
// through LinkConfig.AMaster and BMaster.
func (n *NS) AddBridge(name string) error {
	if len(name) > unix.IFNAMSIZ-1 || name == "" || strings.ContainsAny(name, "/ :") {
		return fmt.Errorf("netlab: bad interface name %q (at most 15 bytes, no '/', ':' or spaces)", name)
	}
	if err := n.nl.addBridge(name); err != nil {
		return &OpError{Op: "create bridge " + name, NS: n.name, Err: err}
	}
	return n.LinkUp(name)
}

func (n *NS) setMaster(name, master string) error {
	idx, err := n.nl.linkIndex(name)
	var midx int32
	if err == nil {
		midx, err = n.nl.linkIndex(master)
	}
	if err == nil {
		err = n.nl.setMaster(idx, midx)
	}
	if err != nil {
		return &OpError{Op: "make " + name + " a port of " + master, NS: n.name, Err: err}
	}
	return nil
}

// HardwareAddr returns the link-layer address of the interface called
// name.
func (n *NS) HardwareAddr(name string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(name)
		if err == nil {
			mac = ifi.HardwareAddr
		}
		return err
	})
	if err != nil {
		return nil, &OpError{Op: "find interface " + name, NS: n.name, Err: err}
	}
	return mac, nil
}

// SetNeighbour adds or replaces a permanent neighbour entry on the
// interface called name: addr is at the link-layer address mac.
func (n *NS) SetNeighbour(name string, addr netip.Addr, mac net.HardwareAddr) error {
	idx, err := n.nl.linkIndex(name)
	if err == nil {
		err = n.nl.setNeighbour(idx, addr, mac)
	}
	if err != nil {
		return &OpError{Op: fmt.Sprintf("set neighbour %v at %v on %s", addr, mac, name), NS: n.name, Err: err}
	}
	return nil
}

// AddAddr adds the address p (with its prefix length) to the interface
// called name. IPv6 addresses are added with nodad.
func (n *NS) AddAddr(name string, p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("netlab: invalid address %v", p)
	}
	idx, err := n.nl.linkIndex(name)
	if err == nil {
		err = n.nl.addAddr(idx, p)
	}
	if err != nil {
		return &OpError{Op: fmt.Sprintf("add address %v on %s", p, name), NS: n.name, Err: err}
	}
	return nil
}

// AddRoute adds a route to dst through the gateway gw. dst may be the zero
// Prefix for the default route of gw's family. gw may be the zero Addr for
// a route straight out of the interface dev; dev may be empty when gw is
// given.
func (n *NS) AddRoute(dst netip.Prefix, gw netip.Addr, dev string) error {
	if !gw.IsValid() && dev == "" {
		return errors.New("netlab: a route needs a gateway or an interface")
	}
	if !gw.IsValid() && !dst.IsValid() {
		return errors.New("netlab: a default route needs a gateway")
	}
	if gw.IsValid() && dst.IsValid() && gw.Is4() != dst.Addr().Is4() {
		return fmt.Errorf("netlab: route to %v via %v mixes address families", dst, gw)
	}
	var idx int32
	var err error
	if dev != "" {
		if idx, err = n.nl.linkIndex(dev); err != nil {
			return &OpError{Op: "find interface " + dev, NS: n.name, Err: err}
		}
	}
	if err := n.nl.addRoute(dst, gw, idx); err != nil {
		what := "default"
		if dst.IsValid() {
			what = dst.String()
		}
		return &OpError{Op: fmt.Sprintf("add route %s via %v dev %q", what, gw, dev), NS: n.name, Err: err}
	}
	return nil
}

// DefaultRoute adds the default route of gw's family through gw.
func (n *NS) DefaultRoute(gw netip.Addr) error { return n.AddRoute(netip.Prefix{}, gw, "") }

// Do runs fn on the calling goroutine, locked to its OS thread, with the
// thread inside the namespace; see the package documentation for what
// that means for goroutines and sockets. It returns fn's error.
func (n *NS) Do(fn func() error) error { return doIn(n.fd, n.name, fn) }

// DoNamed is Do for a namespace this package did not create, named as
// `ip netns` names them (/run/netns/NAME).
func DoNamed(name string, fn func() error) error {
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &OpError{Op: "open the namespace", NS: name, Err: err}
	}
	defer unix.Close(fd)
	return doIn(fd, name, fn)
}

func doIn(fd int, name string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return &OpError{Op: "open the thread's namespace", Err: err}
	}
	defer unix.Close(orig)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return &OpError{Op: "setns", NS: name, Err: err}
	}
	defer func() {
		// Unlock only when the thread is back where it came from; a
		// thread left locked ends with its goroutine.
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return fn()
}

// SetSysctl writes value to the sysctl key inside the namespace. Keys use
// dots or slashes: "net.ipv4.ip_forward" or "net/ipv4/ip_forward".
func (n *NS) SetSysctl(key, value string) error {
	path := sysctlPath(key)
	err := n.Do(func() error { return os.WriteFile(path, []byte(value), 0) })
	if err != nil {
		return &OpError{Op: "sysctl " + key + "=" + value, NS: n.name, Err: err}
	}
	return nil
}

// Sysctl reads the sysctl key inside the namespace.
func (n *NS) Sysctl(key string) (string, error) {
	var b []byte
	err := n.Do(func() (err error) { b, err = os.ReadFile(sysctlPath(key)); return })
	if err != nil {
		return "", &OpError{Op: "read sysctl " + key, NS: n.name, Err: err}
	}
	return strings.TrimSpace(string(b)), nil
}

func sysctlPath(key string) string {
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	return filepath.Join("/proc/sys", key)
}

// Listen is net.Listen with the socket created inside the namespace.
func (n *NS) Listen(network, address string) (ln net.Listener, err error) {
	err = n.Do(func() error { ln, err = net.Listen(network, address); return err })
	return ln, err
}

// ListenPacket is net.ListenPacket with the socket created inside the
// namespace.
func (n *NS) ListenPacket(network, address string) (c net.PacketConn, err error) {
	err = n.Do(func() error { c, err = net.ListenPacket(network, address); return err })
	return c, err
}

// DialContext dials from inside the namespace. It has the signature of
// http.Transport.DialContext. address should be an IP literal (see the
// package documentation).
func (n *NS) DialContext(ctx context.Context, network, address string) (c net.Conn, err error) {
	var d net.Dialer
	err = n.Do(func() error { c, err = d.DialContext(ctx, network, address); return err })
	return c, err
}

// Start starts cmd with the child inside the namespace.
func (n *NS) Start(cmd *exec.Cmd) error {
	return n.Do(cmd.Start)
}

// Run starts cmd inside the namespace and waits for it.
func (n *NS) Run(cmd *exec.Cmd) error {
	if err := n.Start(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// Command returns an *exec.Cmd for name and args; start it with NS.Start
// or NS.Run.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}

// CombinedOutput runs name with args inside the namespace and returns its
// combined standard output and standard error.
func (n *NS) CombinedOutput(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var b strings.Builder
	cmd.Stdout, cmd.Stderr = &b, &b
	err := n.Run(cmd)
	return []byte(b.String()), err
}

// Sweep removes the namespaces under /run/netns whose names start with
// prefix+"-" and whose creating process no longer runs: what a run that
// crashed leaves behind. It returns the names it removed. Namespaces of
// running processes, including this one, are left alone.
func Sweep(prefix string) ([]string, error) {
	ents, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &OpError{Op: "read " + NetnsDir, Err: err}
	}
	var removed []string
	var first error
	for _, e := range ents {
		pid, ok := ownerPID(e.Name(), prefix)
		if !ok || alive(pid) {
			continue
		}
		if err := unmount(filepath.Join(NetnsDir, e.Name())); err != nil {
			if first == nil {
				first = &OpError{Op: "remove stale namespace", NS: e.Name(), Err: err}
			}
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, first
}

// ownerPID parses the creating process id out of a namespace name
// PREFIX-PID36-RAND-ROLE.
func ownerPID(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return 0, false
	}
	f := strings.SplitN(rest, "-", 3)
	if len(f) != 3 {
		return 0, false
	}
	pid, err := strconv.ParseInt(f[0], 36, 32)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return int(pid), true
}

func alive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// waitIPv6 waits until the interface listens to the solicited-node
// multicast group of each IPv6 address in addrs. The kernel joins them
// asynchronously once the link is up; a neighbour solicitation that
// arrives earlier is dropped and the sender retries only after a second.
func (n *NS) waitIPv6(name string, addrs []netip.Prefix) error {
	var want []string
	for _, p := range addrs {
		if a := p.Addr(); a.Is6() && !a.Is4In6() {
			b := a.As16()
			g := [16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]}
			want = append(want, hex.EncodeToString(g[:]))
		}
	}
	if len(want) == 0 {
		return nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var groups []byte
		// /proc/thread-self/net is the namespace of the thread.
		err := n.Do(func() (err error) { groups, err = os.ReadFile("/proc/thread-self/net/igmp6"); return })
		if err != nil {
			return &OpError{Op: "read igmp6", NS: n.name, Err: err}
		}
		missing := 0
		for _, g := range want {
			if !hasGroup(string(groups), name, g) {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return &OpError{Op: "wait for IPv6 on " + name, NS: n.name, Err: errors.New("solicited-node groups not joined within 5s")}
		}
		time.Sleep(time.Millisecond)
	}
}

// hasGroup reports whether /proc/net/igmp6 text lists group on dev.
func hasGroup(igmp6, dev, group string) bool {
	for _, line := range strings.Split(igmp6, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == dev && f[2] == group {
			return true
		}
	}
	return false
}
