package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
	"github.com/synproxy-lite/synproxy-lite/internal/promtext"
)

// The fleet's address plan: a client behind a router, the router and
// three nodes and a backend on one segment, the service address on each
// node's loopback.
var (
	fleetClientNet = netip.MustParsePrefix("10.99.164.0/24") // client .2, router .1
	fleetNodeNet   = netip.MustParsePrefix("10.99.165.0/24") // router .1, nodes .11-.13, backend .20
	fleetVIP       = netip.MustParseAddr("10.99.166.1")
)

// FleetPrefix starts the names of the fleet demo's namespaces.
const FleetPrefix = "spldf"

// FleetOptions configure RunFleet.
type FleetOptions struct {
	// Duration is how long the client runs; node 3 is killed (SIGKILL)
	// halfway through.
	Duration time.Duration
	// Bird is the path of BIRD 2's bird binary, the router.
	Bird string
	// Quiet prints no table, only the summary.
	Quiet bool
	// Daemon is as in Options: it returns the command of "run".
	Daemon func(ctx context.Context, args []string) (*exec.Cmd, error)
}

// FleetResult is what a fleet demo saw.
type FleetResult struct {
	// Pages counts the client's pages by the node that served them,
	// before and after node 3 was killed.
	PagesBefore, PagesAfter [3]uint64
	// PagesAfterWithdrawal counts pages served once the router's route
	// had lost node 3.
	PagesAfterWithdrawal [3]uint64
	Failures             uint64
	FirstFailure         string
	// Withdrawn is how long after the kill the router's route lost node 3
	// (0 if it did not within the demo).
	Withdrawn time.Duration
	// RouteBefore and RouteAfter are the router's next hops for the
	// service address before the kill and at the end.
	RouteBefore, RouteAfter []string
	Rows                    int
	DaemonLogs              [3]string
}

// RunFleet builds a fleet lab (BIRD as the router, three nodes announcing
// the service over eBGP, multipath hashed on layer 4), runs a client that
// fetches a page per connection and prints once a second which node
// answered how many; halfway through it kills node 3 and shows the route
// shrink and the pages move. Everything is removed at the end.
func RunFleet(ctx context.Context, o *FleetOptions, out io.Writer) (res *FleetResult, err error) {
	res = &FleetResult{}
	if o.Daemon == nil || o.Bird == "" {
		return res, errors.New("demo: no daemon command or no bird")
	}
	if removed, err := netlab.Sweep(FleetPrefix); err == nil && len(removed) > 0 {
		fmt.Fprintf(out, "removed %d namespaces left by an earlier demo\n", len(removed))
	}
	l, err := netlab.New(&netlab.Config{Prefix: FleetPrefix})
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	dir, err := os.MkdirTemp("", "synproxy-lite-fleet-demo")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	ns := map[string]*netlab.NS{}
	for _, role := range []string{"client", "router", "switch", "n1", "n2", "n3", "backend"} {
		n, err := l.AddNS(role)
		if err != nil {
			return res, err
		}
		ns[role] = n
	}
	h := netlab.Host
	router := h(fleetNodeNet, 1).Addr()
	var nodeAddrs [3]netip.Addr
	steps := []func() error{
		func() error {
			return l.Link(ns["client"], ns["router"], &netlab.LinkConfig{AName: "vc", BName: "vr",
				AAddrs: []netip.Prefix{h(fleetClientNet, 2)}, BAddrs: []netip.Prefix{h(fleetClientNet, 1)}})
		},
		func() error { return ns["client"].DefaultRoute(h(fleetClientNet, 1).Addr()) },
		func() error { return ns["switch"].AddBridge("br0") },
		func() error {
			return l.Link(ns["router"], ns["switch"], &netlab.LinkConfig{AName: "vp", BName: "sr", BMaster: "br0",
				AAddrs: []netip.Prefix{h(fleetNodeNet, 1)}})
		},
		func() error {
			return l.Link(ns["backend"], ns["switch"], &netlab.LinkConfig{AName: "vp", BName: "sb", BMaster: "br0",
				AAddrs: []netip.Prefix{h(fleetNodeNet, 20)}})
		},
		func() error { return ns["router"].SetSysctl("net.ipv4.ip_forward", "1") },
		func() error { return ns["router"].SetSysctl("net.ipv4.fib_multipath_hash_policy", "1") },
	}
	for i := range 3 {
		n := ns["n"+strconv.Itoa(i+1)]
		nodeAddrs[i] = h(fleetNodeNet, uint64(11+i)).Addr()
		steps = append(steps,
			func() error {
				return l.Link(n, ns["switch"], &netlab.LinkConfig{AName: "vp", BName: "s" + strconv.Itoa(i+1), BMaster: "br0",
					AAddrs: []netip.Prefix{h(fleetNodeNet, uint64(11+i))}})
			},
			func() error { return n.AddAddr("lo", netip.PrefixFrom(fleetVIP, 32)) },
			func() error { return n.AddRoute(fleetClientNet, router, "") })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return res, err
		}
	}
	backendAddr := netip.AddrPortFrom(h(fleetNodeNet, 20).Addr(), backendPort)
	fmt.Fprintf(out, "lab %s: client %s → router %s (BIRD, eBGP, multipath hashed on layer 4) → %s:%d on nodes %s, %s, %s → backend %s\n",
		l.ID(), h(fleetClientNet, 2).Addr(), router, fleetVIP, port, nodeAddrs[0], nodeAddrs[1], nodeAddrs[2], backendAddr)

	// The backend says which node's connection it serves: the node dials
	// it from its own address.
	bln, err := ns["backend"].Listen("tcp", backendAddr.String())
	if err != nil {
		return res, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		for i, a := range nodeAddrs {
			if a.String() == host {
				fmt.Fprintf(w, "n%d\n", i+1)
				return
			}
		}
		io.WriteString(w, "?\n")
	})}
	go srv.Serve(bln)
	defer srv.Close()

	// The router.
	var conf strings.Builder
	fmt.Fprintf(&conf, "router id %s;\nprotocol device { scan time 1; }\n"+
		"protocol kernel { ipv4 { import none; export all; }; merge paths yes limit 16; }\n", router)
	for i, a := range nodeAddrs {
		fmt.Fprintf(&conf, "protocol bgp n%d { local %s as 65000; neighbor %s as 65001; hold time 3; keepalive time 1; "+
			"connect retry time 1; error wait time 1, 2; ipv4 { import all; export none; }; }\n", i+1, router, a)
	}
	if err := os.WriteFile(filepath.Join(dir, "bird.conf"), []byte(conf.String()), 0o600); err != nil {
		return res, err
	}
	bctx, stopBird := context.WithCancel(context.Background())
	defer stopBird()
	bird := exec.CommandContext(bctx, o.Bird, "-f", "-c", filepath.Join(dir, "bird.conf"), "-s", filepath.Join(dir, "bird.ctl"))
	blog := &syncBuffer{}
	bird.Stdout, bird.Stderr = blog, blog
	dieWithParent(bird)
	if err := ns["router"].Start(bird); err != nil {
		return res, fmt.Errorf("starting bird: %w", err)
	}
	defer func() { stopBird(); bird.Wait() }()

	// The nodes, with one fleet secret.
	var secret [32]byte
	rand.Read(secret[:])
	secretFile := filepath.Join(dir, "fleet.secret")
	if err := os.WriteFile(secretFile, []byte(hex.EncodeToString(secret[:])+"\n"), 0o600); err != nil {
		return res, err
	}
	var cmds [3]*exec.Cmd
	var logs [3]*syncBuffer
	var waited [3]chan struct{}
	dctx, stopDaemons := context.WithCancel(context.Background())
	defer func() {
		stopDaemons()
		for i := range cmds {
			if cmds[i] != nil {
				<-waited[i]
				res.DaemonLogs[i] = logs[i].String()
			}
		}
	}()
	for i := range 3 {
		cmd, err := o.Daemon(dctx, []string{"run", "--port", strconv.Itoa(port), "--backend", backendAddr.String(),
			"--driver", "afpacket", "--interface", "vp", "--workers", "1", "--queue", strconv.Itoa(queue),
			"--metrics", metricsAddr, "--log-level", "warn", "--fleet-secret-file", secretFile,
			"--bgp-peer", router.String(), "--bgp-asn", "65001", "--bgp-peer-asn", "65000",
			"--bgp-router-id", nodeAddrs[i].String(), "--bgp-hold-time", "3s", "--bgp-announce", fleetVIP.String() + "/32"})
		if err != nil {
			return res, err
		}
		logs[i] = &syncBuffer{}
		cmd.Stdout, cmd.Stderr = logs[i], logs[i]
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 10 * time.Second
		dieWithParent(cmd)
		if err := ns["n"+strconv.Itoa(i+1)].Start(cmd); err != nil {
			return res, fmt.Errorf("starting node %d: %w", i+1, err)
		}
		cmds[i], waited[i] = cmd, make(chan struct{})
		go func() { cmd.Wait(); close(waited[i]) }()
	}

	route := func() []string {
		b, _ := ns["router"].CombinedOutput(context.Background(), "ip", "-4", "route", "show", fleetVIP.String(), "proto", "bird")
		var gws []string
		f := strings.Fields(string(b))
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "via" {
				for k, a := range nodeAddrs {
					if f[i+1] == a.String() {
						gws = append(gws, "n"+strconv.Itoa(k+1))
					}
				}
			}
		}
		slices.Sort(gws)
		return gws
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(route()) < 3 {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("the router has no three-way route after 20s: %v\nbird: %s", route(), blog.String())
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	res.RouteBefore = route()
	fmt.Fprintf(out, "the router's route to %s: %s\n", fleetVIP, strings.Join(res.RouteBefore, " "))

	runCtx, stopRun := context.WithTimeout(ctx, o.Duration)
	defer stopRun()
	var mu sync.Mutex
	var second [3]uint64
	var secondFail uint64
	killed, withdrawn := false, false
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		hc := &http.Client{Transport: &http.Transport{DialContext: ns["client"].DialContext, DisableKeepAlives: true},
			Timeout: 2 * time.Second}
		for runCtx.Err() == nil {
			node, err := fetchNode(runCtx, hc, fmt.Sprintf("http://%s:%d/", fleetVIP, port))
			mu.Lock()
			switch {
			case err == nil && node >= 0:
				second[node]++
				if killed {
					res.PagesAfter[node]++
				} else {
					res.PagesBefore[node]++
				}
				if withdrawn {
					res.PagesAfterWithdrawal[node]++
				}
			case runCtx.Err() != nil:
			default:
				secondFail++
				res.Failures++
				if res.FirstFailure == "" && err != nil {
					res.FirstFailure = err.Error()
				}
			}
			mu.Unlock()
			select {
			case <-runCtx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	mc := func(i int) float64 {
		c := &http.Client{Transport: &http.Transport{DialContext: ns["n"+strconv.Itoa(i+1)].DialContext}, Timeout: time.Second}
		m, err := promtext.Scrape(context.Background(), c, "http://"+metricsAddr+"/metrics")
		if err != nil {
			return -1
		}
		return m["synproxy_lite_handed_over_total"]
	}
	if !o.Quiet {
		fmt.Fprintf(out, "%5s %-10s %7s %7s %7s %6s   %s\n", "t", "route", "n1", "n2", "n3", "fail", "handed over so far (n1 n2 n3)")
	}
	start := time.Now()
	var killedAt time.Time
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-poll.C:
			mu.Lock()
			k, w := killed, withdrawn
			mu.Unlock()
			if !k && time.Since(start) >= o.Duration/2 {
				cmds[2].Process.Kill()
				killedAt = time.Now()
				mu.Lock()
				killed = true
				mu.Unlock()
				fmt.Fprintf(out, "%5s node 3 killed (SIGKILL)\n", strconv.Itoa(int(time.Since(start)/time.Second))+"s")
			}
			if k && !w && !slices.Contains(route(), "n3") {
				mu.Lock()
				withdrawn = true
				mu.Unlock()
				res.Withdrawn = time.Since(killedAt)
				fmt.Fprintf(out, "%5s the router withdrew node 3's route %v after the kill: %s\n",
					strconv.Itoa(int(time.Since(start)/time.Second))+"s", res.Withdrawn.Round(time.Millisecond), strings.Join(route(), " "))
			}
		case <-tick.C:
			mu.Lock()
			s, f := second, secondFail
			second, secondFail = [3]uint64{}, 0
			mu.Unlock()
			res.Rows++
			if !o.Quiet {
				ho := [3]string{"-", "-", "-"}
				for i := range 3 {
					if !(i == 2 && killed) {
						ho[i] = strconv.Itoa(int(mc(i)))
					}
				}
				fmt.Fprintf(out, "%5s %-10s %7d %7d %7d %6d   %s\n", strconv.Itoa(int(time.Since(start).Round(time.Second)/time.Second))+"s",
					strings.Join(route(), ","), s[0], s[1], s[2], f, strings.Join(ho[:], " "))
			}
		}
	}
	wg.Wait()
	res.RouteAfter = route()
	fmt.Fprintf(out, "\npages by node before the kill: n1 %d, n2 %d, n3 %d; after: n1 %d, n2 %d, n3 %d; %d failed\n",
		res.PagesBefore[0], res.PagesBefore[1], res.PagesBefore[2], res.PagesAfter[0], res.PagesAfter[1], res.PagesAfter[2], res.Failures)
	fmt.Fprintf(out, "route before: %s; after: %s\n", strings.Join(res.RouteBefore, " "), strings.Join(res.RouteAfter, " "))
	if res.FirstFailure != "" {
		fmt.Fprintf(out, "first failure (a connection node 3 held, or a SYN sent to it before the withdrawal): %s\n", res.FirstFailure)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(out, "interrupted; cleaning up")
	}
	return res, nil
}

// fetchNode fetches url and returns the index of the node the backend
// says served it.
func fetchNode(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return -1, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return -1, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1, err
	}
	s := strings.TrimSpace(string(b))
	if len(s) == 2 && s[0] == 'n' && s[1] >= '1' && s[1] <= '3' {
		return int(s[1] - '1'), nil
	}
	return -1, fmt.Errorf("unexpected page %q", s)
}
