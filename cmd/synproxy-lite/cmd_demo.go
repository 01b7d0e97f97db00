package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	nslab "github.com/synproxy-lite/synproxy-lite/internal/netlab"
)

func init() {
	register("demo", "a self-contained lab: SYN flood against the proxy while a client keeps fetching pages", runDemo)
}

const demoUsage = `usage: synproxy-lite demo [flags]

Builds a lab of four network namespaces (client, attacker, proxy, backend),
runs "synproxy-lite run" in the proxy namespace in front of a small HTTP
server in the backend namespace, floods the proxy with spoofed SYNs from
the attacker while the client keeps fetching pages, and prints a table of
the daemon's counters and the client's results once a second. Everything
is removed at the end, also on Ctrl-C. Needs root; needs no other program.

flags:
`

// The demo's address plan (10.99.200.0/24 and up, fd00:99:200::/64 and up).
var (
	demoClientNet  = netip.MustParsePrefix("10.99.200.0/24") // client .1, proxy .2
	demoClientNet6 = netip.MustParsePrefix("fd00:99:200::/64")
	demoAttackNet  = netip.MustParsePrefix("10.99.201.0/24") // attacker .1, proxy .2
	demoSpoofNet   = netip.MustParsePrefix("10.99.202.0/24") // spoofed SYN sources, routed to the attacker
	demoBackendNet = netip.MustParsePrefix("10.99.203.0/24") // proxy .1, backend .2
)

const (
	demoPort        = 8080
	demoBackendPort = 8081
	demoMetrics     = "127.0.0.1:9100" // inside the proxy namespace
	demoQueue       = 200
)

// demoOptions are the demo's flags.
type demoOptions struct {
	duration   time.Duration
	floodRate  int
	floodCount int
	workers    int
	quiet      bool // no table, only the summary (tests)
}

// demoResult is what a demo run saw, for the summary and for tests.
type demoResult struct {
	floodSent            uint64
	synIn, synackOut     uint64
	ackValid, ackInvalid uint64
	handedOver, overruns uint64
	handoffFailed        uint64
	clientOK, clientFail uint64
	p50, p99             time.Duration
	firstFailure         string
	rows                 int
	daemonLog            string
}

// demoDaemonCommand returns the command that runs the daemon ("run" and
// its flags). Tests replace it: their binary is not synproxy-lite.
var demoDaemonCommand = func(ctx context.Context, args []string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, exe, args...), nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := &demoOptions{}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long the demo runs")
	fs.IntVar(&o.floodRate, "flood-rate", 5000, "spoofed SYNs per second from the attacker")
	fs.IntVar(&o.floodCount, "flood-count", 0, "stop the flood after this many SYNs (0: rate × duration)")
	fs.IntVar(&o.workers, "workers", 2, "the daemon's --workers")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 || o.duration < time.Second || o.floodRate < 0 || o.floodRate > 1_000_000 ||
		o.floodCount < 0 || o.workers < 1 || o.workers > 64 {
		fmt.Fprintln(stderr, "synproxy-lite demo: --duration ≥ 1s, --flood-rate 0-1000000, --flood-count ≥ 0, --workers 1-64")
		return exitUsage
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "synproxy-lite demo: needs root (it creates network namespaces, nft rules and netfilter queues)")
		return exitFailure
	}
	res, err := demo(ctx, o, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite demo: %v\n", err)
		if res != nil && res.daemonLog != "" {
			fmt.Fprintf(stderr, "daemon output:\n%s", res.daemonLog)
		}
		return exitFailure
	}
	if res.clientFail > 0 {
		return exitFailure
	}
	return exitOK
}

// demo builds the lab, runs the show and removes the lab.
func demo(ctx context.Context, o *demoOptions, out io.Writer) (res *demoResult, err error) {
	res = &demoResult{}
	if removed, err := nslab.Sweep("spld"); err == nil && len(removed) > 0 {
		fmt.Fprintf(out, "removed %d namespaces left by an earlier demo\n", len(removed))
	}
	l, err := nslab.New(&nslab.Config{Prefix: "spld"})
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	ns := map[string]*nslab.NS{}
	for _, role := range []string{"client", "attacker", "proxy", "backend"} {
		n, err := l.AddNS(role)
		if err != nil {
			return res, err
		}
		ns[role] = n
	}
	client, attacker, proxy, backend := ns["client"], ns["attacker"], ns["proxy"], ns["backend"]
	h := nslab.Host
	links := []struct {
		a, b   *nslab.NS
		aa, ba []netip.Prefix
	}{
		{client, proxy, []netip.Prefix{h(demoClientNet, 1), h(demoClientNet6, 1)}, []netip.Prefix{h(demoClientNet, 2), h(demoClientNet6, 2)}},
		{attacker, proxy, []netip.Prefix{h(demoAttackNet, 1)}, []netip.Prefix{h(demoAttackNet, 2)}},
		{proxy, backend, []netip.Prefix{h(demoBackendNet, 1)}, []netip.Prefix{h(demoBackendNet, 2)}},
	}
	for _, k := range links {
		if err := l.Link(k.a, k.b, &nslab.LinkConfig{AAddrs: k.aa, BAddrs: k.ba}); err != nil {
			return res, err
		}
	}
	// The SYN-ACKs to spoofed sources go to the attacker, whose kernel
	// drops them (not its addresses, no forwarding): no RST comes back.
	if err := proxy.AddRoute(demoSpoofNet, h(demoAttackNet, 1).Addr(), ""); err != nil {
		return res, err
	}
	// The attacker reaches the proxy's client-side address through it.
	if err := attacker.DefaultRoute(h(demoAttackNet, 2).Addr()); err != nil {
		return res, err
	}
	proxyAddr := h(demoClientNet, 2).Addr()
	proxyAddr6 := h(demoClientNet6, 2).Addr()
	backendAddr := netip.AddrPortFrom(h(demoBackendNet, 2).Addr(), demoBackendPort)
	fmt.Fprintf(out, "lab %s: client %s, %s → proxy %s:%d, [%s]:%d → backend %s; attacker %s spoofing %s\n",
		l.ID(), h(demoClientNet, 1).Addr(), h(demoClientNet6, 1).Addr(), proxyAddr, demoPort, proxyAddr6, demoPort,
		backendAddr, h(demoAttackNet, 1).Addr(), demoSpoofNet)

	// The backend: a small HTTP server.
	bln, err := backend.Listen("tcp", backendAddr.String())
	if err != nil {
		return res, err
	}
	page := strings.Repeat("synproxy-lite demo page\n", 64)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, page)
	})}
	go srv.Serve(bln)
	defer srv.Close()

	// The daemon, in the proxy namespace.
	dctx, stopDaemon := context.WithCancel(context.Background())
	defer stopDaemon()
	cmd, err := demoDaemonCommand(dctx, []string{"run", "--port", strconv.Itoa(demoPort), "--backend", backendAddr.String(),
		"--workers", strconv.Itoa(o.workers), "--queue", strconv.Itoa(demoQueue), "--metrics", demoMetrics,
		"--log-level", "warn"})
	if err != nil {
		return res, err
	}
	dlog := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = dlog, dlog
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := proxy.Start(cmd); err != nil {
		return res, fmt.Errorf("starting the daemon: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	defer func() {
		stopDaemon()
		<-waited
		if ps := cmd.ProcessState; ps != nil && !ps.Success() && err == nil && ctx.Err() == nil {
			err = fmt.Errorf("daemon: %v", ps)
		}
		res.daemonLog = dlog.String()
	}()
	mc := &http.Client{Transport: &http.Transport{DialContext: proxy.DialContext}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := scrapeMetrics(mc); err == nil {
			break
		}
		select {
		case werr := <-waited:
			waited <- werr
			return res, fmt.Errorf("the daemon exited: %v", werr)
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return res, errors.New("the daemon did not start within 20s")
		}
	}

	runCtx, stopRun := context.WithTimeout(ctx, o.duration)
	defer stopRun()
	var wg sync.WaitGroup
	defer wg.Wait()

	// The client: one page after another, new connection each time,
	// IPv4 and IPv6 in turn.
	lat := &latencies{}
	var okN, failN atomic.Uint64
	var firstFail atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		hc := &http.Client{Transport: &http.Transport{DialContext: client.DialContext, DisableKeepAlives: true},
			Timeout: 3 * time.Second}
		urls := []string{fmt.Sprintf("http://%s:%d/", proxyAddr, demoPort), fmt.Sprintf("http://[%s]:%d/", proxyAddr6, demoPort)}
		for i := 0; runCtx.Err() == nil; i++ {
			t0 := time.Now()
			err := fetch(runCtx, hc, urls[i%2], len(page))
			switch {
			case err == nil:
				okN.Add(1)
				lat.add(time.Since(t0))
			case runCtx.Err() != nil:
				return // cut short by the end of the demo
			default:
				failN.Add(1)
				firstFail.CompareAndSwap(nil, err.Error())
			}
			select {
			case <-runCtx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	// The attacker: spoofed SYNs at a bounded rate, a bounded count.
	var floodSent atomic.Uint64
	if o.floodRate > 0 {
		count := o.floodCount
		if count == 0 {
			count = int(int64(o.floodRate) * int64(o.duration) / int64(time.Second))
		}
		fl, err := newSYNFlood(attacker, proxyAddr, demoPort)
		if err != nil {
			return res, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer fl.close()
			// Let the table show a quiet second first.
			select {
			case <-runCtx.Done():
				return
			case <-time.After(time.Second):
			}
			fl.run(runCtx, o.floodRate, count, &floodSent)
		}()
	}

	// The table.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	if !o.quiet {
		fmt.Fprintf(out, "%5s %9s %9s %9s %9s %9s %9s %9s %8s %8s %9s\n", "t", "flood", "SYNs-in", "SYN-ACKs",
			"ACK-ok", "ACK-bad", "handed", "client-ok", "p50", "p99", "fail")
	}
	row := func(label string) error {
		m, err := scrapeMetrics(mc)
		if err != nil {
			return err
		}
		res.synIn = uint64(m["synproxy_lite_syn_received_total"])
		res.synackOut = uint64(m["synproxy_lite_synack_sent_total"])
		res.ackValid = uint64(m["synproxy_lite_cookie_valid_total"])
		res.ackInvalid = uint64(m[`synproxy_lite_cookie_invalid_total{reason="hash"}`] +
			m[`synproxy_lite_cookie_invalid_total{reason="stale"}`] + m[`synproxy_lite_cookie_invalid_total{reason="tuple"}`])
		res.handedOver = uint64(m["synproxy_lite_handed_over_total"])
		res.handoffFailed = uint64(m["synproxy_lite_handoff_failed_total"])
		res.overruns = uint64(m["synproxy_lite_rx_overruns_total"])
		res.floodSent = floodSent.Load()
		res.clientOK, res.clientFail = okN.Load(), failN.Load()
		p50, p99 := lat.window()
		res.rows++
		if !o.quiet {
			if label == "" {
				label = strconv.Itoa(int(time.Since(start).Round(time.Second)/time.Second)) + "s"
			}
			fmt.Fprintf(out, "%5s %9d %9d %9d %9d %9d %9d %9d %8s %8s %9d\n", label,
				res.floodSent, res.synIn, res.synackOut, res.ackValid, res.ackInvalid, res.handedOver,
				res.clientOK, fmtMS(p50), fmtMS(p99), res.clientFail)
		}
		return nil
	}
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case werr := <-waited:
			waited <- werr
			stopRun()
			wg.Wait()
			return res, fmt.Errorf("the daemon exited: %v", werr)
		case <-tick.C:
			if err := row(""); err != nil {
				return res, fmt.Errorf("reading the daemon's metrics: %w", err)
			}
		}
	}
	wg.Wait()
	// Counters after the flood has ended and the client stopped.
	time.Sleep(200 * time.Millisecond)
	if err := row("end"); err != nil {
		return res, fmt.Errorf("reading the daemon's metrics: %w", err)
	}
	res.p50, res.p99 = lat.all()
	if v, ok := firstFail.Load().(string); ok {
		res.firstFailure = v
	}
	fmt.Fprintf(out, "\nflood: %d spoofed SYNs sent; daemon: %d SYNs in, %d SYN-ACKs out, %d valid and %d invalid ACKs, %d connections handed over, %d receive overruns\n",
		res.floodSent, res.synIn, res.synackOut, res.ackValid, res.ackInvalid, res.handedOver, res.overruns)
	fmt.Fprintf(out, "client: %d pages fetched, %d failed, latency p50 %s ms, p99 %s ms\n",
		res.clientOK, res.clientFail, fmtMS(res.p50), fmtMS(res.p99))
	if res.firstFailure != "" {
		fmt.Fprintf(out, "first client failure: %s\n", res.firstFailure)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(out, "interrupted; cleaning up")
	}
	return res, nil
}

func fetch(ctx context.Context, c *http.Client, url string, want int) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || int(n) != want {
		return fmt.Errorf("%s: status %d, %d bytes", url, resp.StatusCode, n)
	}
	return nil
}

func fmtMS(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// latencies keeps every sample and the start of the current second's window.
type latencies struct {
	mu   sync.Mutex
	all_ []time.Duration
	from int
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.all_ = append(l.all_, d)
	l.mu.Unlock()
}

// window returns p50 and p99 of the samples since the last call.
func (l *latencies) window() (p50, p99 time.Duration) {
	l.mu.Lock()
	s := slices.Clone(l.all_[l.from:])
	l.from = len(l.all_)
	l.mu.Unlock()
	return percentiles(s)
}

func (l *latencies) all() (p50, p99 time.Duration) {
	l.mu.Lock()
	s := slices.Clone(l.all_)
	l.mu.Unlock()
	return percentiles(s)
}

func percentiles(s []time.Duration) (p50, p99 time.Duration) {
	if len(s) == 0 {
		return 0, 0
	}
	slices.Sort(s)
	return s[(len(s)-1)*50/100], s[(len(s)-1)*99/100]
}

// scrapeMetrics reads the daemon's Prometheus text exposition into a map
// keyed by the metric with its labels.
func scrapeMetrics(c *http.Client) (map[string]float64, error) {
	resp, err := c.Get("http://" + demoMetrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("metrics: status %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// synFlood is the demo's attacker: IPv4 SYNs with random sources in
// demoSpoofNet, random ports and sequence numbers, sent on a raw socket
// created in the attacker's namespace.
type synFlood struct {
	fd  int
	dst netip.Addr
	dp  uint16
	to  unix.SockaddrInet4
}

func newSYNFlood(ns *nslab.NS, dst netip.Addr, port uint16) (*synFlood, error) {
	f := &synFlood{fd: -1, dst: dst, dp: port, to: unix.SockaddrInet4{Addr: dst.As4()}}
	err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("raw socket in the attacker namespace: %w", err)
		}
		f.fd = fd
		return nil
	})
	return f, err
}

func (f *synFlood) close() {
	if f.fd >= 0 {
		unix.Close(f.fd)
		f.fd = -1
	}
}

// run sends count SYNs at rate per second, in 10 ms slices, until ctx ends.
func (f *synFlood) run(ctx context.Context, rate, count int, sent *atomic.Uint64) {
	var pkt [44]byte
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	n := 0
	for n < count {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := min(int(int64(rate)*int64(time.Since(start))/int64(time.Second)), count)
		for ; n < due; n++ {
			b := appendFloodSYN(pkt[:0], f.dst, f.dp)
			if err := unix.Sendto(f.fd, b, 0, &f.to); err != nil {
				continue
			}
			sent.Add(1)
		}
	}
}

// appendFloodSYN builds an IPv4 SYN with an MSS option from a random source
// in demoSpoofNet to dst:dport.
func appendFloodSYN(b []byte, dst netip.Addr, dport uint16) []byte {
	src := demoSpoofNet.Addr().As4()
	src[3] = byte(1 + rand.IntN(254))
	d := dst.As4()
	b = append(b, 0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0)
	b = append(b, src[:]...)
	b = append(b, d[:]...)
	binary.BigEndian.PutUint16(b[10:], inetChecksum(b[:20], 0))
	t := len(b)
	b = binary.BigEndian.AppendUint16(b, uint16(1024+rand.IntN(64511)))
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint32(b, rand.Uint32())
	b = append(b, 0, 0, 0, 0, 6<<4, 0x02, 0x04, 0x00, 0, 0, 0, 0, 2, 4, 0x05, 0xb4)
	var ps uint32
	for i := 0; i < 4; i += 2 {
		ps += (uint32(src[i])<<8 | uint32(src[i+1])) + (uint32(d[i])<<8 | uint32(d[i+1]))
	}
	ps += 6 + 24
	binary.BigEndian.PutUint16(b[t+16:], inetChecksum(b[t:], ps))
	return b
}

func inetChecksum(b []byte, s uint32) uint16 {
	sum := uint64(s)
	for len(b) >= 2 {
		sum += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
