package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/synproxy-lite/synproxy-lite/internal/flood"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
	"github.com/synproxy-lite/synproxy-lite/internal/promtext"
)

// The address plan (see the package documentation).
var (
	clientNet  = netip.MustParsePrefix("10.99.200.0/24") // client .1, proxy .2
	clientNet6 = netip.MustParsePrefix("fd00:99:200::/64")
	attackNet  = netip.MustParsePrefix("10.99.201.0/24") // attacker .1, proxy .2
	spoofNet   = netip.MustParsePrefix("10.99.202.0/24") // spoofed SYN sources, routed to the attacker
	backendNet = netip.MustParsePrefix("10.99.203.0/24") // proxy .1, backend .2
)

const (
	port        = 8080
	backendPort = 8081
	metricsAddr = "127.0.0.1:9100" // inside the proxy namespace
	queue       = 200
)

// Prefix starts the names of the demo's namespaces (netlab.Config.Prefix).
const Prefix = "spld"

// Options configure a demo run.
type Options struct {
	// Duration is how long the client and the flood run.
	Duration time.Duration
	// FloodRate is the attacker's spoofed SYNs per second; 0: no flood.
	FloodRate int
	// FloodCount stops the flood after this many SYNs; 0: FloodRate ×
	// Duration.
	FloodCount int
	// Workers is the daemon's --workers.
	Workers int
	// Quiet prints no table, only the summary.
	Quiet bool
	// Daemon returns the command that runs the daemon: args are "run" and
	// its flags. The command is started inside the proxy namespace; it is
	// stopped with SIGTERM when its context ends.
	Daemon func(ctx context.Context, args []string) (*exec.Cmd, error)
}

// Result is what a demo run saw: the daemon's counters at the end, the
// flood's and the client's figures.
type Result struct {
	FloodSent            uint64
	SYNIn, SYNACKOut     uint64
	ACKValid, ACKInvalid uint64
	HandedOver, Overruns uint64
	HandoffFailed        uint64
	ClientOK, ClientFail uint64
	P50, P99             time.Duration
	FirstFailure         string // the client's first error, if any
	Rows                 int    // rows of the table (also counted when Quiet)
	DaemonLog            string // the daemon's output
}

// Run builds the lab, runs the show, writes the table and the summary to
// out and removes the lab. It returns the result also with an error, for
// the daemon's log.
func Run(ctx context.Context, o *Options, out io.Writer) (res *Result, err error) {
	res = &Result{}
	if o.Daemon == nil {
		return res, errors.New("demo: no daemon command")
	}
	if removed, err := netlab.Sweep(Prefix); err == nil && len(removed) > 0 {
		fmt.Fprintf(out, "removed %d namespaces left by an earlier demo\n", len(removed))
	}
	l, err := netlab.New(&netlab.Config{Prefix: Prefix})
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	ns := map[string]*netlab.NS{}
	for _, role := range []string{"client", "attacker", "proxy", "backend"} {
		n, err := l.AddNS(role)
		if err != nil {
			return res, err
		}
		ns[role] = n
	}
	client, attacker, proxy, backend := ns["client"], ns["attacker"], ns["proxy"], ns["backend"]
	h := netlab.Host
	links := []struct {
		a, b   *netlab.NS
		aa, ba []netip.Prefix
	}{
		{client, proxy, []netip.Prefix{h(clientNet, 1), h(clientNet6, 1)}, []netip.Prefix{h(clientNet, 2), h(clientNet6, 2)}},
		{attacker, proxy, []netip.Prefix{h(attackNet, 1)}, []netip.Prefix{h(attackNet, 2)}},
		{proxy, backend, []netip.Prefix{h(backendNet, 1)}, []netip.Prefix{h(backendNet, 2)}},
	}
	for _, k := range links {
		if err := l.Link(k.a, k.b, &netlab.LinkConfig{AAddrs: k.aa, BAddrs: k.ba}); err != nil {
			return res, err
		}
	}
	// The SYN-ACKs to spoofed sources go to the attacker, whose kernel
	// drops them (not its addresses, no forwarding): no RST comes back.
	if err := proxy.AddRoute(spoofNet, h(attackNet, 1).Addr(), ""); err != nil {
		return res, err
	}
	// The attacker reaches the proxy's client-side address through it.
	if err := attacker.DefaultRoute(h(attackNet, 2).Addr()); err != nil {
		return res, err
	}
	proxyAddr := h(clientNet, 2).Addr()
	proxyAddr6 := h(clientNet6, 2).Addr()
	backendAddr := netip.AddrPortFrom(h(backendNet, 2).Addr(), backendPort)
	fmt.Fprintf(out, "lab %s: client %s, %s → proxy %s:%d, [%s]:%d → backend %s; attacker %s spoofing %s\n",
		l.ID(), h(clientNet, 1).Addr(), h(clientNet6, 1).Addr(), proxyAddr, port, proxyAddr6, port,
		backendAddr, h(attackNet, 1).Addr(), spoofNet)

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
	cmd, err := o.Daemon(dctx, []string{"run", "--port", strconv.Itoa(port), "--backend", backendAddr.String(),
		"--workers", strconv.Itoa(o.Workers), "--queue", strconv.Itoa(queue), "--metrics", metricsAddr,
		"--log-level", "warn"})
	if err != nil {
		return res, err
	}
	dlog := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = dlog, dlog
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	dieWithParent(cmd)
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
		res.DaemonLog = dlog.String()
	}()
	mc := &http.Client{Transport: &http.Transport{DialContext: proxy.DialContext}, Timeout: 2 * time.Second}
	scrape := func() (map[string]float64, error) {
		return promtext.Scrape(context.Background(), mc, "http://"+metricsAddr+"/metrics")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := scrape(); err == nil {
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

	runCtx, stopRun := context.WithTimeout(ctx, o.Duration)
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
		urls := []string{fmt.Sprintf("http://%s:%d/", proxyAddr, port), fmt.Sprintf("http://[%s]:%d/", proxyAddr6, port)}
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
	if o.FloodRate > 0 {
		count := o.FloodCount
		if count == 0 {
			count = int(int64(o.FloodRate) * int64(o.Duration) / int64(time.Second))
		}
		gen, err := flood.NewGenerator(spoofNet, netip.AddrPortFrom(proxyAddr, port), nil)
		if err != nil {
			return res, err
		}
		var fl *flood.Sender
		err = attacker.Do(func() (err error) { fl, err = flood.NewSender(gen); return })
		if err != nil {
			return res, fmt.Errorf("in the attacker namespace: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer fl.Close()
			// Let the table show a quiet second first.
			select {
			case <-runCtx.Done():
				return
			case <-time.After(time.Second):
			}
			fl.Run(runCtx, o.FloodRate, count, &floodSent)
		}()
	}

	// The table.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	if !o.Quiet {
		fmt.Fprintf(out, "%5s %9s %9s %9s %9s %9s %9s %9s %8s %8s %9s\n", "t", "flood", "SYNs-in", "SYN-ACKs",
			"ACK-ok", "ACK-bad", "handed", "client-ok", "p50", "p99", "fail")
	}
	row := func(label string) error {
		m, err := scrape()
		if err != nil {
			return err
		}
		res.SYNIn = uint64(m["synproxy_lite_syn_received_total"])
		res.SYNACKOut = uint64(m["synproxy_lite_synack_sent_total"])
		res.ACKValid = uint64(m["synproxy_lite_cookie_valid_total"])
		res.ACKInvalid = uint64(m[`synproxy_lite_cookie_invalid_total{reason="hash"}`] +
			m[`synproxy_lite_cookie_invalid_total{reason="stale"}`] + m[`synproxy_lite_cookie_invalid_total{reason="tuple"}`])
		res.HandedOver = uint64(m["synproxy_lite_handed_over_total"])
		res.HandoffFailed = uint64(m["synproxy_lite_handoff_failed_total"])
		res.Overruns = uint64(m["synproxy_lite_rx_overruns_total"])
		res.FloodSent = floodSent.Load()
		res.ClientOK, res.ClientFail = okN.Load(), failN.Load()
		p50, p99 := lat.window()
		res.Rows++
		if !o.Quiet {
			if label == "" {
				label = strconv.Itoa(int(time.Since(start).Round(time.Second)/time.Second)) + "s"
			}
			fmt.Fprintf(out, "%5s %9d %9d %9d %9d %9d %9d %9d %8s %8s %9d\n", label,
				res.FloodSent, res.SYNIn, res.SYNACKOut, res.ACKValid, res.ACKInvalid, res.HandedOver,
				res.ClientOK, fmtMS(p50), fmtMS(p99), res.ClientFail)
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
	res.P50, res.P99 = lat.all()
	if v, ok := firstFail.Load().(string); ok {
		res.FirstFailure = v
	}
	fmt.Fprintf(out, "\nflood: %d spoofed SYNs sent; daemon: %d SYNs in, %d SYN-ACKs out, %d valid and %d invalid ACKs, %d connections handed over, %d receive overruns\n",
		res.FloodSent, res.SYNIn, res.SYNACKOut, res.ACKValid, res.ACKInvalid, res.HandedOver, res.Overruns)
	fmt.Fprintf(out, "client: %d pages fetched, %d failed, latency p50 %s ms, p99 %s ms\n",
		res.ClientOK, res.ClientFail, fmtMS(res.P50), fmtMS(res.P99))
	if res.FirstFailure != "" {
		fmt.Fprintf(out, "first client failure: %s\n", res.FirstFailure)
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
