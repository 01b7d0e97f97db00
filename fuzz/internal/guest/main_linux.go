package guest

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synproxy-lite/synproxy-lite/fuzz/parity"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
)

// Addresses inside the guest (an isolated machine).
var (
	server4 = netip.MustParseAddr("10.0.0.1")
	client4 = netip.MustParseAddr("10.0.0.2")
	server6 = netip.MustParseAddr("fd00::1")
	client6 = netip.MustParseAddr("fd00::2")
	spoof4  = netip.MustParsePrefix("10.1.0.0/16")
	spoof6  = netip.MustParsePrefix("fd01::/64")
)

type guest struct {
	cfg    parity.Config
	out    *parity.Writer
	bw     *bufio.Writer
	lab    *netlab.Lab
	srv    *netlab.NS // the server: the synproxy ruleset, the ACK probes' listener
	client *netlab.NS
	kc     *Kcore
	syms   map[string]uint64
	rx     *netlab.PacketConn // client side capture
	tx     *netlab.PacketConn // client side, full checksums
	txv    *netlab.PacketConn // client side, virtio-net header
	srvMAC net.HardwareAddr
	notes  map[string]string
	v6Mode string // "full" or "vnet"
	start  time.Time
}

func (g *guest) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "parity-init: "+format+"\n", args...)
	g.out.Log(format, args...)
}

// Main runs the guest and powers the machine off. It never returns on
// success.
func Main() error {
	err := run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "parity-init: FAILED: %v\n", err)
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	return err
}

func run() error {
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
	} {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.typ, 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	ch, err := os.OpenFile("/dev/ttyS1", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("result channel: %w", err)
	}
	if t, err := unix.IoctlGetTermios(int(ch.Fd()), unix.TCGETS); err == nil {
		t.Oflag &^= unix.OPOST
		t.Cflag = t.Cflag&^unix.CBAUD | unix.B4000000
		unix.IoctlSetTermios(int(ch.Fd()), unix.TCSETS, t)
	}
	g := &guest{bw: bufio.NewWriterSize(ch, 1<<16), notes: map[string]string{}, start: time.Now()}
	g.out = parity.NewWriter(g.bw)
	sum := &parity.Summary{}
	err = g.main(sum)
	if err != nil {
		sum.Error = err.Error()
	}
	sum.Seconds = time.Since(g.start).Seconds()
	sum.Notes = g.notes
	g.out.Summary(sum)
	g.bw.Flush()
	ch.Sync()
	ch.Close()
	return err
}

func (g *guest) main(sum *parity.Summary) error {
	b, err := os.ReadFile("/parity.json")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &g.cfg); err != nil {
		return fmt.Errorf("parity.json: %w", err)
	}
	if err := loadModules("/modules"); err != nil {
		return err
	}
	if err := g.setup(); err != nil {
		return err
	}
	g.logf("network ready after %.1fs", time.Since(g.start).Seconds())
	return g.synStream(sum)
}

func loadModules(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.ko"))
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("load module %s: %w", filepath.Base(n), err)
		}
	}
	return nil
}

func (g *guest) setup() error {
	// The machine is the guest's alone: no earlier run to sweep.
	var err error
	if g.lab, err = netlab.New(&netlab.Config{Prefix: "splg"}); err != nil {
		return err
	}
	if g.srv, err = g.lab.AddNS("srv"); err != nil {
		return err
	}
	if g.client, err = g.lab.AddNS("cli"); err != nil {
		return err
	}
	err = g.lab.Link(g.srv, g.client, &netlab.LinkConfig{AName: "srv0", BName: "cli0",
		AAddrs: []netip.Prefix{netip.PrefixFrom(server4, 30), netip.PrefixFrom(server6, 64)},
		BAddrs: []netip.Prefix{netip.PrefixFrom(client4, 30), netip.PrefixFrom(client6, 64)}})
	if err != nil {
		return err
	}
	for _, r := range []struct {
		dst netip.Prefix
		gw  netip.Addr
	}{{spoof4, client4}, {spoof6, client6}} {
		if err := g.srv.AddRoute(r.dst, r.gw, "srv0"); err != nil {
			return err
		}
	}
	if g.srvMAC, err = g.srv.HardwareAddr("srv0"); err != nil {
		return err
	}
	if g.rx, err = g.client.OpenPacket("cli0", false); err != nil {
		return err
	}
	if g.tx, err = g.client.OpenPacket("cli0", false); err != nil {
		return err
	}
	if g.txv, err = g.client.OpenPacket("cli0", true); err != nil {
		return err
	}
	if _, err := g.srv.Synproxy("parity", g.cfg.Rule); err != nil {
		return err
	}
	if err := g.srv.SetSysctl("net.netfilter.nf_conntrack_tcp_loose", "0"); err != nil {
		return err
	}
	// Not a namespace's: the kernel's symbol addresses for everyone.
	if err := os.WriteFile("/proc/sys/kernel/kptr_restrict", []byte("0"), 0); err != nil {
		return fmt.Errorf("kptr_restrict: %w", err)
	}
	if g.syms, err = Kallsyms("syncookie_secret", "syncookie6_secret", "jiffies_64"); err != nil {
		return err
	}
	g.kc, err = OpenKcore()
	return err
}

func (g *guest) jiffies() uint64 {
	j, err := g.kc.U64(g.syms["jiffies_64"])
	if err != nil {
		panic(err)
	}
	return j
}

func monoMs() uint32 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint32(uint64(ts.Sec)*1000 + uint64(ts.Nsec)/1e6)
}

func (g *guest) secret(sym string) (string, error) {
	var b [32]byte
	if err := g.kc.Read(g.syms[sym], b[:]); err != nil {
		return "", err
	}
	if b == [32]byte{} {
		return "", fmt.Errorf("%s is still zero", sym)
	}
	return hex.EncodeToString(b[:]), nil
}

func (g *guest) header() (*parity.Header, error) {
	h := &parity.Header{Rule: g.cfg.Rule, Seed: g.cfg.Seed}
	var err error
	if h.Key4, err = g.secret("syncookie_secret"); err != nil {
		return nil, err
	}
	if h.Key6, err = g.secret("syncookie6_secret"); err != nil {
		return nil, err
	}
	var u unix.Utsname
	unix.Uname(&u)
	h.Kernel = unix.ByteSliceToString(u.Release[:])
	v, _ := os.ReadFile("/proc/version")
	h.Uname = strings.TrimSpace(string(v))
	ttl, _ := g.srv.Sysctl("net.ipv4.ip_default_ttl")
	hl, _ := g.srv.Sysctl("net.ipv6.conf.all.hop_limit")
	fmt.Sscan(ttl, &h.TTL)
	fmt.Sscan(hl, &h.HopLimit)
	return h, nil
}

// frame wraps an IP packet in an Ethernet header from the client to the
// server veth.
func (g *guest) frame(dst []byte, ip []byte) []byte {
	dst = append(dst, g.srvMAC...)
	dst = append(dst, g.tx.MAC...)
	if ip[0]>>4 == 6 {
		dst = append(dst, 0x86, 0xdd)
	} else {
		dst = append(dst, 0x08, 0x00)
	}
	return append(dst, ip...)
}

// send sends an IP packet from the client side; IPv6 goes the way probed to
// work on this kernel.
func (g *guest) send(ip []byte, v6 bool) error {
	if v6 && g.v6Mode == "vnet" {
		f := g.frame(nil, ip)
		l4 := parity.PartialChecksum(f[14:])
		return g.txv.SendPartial(f, 14+l4)
	}
	return g.tx.Send(g.frame(nil, ip))
}
