//go:build linux

// Command bench measures SYN-flood handling side by side: the kernel's
// nftables synproxy, synproxy-lite with the nfqueue driver and
// synproxy-lite with the afpacket driver, each answering the same bounded
// SYN flood from Debian's trafgen (netsniff-ng) in a lab of network
// namespaces, while a legitimate client keeps connecting. It writes a
// markdown table and a PNG plot. Then it measures what a known client (one
// that connected before the flood) gets during a flood from many sources,
// with and without proven clients first, against the kernel's synproxy
// (known.go; bench-known.md).
//
// CPU per SYN-ACK is measured against a baseline pass of the same run: the
// same flood with nothing answering, the SYNs dropped by an nft rule at the
// proxy's prerouting hook, priority raw (the earliest point where any of the
// three responders takes them). A pass's CPU is the CPU time of the
// processes the run consists of (trafgen, the daemon, this harness with its
// legitimate client and service, the ksoftirqd threads) from the start of
// the flood until its SYN-ACKs settle; a responder's CPU is its pass's minus
// the baseline's, scaled to the same number of SYNs sent. On a veth pair
// the receiver's softirq work runs in the sender's context and is charged
// to the sender (trafgen's system time for the kernel's synproxy), so
// nothing is subtracted per process: the baseline removes what generating
// the flood costs. The busy time of all CPUs (/proc/stat) is recorded as a
// cross-check; on a shared machine it also holds other work.
//
// It is a module of its own (bench/go.mod), so that its plotting library
// stays out of the main module's dependencies:
//
//	make bench                    (needs root, trafgen, nft, ip)
//	cd bench && go run . -n 200000
package main

import (
	"context"
	"flag"
	"fmt"
	"image/color"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
)

// Addresses: 10.99.40.0/24 (lab), spoofed sources in 10.99.41.0/24.
const (
	cliIP   = "10.99.40.1"
	prxIP   = "10.99.40.2"
	attIP   = "10.99.40.3"
	spoofed = "10.99.41.0/24"
)

type row struct {
	name     string
	synacks  uint64
	secs     float64
	rate     float64
	cpuPerM  float64 // CPU seconds per million SYN-ACKs
	rssKiB   int64
	legitOK  int
	legitN   int
	p50, p99 time.Duration
	lat      []time.Duration // the legitimate client's request times (the ones that succeeded)
	sent     uint64
	ownCPU   float64 // CPU seconds of the run's processes during the flood
	busyCPU  float64 // busy CPU seconds of all CPUs during the flood (cross-check)
	floodCPU float64 // ownCPU minus the baseline's, scaled to sent
	genCPU   float64 // trafgen's user+system time (rusage), part of ownCPU
	dmnCPU   float64 // the daemon's, part of ownCPU
	sirqCPU  float64 // the ksoftirqd threads', part of ownCPU
	bgCPU    float64 // CPUs busy (0..NumCPU) in the second before the flood

	// The bulk transfer through a handed-over connection (daemon rows).
	bulkBytes int64   // bytes the client pushed
	bulkSecs  float64 // how long it took
	bulkCPU   float64 // the daemon's CPU seconds during it
	bulkPkts  float64 // engine packets (synproxy_lite_packets_total) during it
	bulkSegs  float64 // data segments the client sent (tcpi_data_segs_out)
}

func main() {
	out := flag.String("out", "", "directory for bench.md and img/bench.png (default: the main module's docs)")
	n := flag.Int("n", 1000000, "SYNs per flood")
	bin := flag.String("bin", "", "synproxy-lite binary (default: built into a temporary directory)")
	runs := flag.Int("runs", 1, "runs of every pass; the table shows each figure's median")
	bulkSize := flag.Int64("bulk", 1<<30, "bytes pushed through a handed-over connection per driver (0: no bulk row)")
	only := flag.String("modes", "", "comma-separated passes to run (default: all); the kernel's always runs; none: no pass but the known client's")
	known := flag.String("known", "kernel,nfqueue,nfqueue-proven,afpacket-proven,afxdp-proven",
		"comma-separated known-client passes (written to bench-known.md); empty: none")
	flag.Parse()
	if os.Geteuid() != 0 {
		log.Fatal("bench: needs root (network namespaces, nftables)")
	}
	for _, tool := range []string{"ip", "nft", "trafgen"} {
		if _, err := exec.LookPath(tool); err != nil {
			log.Fatalf("bench: %s is not installed (trafgen: Debian package netsniff-ng)", tool)
		}
	}
	root, err := mainModuleDir()
	if err != nil {
		log.Fatalf("bench: %v", err)
	}
	if *out == "" {
		*out = filepath.Join(root, "docs")
	}
	if *bin == "" {
		dir, err := os.MkdirTemp("", "splbench")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		*bin = filepath.Join(dir, "synproxy-lite")
		// Built in the main module, with its go.mod's versions.
		build := exec.Command("go", "build", "-o", *bin, "./cmd/synproxy-lite")
		build.Dir = root
		if b, err := build.CombinedOutput(); err != nil {
			log.Fatalf("bench: build: %v\n%s", err, b)
		}
	}
	modes := []string{"kernel", "ceiling", "nfqueue", "afpacket"}
	if supports(*bin, "afxdp") {
		modes = append(modes, "afxdp")
	}
	if *only != "" {
		want := strings.Split(*only, ",")
		modes = slices.DeleteFunc(modes, func(m string) bool { return m != "kernel" && !slices.Contains(want, m) })
		if *only == "none" {
			modes = nil
		}
	}
	if len(modes) > 0 {
		mainPasses(*bin, *out, modes, *n, *runs, *bulkSize)
	}
	if *known != "" {
		knownPasses(*bin, *out, strings.Split(*known, ","), *n, *runs)
	}
}

// mainPasses runs the baseline and modes runs times and writes bench.md and
// the plot.
func mainPasses(bin, out string, modes []string, n, runs int, bulkSize int64) {
	var bases []row
	all := make([][]row, len(modes))
	for run := 1; run <= runs; run++ {
		base, err := measure(pass{mode: "baseline"}, bin, n, 0)
		if err != nil {
			log.Fatalf("bench: baseline: %v", err)
		}
		if base.synacks > uint64(n)/100 {
			log.Fatalf("bench: baseline: %d packets came back with nothing answering", base.synacks)
		}
		log.Printf("run %d/%d: %-9s %8.3f CPU-s for %d SYNs in %.2f s (trafgen %.3f, ksoftirqd %.3f; all CPUs %.3f), background %.2f CPUs",
			run, runs, base.name, base.ownCPU, base.sent, base.secs, base.genCPU, base.sirqCPU, base.busyCPU, base.bgCPU)
		bases = append(bases, base)
		for i, mode := range modes {
			r, err := measure(pass{mode: mode}, bin, n, bulkSize)
			if err != nil {
				log.Fatalf("bench: %s: %v", mode, err)
			}
			r.floodCPU = r.ownCPU - base.ownCPU*float64(r.sent)/float64(base.sent)
			if r.synacks > 0 {
				r.cpuPerM = r.floodCPU / (float64(r.synacks) / 1e6)
			}
			log.Printf("run %d/%d: %-9s %8.0f SYN-ACK/s  %.3f CPU-s/M (own %.3f: trafgen %.3f daemon %.3f ksoftirqd %.3f; all CPUs %.3f; background %.2f CPUs)  RSS %d KiB  legit %d/%d p50 %v p99 %v",
				run, runs, r.name, r.rate, r.cpuPerM, r.ownCPU, r.genCPU, r.dmnCPU, r.sirqCPU, r.busyCPU, r.bgCPU, r.rssKiB, r.legitOK, r.legitN, r.p50, r.p99)
			if r.bulkBytes > 0 {
				log.Printf("run %d/%d: %-9s bulk %d bytes in %.2f s: daemon %.3f CPU-s, %.0f engine packets, %.0f data segments",
					run, runs, r.name, r.bulkBytes, r.bulkSecs, r.bulkCPU, r.bulkPkts, r.bulkSegs)
			}
			all[i] = append(all[i], r)
		}
	}
	base := medianRow(bases)
	var rows []row
	for _, rs := range all {
		rows = append(rows, medianRow(rs))
	}
	if err := write(out, base, rows, n, runs); err != nil {
		log.Fatal(err)
	}
}

// mainModuleDir returns the directory of the synproxy-lite module (bench's
// go.mod replaces it with ..).
func mainModuleDir() (string, error) {
	b, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/synproxy-lite/synproxy-lite").Output()
	dir := strings.TrimSpace(string(b))
	if err != nil || dir == "" {
		return "", fmt.Errorf("finding the synproxy-lite module (run in bench/): %v", err)
	}
	return filepath.Abs(dir)
}

func sh(args ...string) error {
	b, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, b)
	}
	return nil
}

// attDev is the attacker's interface, where trafgen sends and the
// SYN-ACKs are counted.
const attDev = "veth0"

// lab is the client, the attacker and the proxy namespace, the first two
// joined to a bridge in the proxy namespace. cli, prx and att are their
// names, for ip netns exec.
type lab struct {
	l             *netlab.Lab
	cli, prx, att string
	prxNS         *netlab.NS
	cliNS, attNS  *netlab.NS
}

func newLab() (*lab, error) {
	if _, err := netlab.Sweep("splb"); err != nil {
		log.Printf("bench: sweeping stale namespaces: %v", err)
	}
	nl, err := netlab.New(&netlab.Config{Prefix: "splb"})
	if err != nil {
		return nil, err
	}
	l := &lab{l: nl}
	if err := l.build(); err != nil {
		nl.Close()
		return nil, err
	}
	return l, nil
}

func (l *lab) build() (err error) {
	if l.cliNS, err = l.l.AddNS("cli"); err != nil {
		return err
	}
	if l.prxNS, err = l.l.AddNS("prx"); err != nil {
		return err
	}
	if l.attNS, err = l.l.AddNS("att"); err != nil {
		return err
	}
	l.cli, l.prx, l.att = l.cliNS.Name(), l.prxNS.Name(), l.attNS.Name()
	if err := l.prxNS.AddBridge("br0"); err != nil {
		return err
	}
	if err := l.prxNS.AddAddr("br0", netip.MustParsePrefix(prxIP+"/24")); err != nil {
		return err
	}
	for _, e := range []struct {
		ns   *netlab.NS
		ip   string
		port string
	}{{l.cliNS, cliIP, "pc"}, {l.attNS, attIP, "pa"}} {
		err := l.l.Link(e.ns, l.prxNS, &netlab.LinkConfig{AName: "veth0", BName: e.port, BMaster: "br0",
			AAddrs: []netip.Prefix{netip.MustParsePrefix(e.ip + "/24")}})
		if err != nil {
			return err
		}
	}
	if err := l.prxNS.AddRoute(netip.MustParsePrefix(spoofed), netip.MustParseAddr(attIP), ""); err != nil {
		return err
	}
	for _, k := range []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"} {
		_ = l.prxNS.SetSysctl(k, "0") // absent without br_netfilter
	}
	return nil
}

func (l *lab) close() { l.l.Close() }

// inNS runs f on a thread inside namespace ns.
func inNS(ns string, f func() error) error { return netlab.DoNamed(ns, f) }

// cpuBusy returns the busy seconds of all CPUs from /proc/stat: user, nice,
// system, irq and softirq; not idle, iowait, steal (time the hypervisor gave
// to someone else) nor guest (already in user).
func cpuBusy() float64 {
	b, _ := os.ReadFile("/proc/stat")
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	var busy float64
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i == 3 || i == 4 || i >= 7 { // idle, iowait, steal, guest, guest_nice
			continue
		}
		busy += x
	}
	return busy / 100 // USER_HZ
}

// rxPackets reads dev's receive counter in namespace ns from
// /proc/thread-self/net/dev, which shows the reading thread's namespace (no
// process is started, so polling it costs next to no CPU).
// procCPU returns the user+system seconds of process pid, all its threads
// (dead ones included), from /proc/pid/stat; 0 if it is gone.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// ksoftirqds returns the pids of the ksoftirqd threads, which take over
// softirq work that the context that raised it left pending.
func ksoftirqds() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.HasPrefix(string(b), "ksoftirqd/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// selfCPU returns this process's user+system seconds.
func selfCPU() float64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func rxPackets(ns, dev string) uint64 {
	var b []byte
	if err := inNS(ns, func() (e error) { b, e = os.ReadFile("/proc/thread-self/net/dev"); return }); err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != dev {
			continue
		}
		f := strings.Fields(rest) // rx bytes, rx packets, ...
		if len(f) < 2 {
			return 0
		}
		v, _ := strconv.ParseUint(f[1], 10, 64)
		return v
	}
	return 0
}

func hwm(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			v, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return v
		}
	}
	return 0
}

// supports reports whether the binary offers driver name: its run
// subcommand's usage describes --driver with the names of the drivers it
// was built with (the flag package prints the description on the line
// after "-driver").
func supports(bin, name string) bool {
	b, _ := exec.Command(bin, "run", "--help").CombinedOutput()
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "-driver" && f[0] != "--driver" {
			continue
		}
		desc := line
		// The flag package's usage puts the description on the next
		// line; GNU-style help (--driver) on the same one.
		if f[0] == "-driver" && i+1 < len(lines) {
			desc += " " + lines[i+1]
		}
		return slices.Contains(strings.FieldsFunc(desc, func(r rune) bool {
			return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
		}), name)
	}
	return false
}

// medianRow returns a row whose every figure is the median of rs's (the
// legitimate clients are summed).
func medianRow(rs []row) row {
	if len(rs) == 1 {
		return rs[0]
	}
	med := func(f func(r row) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	m := rs[0]
	m.synacks = uint64(med(func(r row) float64 { return float64(r.synacks) }))
	m.secs = med(func(r row) float64 { return r.secs })
	m.rate = med(func(r row) float64 { return r.rate })
	m.cpuPerM = med(func(r row) float64 { return r.cpuPerM })
	m.rssKiB = int64(med(func(r row) float64 { return float64(r.rssKiB) }))
	m.p50 = time.Duration(med(func(r row) float64 { return float64(r.p50) }))
	m.p99 = time.Duration(med(func(r row) float64 { return float64(r.p99) }))
	m.ownCPU = med(func(r row) float64 { return r.ownCPU })
	m.busyCPU = med(func(r row) float64 { return r.busyCPU })
	m.floodCPU = med(func(r row) float64 { return r.floodCPU })
	m.genCPU = med(func(r row) float64 { return r.genCPU })
	m.dmnCPU = med(func(r row) float64 { return r.dmnCPU })
	m.sirqCPU = med(func(r row) float64 { return r.sirqCPU })
	m.bgCPU = med(func(r row) float64 { return r.bgCPU })
	m.bulkSecs = med(func(r row) float64 { return r.bulkSecs })
	m.bulkCPU = med(func(r row) float64 { return r.bulkCPU / float64(max(r.bulkBytes, 1)) }) * float64(m.bulkBytes)
	m.bulkPkts = med(func(r row) float64 { return r.bulkPkts / max(r.bulkSegs, 1) }) * m.bulkSegs
	m.legitOK, m.legitN = 0, 0
	for _, r := range rs {
		m.legitOK += r.legitOK
		m.legitN += r.legitN
	}
	return m
}

// pass is what one measurement runs: a responder (mode: baseline, kernel,
// ceiling or a driver of the daemon) under a flood.
type pass struct {
	mode string
	name string   // the row's name (default: mode)
	args []string // more flags of the daemon
	// spread sends the flood from the 256 addresses of 10.99.41.0/24 (a
	// random one a SYN) instead of one, so that it fills every queue and
	// ring the responder hashes sources over, not just the one its source
	// falls in.
	spread bool
}

func measure(p pass, bin string, n int, bulkSize int64) (r row, err error) {
	mode := p.mode
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	l, err := newLab()
	if err != nil {
		return r, err
	}
	defer l.close()
	r.name = mode
	if p.name != "" {
		r.name = p.name
	}
	svcPort := "8081"
	if mode == "kernel" || mode == "baseline" || mode == "ceiling" {
		svcPort = "8080"
	}
	var ln net.Listener
	if err := inNS(l.prx, func() (e error) { ln, e = net.Listen("tcp", prxIP+":"+svcPort); return }); err != nil {
		return r, err
	}
	// The service drains what a client sends (the bulk transfer) and
	// answers ok.
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		io.WriteString(w, "ok\n")
	})}
	go srv.Serve(ln)
	defer srv.Close()

	var daemon *exec.Cmd
	switch mode {
	case "baseline":
		// Nothing answers the flood: its SYNs are dropped where the
		// responders take them at the earliest (prerouting, priority raw,
		// before conntrack). The legitimate client still connects to the
		// service on 8080, so its cost is in the baseline too.
		rules := `table inet bench {
	chain pre { type filter hook prerouting priority raw; policy accept; ip saddr ` + spoofed + ` tcp dport 8080 drop; }
}
`
		f, _ := os.CreateTemp("", "splbench*.nft")
		f.WriteString(rules)
		f.Close()
		defer os.Remove(f.Name())
		if err := sh("ip", "netns", "exec", l.prx, "nft", "-f", f.Name()); err != nil {
			return r, err
		}
	case "kernel":
		rules := `table inet bench {
	chain pre { type filter hook prerouting priority raw; policy accept; tcp dport 8080 tcp flags syn notrack; }
	chain inp { type filter hook input priority filter; policy accept;
		tcp dport 8080 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
		ct state invalid drop
	}
}
`
		f, _ := os.CreateTemp("", "splbench*.nft")
		f.WriteString(rules)
		f.Close()
		defer os.Remove(f.Name())
		if err := sh("ip", "netns", "exec", l.prx, "nft", "-f", f.Name()); err != nil {
			return r, err
		}
		_ = sh("ip", "netns", "exec", l.prx, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0")
	case "ceiling":
		// The reflector on the proxy's port of the attacker's link. A
		// natively attached program's XDP_TX lands in the peer's XDP
		// receive queue, which a veth only runs while it has an XDP
		// program (or GRO): the attacker's end gets one that passes
		// everything.
		var peer, refl interface{ Close() error }
		var how string
		if err := inNS(l.att, func() (e error) { peer, _, e = xdpAttach(passProgram(), attDev); return }); err != nil {
			return r, err
		}
		defer peer.Close()
		if err := inNS(l.prx, func() (e error) { refl, how, e = xdpAttach(reflectProgram(), "pa"); return }); err != nil {
			return r, err
		}
		defer refl.Close()
		r.name = "ceiling (XDP_TX, " + how + ")"
	default:
		args := []string{"netns", "exec", l.prx, bin, "run", "--port", "8080", "--backend", prxIP + ":8081",
			"--driver", mode, "--workers", "2", "--log-level", "warn", "--metrics", prxIP + ":" + metricsPort,
			// Like for like with the kernel's synproxy, which has no
			// reflection budget: every SYN is answered.
			"--reflect-rate", "0"}
		args = append(args, p.args...)
		if mode == "afpacket" || mode == "afxdp" {
			args = append(args, "--interface", "br0")
		}
		daemon = exec.Command("ip", args...)
		daemon.Stdout, daemon.Stderr = os.Stderr, os.Stderr
		if err := daemon.Start(); err != nil {
			return r, err
		}
		defer func() { daemon.Process.Signal(unix.SIGTERM); daemon.Wait() }()
		time.Sleep(time.Second)
	}
	// Warm up: the legitimate path works before the flood.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			d := net.Dialer{Timeout: 3 * time.Second}
			e := inNS(l.cli, func() error { c, err = d.DialContext(ctx, network, addr); return nil })
			if e != nil {
				return nil, e
			}
			return c, err
		}}}
	get := func() (time.Duration, bool) {
		t0 := time.Now()
		resp, err := client.Get("http://" + prxIP + ":8080/")
		if err != nil {
			return 0, false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return time.Since(t0), string(b) == "ok\n"
	}
	if _, ok := get(); !ok {
		return r, fmt.Errorf("the legitimate client cannot connect before the flood")
	}

	mac, err := l.prxNS.HardwareAddr("br0")
	if err != nil {
		return r, err
	}
	cfg := fmt.Sprintf("{ eth(da=%s), ipv4(saddr=10.99.41.1, daddr=%s, ttl=64), tcp(sp=drnd(), dp=8080, seq=drnd(), syn, window=1024), }\n",
		mac, prxIP)
	if p.spread {
		cfg = spreadFlood(mac)
	}
	cf, _ := os.CreateTemp("", "splbench*.cfg")
	cf.WriteString(cfg)
	cf.Close()
	defer os.Remove(cf.Name())

	// Background: how busy the machine is with the responder idle (other
	// work on a shared machine disturbs every row; reported, not subtracted).
	bg0, tb := cpuBusy(), time.Now()
	time.Sleep(time.Second)
	r.bgCPU = (cpuBusy() - bg0) / time.Since(tb).Seconds()

	sirq := ksoftirqds()
	sirqCPU := func() (t float64) {
		for _, pid := range sirq {
			t += procCPU(pid)
		}
		return t
	}
	dmnCPU := func() float64 {
		if daemon == nil {
			return 0
		}
		return procCPU(daemon.Process.Pid)
	}
	rx0 := rxPackets(l.att, attDev)
	cpu0, self0, sirq0, dmn0 := cpuBusy(), selfCPU(), sirqCPU(), dmnCPU()
	t0 := time.Now()
	gen := exec.Command("ip", "netns", "exec", l.att, "trafgen", "-i", cf.Name(), "-o", attDev, "-n", strconv.Itoa(n), "-P", "1", "-q")
	if err := gen.Start(); err != nil {
		return r, err
	}
	var genDone atomic.Bool
	legitDone := make(chan struct{})
	var lat []time.Duration
	go func() {
		defer close(legitDone)
		for !genDone.Load() {
			d, ok := get()
			r.legitN++
			if ok {
				r.legitOK++
				lat = append(lat, d)
			}
			time.Sleep(20 * time.Millisecond)
			if time.Since(t0) > 60*time.Second {
				return
			}
		}
	}()
	werr := gen.Wait()
	genDone.Store(true)
	if werr != nil {
		return r, fmt.Errorf("trafgen: %v", werr)
	}
	// SYN-ACKs still in flight: wait until the counter settles.
	last := rxPackets(l.att, attDev)
	tEnd := time.Now()
	for i := 0; i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		v := rxPackets(l.att, attDev)
		if v == last {
			break
		}
		last, tEnd = v, time.Now()
	}
	cpu1, self1, sirq1, dmn1 := cpuBusy(), selfCPU(), sirqCPU(), dmnCPU()
	if mode == "nfqueue" {
		// queue, port id, waiting, copy mode, range, queue drops, netlink
		// drops (ENOBUFS), last id, 1
		var t []byte
		inNS(l.prx, func() (e error) { t, e = os.ReadFile("/proc/thread-self/net/netfilter/nfnetlink_queue"); return })
		log.Printf("nfqueue: queues after the flood (num, port, waiting, mode, range, queue drops, netlink drops, last id, 1):\n%s", t)
	}
	<-legitDone
	r.synacks = last - rx0
	r.secs = tEnd.Sub(t0).Seconds()
	r.rate = float64(r.synacks) / r.secs
	gs := gen.ProcessState
	r.genCPU = (gs.UserTime() + gs.SystemTime()).Seconds()
	r.busyCPU = cpu1 - cpu0
	r.dmnCPU = dmn1 - dmn0
	r.sirqCPU = sirq1 - sirq0
	r.ownCPU = r.genCPU + r.dmnCPU + r.sirqCPU + (self1 - self0)
	r.sent = uint64(n)
	if daemon != nil && bulkSize > 0 {
		if err := bulk(&r, l, bulkSize, dmnCPU); err != nil {
			return r, fmt.Errorf("bulk: %v", err)
		}
	}
	if daemon != nil {
		// The daemon is the child of ip netns exec (exec'd in place).
		r.rssKiB = hwm(daemon.Process.Pid)
	}
	slices.Sort(lat)
	r.lat = lat
	if len(lat) > 0 {
		r.p50 = lat[len(lat)/2]
		r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r, nil
}

func write(dir string, base row, rows []row, n, runs int) error {
	commit, _ := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	dirty := ""
	if b, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); len(b) > 0 {
		dirty = " (with uncommitted changes in the tree)"
	}
	cpuModel := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpuModel = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	var u unix.Utsname
	unix.Uname(&u)
	k, ceil := rows[0], row{}
	for _, r := range rows {
		if strings.HasPrefix(r.name, "ceiling") {
			ceil = r
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmark results\n\nWritten by `make bench` (cd bench && go run .) at commit `%s`%s, %s, on %d CPUs (%s), Linux %s.\n\n",
		strings.TrimSpace(string(commit)), dirty, time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), cpuModel,
		unix.ByteSliceToString(u.Release[:]))
	fmt.Fprintf(&b, "Each row answers the same flood: %d spoofed SYNs from trafgen (one process, no rate limit) over a veth pair into a bridge.", n)
	if runs > 1 {
		fmt.Fprintf(&b, " Every pass ran %d times; each figure is the median of its runs (the legitimate clients are summed).", runs)
	}
	b.WriteString(" The ceiling is an XDP program on the proxy's port of the attacker's link that turns each SYN into a SYN-ACK in place " +
		"(addresses and ports swapped, SYN+ACK, checksum updated incrementally, no cookie) and sends it back with XDP_TX: " +
		"the fastest any responder can reflect on this path. Its legitimate clients reach the service through the stack, unproxied.\n\n")
	b.WriteString("| responder | SYN-ACKs | SYN-ACK/s | vs ceiling | vs kernel | CPU s per 1M SYN-ACKs | vs kernel | peak RSS | legit clients | p50 | p99 |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	cpuRatio := func(r row) string {
		if k.cpuPerM <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2fx", r.cpuPerM/k.cpuPerM)
	}
	for _, r := range rows {
		rss := "(kernel)"
		if r.rssKiB > 0 {
			rss = fmt.Sprintf("%.1f MiB", float64(r.rssKiB)/1024)
		}
		vsCeil := "n/a"
		if ceil.rate > 0 {
			vsCeil = fmt.Sprintf("%.2fx", r.rate/ceil.rate)
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %.2fx | %.3f | %s | %s | %d/%d (%.0f%%) | %.1f ms | %.1f ms |\n",
			r.name, r.synacks, r.rate, vsCeil, r.rate/k.rate, r.cpuPerM, cpuRatio(r), rss, r.legitOK, r.legitN,
			100*float64(r.legitOK)/float64(max(r.legitN, 1)), float64(r.p50.Microseconds())/1000, float64(r.p99.Microseconds())/1000)
	}
	fmt.Fprintf(&b, "\nCPU per SYN-ACK is measured against a baseline pass in the same run: the same flood of %d SYNs with nothing answering, "+
		"dropped by an nft rule in the proxy namespace at prerouting, priority raw (before conntrack, the earliest point where any responder takes a SYN). "+
		"A pass's CPU is the CPU time of the processes the run consists of, from the start of its flood until its SYN-ACK counter settles: "+
		"trafgen (rusage), the daemon and the ksoftirqd threads (/proc/PID/stat) and this harness with its legitimate client and service (rusage). "+
		"A row's CPU is its pass's minus the baseline's, scaled to the same number of SYNs sent, divided by the SYN-ACKs that reached the attacker. "+
		"That is the responder's work: the kernel's synproxy in softirq, the daemon's threads, the queue or ring and the SYN-ACKs' way back to the attacker; "+
		"generating the flood and its path up to the drop point are in the baseline and cancel out. "+
		"No process's time is subtracted as \"not the responder's\": on a veth pair the receiver's softirq work runs in the sender's context "+
		"and is charged to the sender, so the kernel's synproxy shows up in trafgen's system time.\n\n", base.sent)
	b.WriteString("| pass | CPU s (run's processes) | trafgen | daemon | ksoftirqd | busy CPU s (all CPUs) | flood s | background CPUs |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range append([]row{base}, rows...) {
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", r.name, r.ownCPU, r.genCPU, r.dmnCPU, r.sirqCPU, r.busyCPU, r.secs, r.bgCPU)
	}
	b.WriteString("\nThe busy time of all CPUs (/proc/stat: user, nice, system, irq, softirq; not steal) is the cross-check: on a quiet machine it exceeds the run's processes by little more than background × flood time. " +
		"Background is the number of CPUs busy in the second before each flood, with the responder idle; other work on a shared machine shows there and in the all-CPU figure, not in the run's processes.\n")
	var bulkRows []row
	for _, r := range rows {
		if r.bulkBytes > 0 {
			bulkRows = append(bulkRows, r)
		}
	}
	if len(bulkRows) > 0 {
		fmt.Fprintf(&b, "\n## Bulk: established traffic\n\nAfter its flood, each driver's pass pushes %d MB from the legitimate client through one handed-over connection to the service (an HTTP POST). "+
			"CPU is the daemon's (user+system, all threads) from the end of the handshake to the service's answer; engine packets are the daemon's synproxy_lite_packets_total over the same span, "+
			"data segments the client's tcpi_data_segs_out (segments of one MSS; a GSO packet counts as several).\n\n", bulkRows[0].bulkBytes/1000000)
		b.WriteString("| driver | daemon CPU s per GB | MB/s | engine packets | data segments | engine packets per data segment |\n|---|---:|---:|---:|---:|---:|\n")
		for _, r := range bulkRows {
			gb := float64(r.bulkBytes) / 1e9
			fmt.Fprintf(&b, "| %s | %.3f | %.0f | %.0f | %.0f | %.3f |\n", r.name, r.bulkCPU/gb, float64(r.bulkBytes)/1e6/max(r.bulkSecs, 1e-9),
				r.bulkPkts, r.bulkSegs, r.bulkPkts/max(r.bulkSegs, 1))
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "img"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return plotRows(filepath.Join(dir, "img", "bench.png"), rows)
}

func plotRows(path string, rows []row) error {
	p := plot.New()
	p.Title.Text = "SYN flood: ratio to the kernel's nftables synproxy"
	p.Y.Label.Text = "x kernel"
	var rate, cpu plotter.Values
	var names []string
	for _, r := range rows {
		rate = append(rate, r.rate/rows[0].rate)
		cpu = append(cpu, r.cpuPerM/rows[0].cpuPerM)
		names = append(names, r.name)
	}
	w := vg.Points(18)
	b1, err := plotter.NewBarChart(rate, w)
	if err != nil {
		return err
	}
	b1.Offset = -w / 2
	b1.Color = plotColor(0)
	b2, err := plotter.NewBarChart(cpu, w)
	if err != nil {
		return err
	}
	b2.Offset = w / 2
	b2.Color = plotColor(1)
	p.Add(b1, b2)
	p.Legend.Add("SYN-ACK/s", b1)
	p.Legend.Add("CPU per SYN-ACK", b2)
	p.Legend.Top = true
	p.NominalX(names...)
	return p.Save(6*vg.Inch, 4*vg.Inch, path)
}

func plotColor(i int) color.Color {
	return []color.Color{color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}}[i]
}

// metricsPort is where the daemon serves its metrics, on the proxy's
// address.
const metricsPort = "9100"

// bulk pushes size bytes from the client through the proxy to the service,
// one POST over one connection the daemon handed over, and records the
// daemon's CPU time, the engine's packet count (its metrics) and the
// client's data segments (TCP_INFO) from the end of the handshake to the
// service's answer.
func bulk(r *row, l *lab, size int64, dmnCPU func() float64) error {
	var c net.Conn
	if err := inNS(l.cli, func() (e error) { c, e = net.DialTimeout("tcp", prxIP+":8080", 5*time.Second); return }); err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	if _, err := fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", prxIP, size); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond) // the handover is done
	segs := func() float64 {
		var ti *unix.TCPInfo
		rc, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			return 0
		}
		rc.Control(func(fd uintptr) { ti, _ = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
		if ti == nil {
			return 0
		}
		return float64(ti.Data_segs_out)
	}
	pkts0, err := enginePackets(l)
	if err != nil {
		return err
	}
	seg0, cpu0, t0 := segs(), dmnCPU(), time.Now()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := c.Write(buf[:k]); err != nil {
			return err
		}
		left -= k
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if !strings.HasSuffix(string(resp), "ok\n") {
		return fmt.Errorf("the service answered %q", resp)
	}
	r.bulkSecs, r.bulkCPU, r.bulkSegs = time.Since(t0).Seconds(), dmnCPU()-cpu0, segs()-seg0
	pkts1, err := enginePackets(l)
	if err != nil {
		return err
	}
	r.bulkPkts, r.bulkBytes = pkts1-pkts0, size
	return nil
}

// enginePackets reads synproxy_lite_packets_total from the daemon's
// metrics.
func enginePackets(l *lab) (float64, error) {
	var c net.Conn
	if err := inNS(l.prx, func() (e error) { c, e = net.DialTimeout("tcp", prxIP+":"+metricsPort, 5*time.Second); return }); err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", prxIP)
	b, err := io.ReadAll(c)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "synproxy_lite_packets_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no synproxy_lite_packets_total in the metrics")
}
