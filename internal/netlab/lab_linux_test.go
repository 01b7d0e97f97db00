package netlab_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// The address plan of this package's tests: 10.99.0.0/24, fd00:99:0::/64.
var (
	net4 = netip.MustParsePrefix("10.99.0.0/24")
	net6 = netip.MustParsePrefix("fd00:99:0::/64")
)

const prefix = "spll"

func needIP(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIPPED LOUDLY: iproute2's ip is not installed (scripts/test-deps.sh installs it)")
	}
}

// ping sends one ICMP echo request from ns to dst and waits for the reply.
func ping(ns *netlab.NS, dst netip.Addr) error { return pingWithin(ns, dst, 5*time.Second) }

// pingWithin is ping waiting at most d.
func pingWithin(ns *netlab.NS, dst netip.Addr, d time.Duration) error {
	network, typ := "ip4:icmp", byte(8)
	if dst.Is6() {
		network, typ = "ip6:ipv6-icmp", 128
	}
	var c net.PacketConn
	if err := ns.Do(func() (err error) { c, err = net.ListenPacket(network, ""); return }); err != nil {
		return err
	}
	defer c.Close()
	id := uint16(os.Getpid())
	req := []byte{typ, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 's', 'p', 'l'}
	if dst.Is4() {
		binary.BigEndian.PutUint16(req[2:], packet.Checksum(req))
	} // the kernel fills the ICMPv6 checksum
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.WriteTo(req, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("ping %v: %w", dst, err)
		}
		a, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		if a.Unmap() == dst && n >= 8 && (buf[0] == 0 || buf[0] == 129) &&
			binary.BigEndian.Uint16(buf[4:]) == id && bytes.HasSuffix(buf[:n], []byte("spl")) {
			return nil
		}
	}
}

// echo checks a TCP round trip from client to a listener at addr in server.
func echo(t *testing.T, client, server *netlab.NS, addr netip.AddrPort) {
	t.Helper()
	ln, err := server.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		t.Fatalf("dial %v: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := []byte("hello across " + addr.String())
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo via %v: %q, %v", addr, got, err)
	}
}

func TestPair(t *testing.T) {
	needIP(t)
	p := netlabtest.NewPair(t, prefix, net4, net6)
	for _, dst := range []netip.Addr{p.B4, p.B6} {
		if err := ping(p.A, dst); err != nil {
			t.Errorf("ping %v: %v", dst, err)
		}
	}
	if err := ping(p.B, p.A6); err != nil {
		t.Errorf("ping back: %v", err)
	}
	echo(t, p.A, p.B, netip.AddrPortFrom(p.B4, 7001))
	echo(t, p.A, p.B, netip.AddrPortFrom(p.B6, 7001))
	echo(t, p.B, p.A, netip.AddrPortFrom(p.A6, 7002))

	// The two ends have different interface indexes (equal ones delay
	// IPv6 readiness by up to a second, see Link).
	ia, err := p.A.LinkIndex("veth0")
	if err != nil {
		t.Fatal(err)
	}
	if ib, err := p.B.LinkIndex("veth0"); err != nil || ia == ib {
		t.Errorf("veth ends have indexes %d and %d (%v)", ia, ib, err)
	}

	// The kernel's view, through iproute2.
	out, err := exec.Command("ip", "-n", p.A.Name(), "addr", "show", "dev", "veth0").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr: %v\n%s", err, out)
	}
	for _, want := range []string{"10.99.0.1/24", "fd00:99::1/64", "UP", "LOWER_UP"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ip -n %s addr show dev veth0 lacks %q:\n%s", p.A.Name(), want, out)
		}
	}
	if strings.Contains(string(out), "tentative") {
		t.Errorf("IPv6 address still in DAD:\n%s", out)
	}
	out, _ = exec.Command("ip", "-n", p.B.Name(), "link", "show", "lo").CombinedOutput()
	if !strings.Contains(string(out), "UP") {
		t.Errorf("lo is not up in %s:\n%s", p.B.Name(), out)
	}
	// `ip netns exec` sees the namespace too.
	out, err = exec.Command("ip", "netns", "exec", p.B.Name(), "ip", "-6", "addr", "show", "dev", "veth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "fd00:99::2/64") {
		t.Errorf("ip netns exec: %v\n%s", err, out)
	}
}

// A routed lab: a - r - b, r forwarding, a and b with default routes.
func TestRouted(t *testing.T) {
	l := netlabtest.New(t, prefix)
	a, err := l.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.AddNS("r")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddNS("b")
	if err != nil {
		t.Fatal(err)
	}
	// Two /26s of the package's /24, two /80s of its /64.
	a4, b4 := netip.MustParsePrefix("10.99.0.64/26"), netip.MustParsePrefix("10.99.0.128/26")
	a6, b6 := netip.MustParsePrefix("fd00:99:0:0:a::/80"), netip.MustParsePrefix("fd00:99:0:0:b::/80")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.Link(a, r, &netlab.LinkConfig{AAddrs: []netip.Prefix{netlab.Host(a4, 1), netlab.Host(a6, 1)},
		BAddrs: []netip.Prefix{netlab.Host(a4, 2), netlab.Host(a6, 2)}, MTU: 1400}))
	must(l.Link(b, r, &netlab.LinkConfig{AAddrs: []netip.Prefix{netlab.Host(b4, 1), netlab.Host(b6, 1)},
		BAddrs: []netip.Prefix{netlab.Host(b4, 2), netlab.Host(b6, 2)}}))
	must(r.SetSysctl("net.ipv4.ip_forward", "1"))
	must(r.SetSysctl("net.ipv6.conf.all.forwarding", "1"))
	must(a.DefaultRoute(netlab.Host(a4, 2).Addr()))
	must(a.DefaultRoute(netlab.Host(a6, 2).Addr()))
	// b gets specific routes instead of default ones.
	must(b.AddRoute(a4, netlab.Host(b4, 2).Addr(), "vr"))
	must(b.AddRoute(a6, netlab.Host(b6, 2).Addr(), ""))

	if err := ping(a, netlab.Host(b4, 1).Addr()); err != nil {
		t.Error(err)
	}
	if err := ping(b, netlab.Host(a6, 1).Addr()); err != nil {
		t.Error(err)
	}
	echo(t, a, b, netip.AddrPortFrom(netlab.Host(b4, 1).Addr(), 7003))
	echo(t, a, b, netip.AddrPortFrom(netlab.Host(b6, 1).Addr(), 7003))
	// Without forwarding the router stops routing.
	must(r.SetSysctl("net/ipv4/ip_forward", "0"))
	if err := pingWithin(a, netlab.Host(b4, 1).Addr(), time.Second); err == nil {
		t.Error("ping crossed a router with ip_forward=0")
	}
	if mtu, err := exec.Command("ip", "-n", a.Name(), "-o", "link", "show", "vr").CombinedOutput(); err == nil &&
		!strings.Contains(string(mtu), "mtu 1400") {
		t.Errorf("MTU not applied: %s", mtu)
	}
}

func TestSysctlAndCommand(t *testing.T) {
	p := netlabtest.NewPair(t, prefix, net4, net6)
	host, err := os.ReadFile("/proc/sys/net/ipv4/tcp_timestamps")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"0", "1"} {
		if err := p.A.SetSysctl("net.ipv4.tcp_timestamps", v); err != nil {
			t.Fatal(err)
		}
		got, err := p.A.Sysctl("net.ipv4.tcp_timestamps")
		if err != nil || got != v {
			t.Fatalf("sysctl read back %q, %v; want %q", got, err, v)
		}
		// A child started in the namespace sees the namespace's value.
		out, err := p.A.CombinedOutput(context.Background(), "cat", "/proc/sys/net/ipv4/tcp_timestamps")
		if err != nil || strings.TrimSpace(string(out)) != v {
			t.Fatalf("child in namespace read %q, %v; want %q", out, err, v)
		}
	}
	if err := p.A.SetSysctl("net.ipv4.tcp_timestamps", "0"); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_timestamps"); !bytes.Equal(now, host) {
		t.Errorf("the host's sysctl changed: %q -> %q", host, now)
	}
	if err := p.A.SetSysctl("net.ipv4.no_such_thing", "1"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unknown sysctl: %v", err)
	}
	// A command sees the namespace's interfaces (through netlink).
	if _, err := exec.LookPath("ip"); err == nil {
		out, err := p.B.CombinedOutput(context.Background(), "ip", "-o", "addr", "show")
		if err != nil || !strings.Contains(string(out), "10.99.0.2/24") || strings.Contains(string(out), "10.99.0.1/24") {
			t.Errorf("ip addr inside B: %v\n%s", err, out)
		}
	}
	// A failing command reports its exit status.
	var ee *exec.ExitError
	if _, err := p.A.CombinedOutput(context.Background(), "false"); !errors.As(err, &ee) {
		t.Errorf("false: %v", err)
	}
}

// Do leaves the thread in the namespace it found it in.
func TestDoRestores(t *testing.T) {
	p := netlabtest.NewPair(t, prefix, net4, net6)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := nsInode(t, "/proc/thread-self/ns/net")
	var inside uint64
	err := p.A.Do(func() error {
		inside = nsInode(t, "/proc/thread-self/ns/net")
		return p.B.Do(func() error {
			if nsInode(t, "/proc/thread-self/ns/net") != nsInode(t, p.B.Path()) {
				t.Error("nested Do is not in B")
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != nsInode(t, p.A.Path()) {
		t.Error("Do did not run in A")
	}
	if after := nsInode(t, "/proc/thread-self/ns/net"); after != before {
		t.Errorf("thread left in namespace %d, was %d", after, before)
	}
	want := errors.New("from fn")
	if err := p.A.Do(func() error { return want }); err != want {
		t.Errorf("Do returned %v, want fn's error", err)
	}
}

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// leftovers lists what is left of a lab: mount points and bind mounts.
func leftovers(t *testing.T, id string) []string {
	t.Helper()
	var left []string
	ents, _ := os.ReadDir(netlab.NetnsDir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), id) {
			left = append(left, filepath.Join(netlab.NetnsDir, e.Name()))
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, " "+netlab.NetnsDir+"/"+id) {
			left = append(left, "mount: "+line)
		}
	}
	return left
}

// Errors part-way through leave nothing behind once the lab is closed.
func TestCloseAfterErrors(t *testing.T) {
	netlabtest.Need(t)
	fds := openFDs(t)
	l, err := netlab.New(&netlab.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.AddNS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddNS("b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddNS("a"); err == nil {
		t.Error("a second namespace with role a")
	}
	if err := l.Link(a, b, &netlab.LinkConfig{AName: "much-too-long-name"}); err == nil {
		t.Error("interface name of 18 bytes accepted")
	}
	var oe *netlab.OpError
	if err := a.AddAddr("nope0", netlab.Host(net4, 1)); !errors.As(err, &oe) || oe.NS != a.Name() {
		t.Errorf("address on a missing interface: %v", err)
	}
	if err := l.Link(a, b, &netlab.LinkConfig{AAddrs: []netip.Prefix{netlab.Host(net4, 1), netlab.Host(net4, 1)}}); !errors.As(err, &oe) ||
		!errors.Is(err, unix.EEXIST) {
		t.Errorf("duplicate address: %v", err)
	}
	if err := a.DefaultRoute(netip.MustParseAddr("10.98.0.1")); !errors.Is(err, unix.ENETUNREACH) {
		t.Errorf("unreachable gateway: %v", err)
	}
	if err := a.AddRoute(netip.MustParsePrefix("10.98.0.0/16"), netip.MustParseAddr("fd00::1"), ""); err == nil {
		t.Error("mixed-family route accepted")
	}
	if got := leftovers(t, l.ID()); len(got) != 2*2 {
		t.Errorf("expected 2 namespaces and 2 mounts, have %q", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := leftovers(t, l.ID()); len(got) != 0 {
		t.Errorf("left behind: %q", got)
	}
	if now := openFDs(t); now != fds {
		t.Errorf("%d file descriptors open before the lab, %d after Close", fds, now)
	}
	if _, err := l.AddNS("c"); !errors.Is(err, netlab.ErrClosed) {
		t.Errorf("AddNS after Close: %v", err)
	}
}

const failEnv = "SPL_LAB_FAILING_CHILD"

// A test that fails (t.Fatal) still removes its lab: the failing test runs
// in a child process, this one checks what it left.
func TestCleanupAfterFailure(t *testing.T) {
	if os.Getenv(failEnv) != "" {
		p := netlabtest.NewPair(t, prefix, net4, net6)
		fmt.Println("LAB-ID", p.Lab.ID())
		t.Fatal("deliberate failure with a lab open")
	}
	netlabtest.Need(t)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestCleanupAfterFailure$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), failEnv+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "deliberate failure") {
		t.Fatalf("child did not fail as planned: %v\n%s", err, out)
	}
	var id string
	for _, line := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(line, "LAB-ID "); ok {
			id = strings.TrimSpace(s)
		}
	}
	if id == "" {
		t.Fatalf("child printed no lab id:\n%s", out)
	}
	if got := leftovers(t, id); len(got) != 0 {
		t.Errorf("failing test left behind: %q", got)
	}
}

// Sweep removes the namespaces of dead processes and only those.
func TestSweep(t *testing.T) {
	netlabtest.Need(t)
	const sp = "splls" // a prefix of its own: other tests' labs are not involved
	live := netlabtest.New(t, sp)
	if _, err := live.AddNS("live"); err != nil {
		t.Fatal(err)
	}
	// A process that is gone: a child that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	// Make a namespace as a crashed run would have: create it and "forget"
	// it by renaming its mount point to the dead process's name.
	tmp, err := netlab.New(&netlab.Config{Prefix: sp})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := tmp.AddNS("crashed")
	if err != nil {
		t.Fatal(err)
	}
	stale := sp + "-" + strconv.FormatInt(int64(dead.Process.Pid), 36) + "-beef-crashed"
	stalePath := filepath.Join(netlab.NetnsDir, stale)
	if err := os.WriteFile(stalePath, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(ns.Path(), stalePath, "none", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	t.Cleanup(func() { unix.Unmount(stalePath, unix.MNT_DETACH); os.Remove(stalePath) })

	// Another prefix's stale namespace name is not ours to remove.
	removed, err := netlab.Sweep(sp)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != stale {
		t.Fatalf("Sweep removed %q, want [%s]", removed, stale)
	}
	if _, err := os.Stat(stalePath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale mount point still there: %v", err)
	}
	if got := leftovers(t, live.ID()); len(got) != 2 {
		t.Errorf("Sweep touched a live lab: %q", got)
	}
	if removed, _ := netlab.Sweep(sp); len(removed) != 0 {
		t.Errorf("second Sweep removed %q", removed)
	}
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
