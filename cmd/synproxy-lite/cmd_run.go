package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/synproxy-lite/synproxy-lite/bgp"
	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/driver/metrics"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
	"github.com/synproxy-lite/synproxy-lite/internal/config"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

func init() {
	register("run", "run the SYN proxy daemon in front of a TCP service", runRun)
}

const runUsage = `usage: synproxy-lite run --port N --backend HOST:PORT [flags]

Answers every SYN to --port with a SYN cookie, keeps no state until the
client's ACK proves it, then makes the connection a real kernel socket and
splices it to --backend. Needs CAP_NET_ADMIN and CAP_NET_RAW.

flags:
`

// runOptions are the parsed flags of "run".
type runOptions struct {
	port          uint16
	backend       netip.AddrPort
	driverName    string
	iface         string
	workers       int
	queue         uint16
	keyFile       string
	fleetFile     string
	rotate        time.Duration
	metrics       string
	dryRun        bool
	mss, mss6     int
	wscale        int
	timestamp     bool
	sack          bool
	proxyProtocol bool
	failOpen      bool
	table         string
	logLevel      string
	limits        *handoff.Limits
	bgp           *bgp.Config // nil without --bgp-peer
	bgpFlags      *bgpFlags
	speaker       *bgp.Speaker // set before the server starts
	// args are the arguments parsed, which a graceful restart's new
	// process is started with.
	args []string
	// handoffStats and rulesLost are the Server's, for the metrics (set
	// once it exists).
	handoffStats func() handoff.ProxyStats
	rulesLost    func() uint64
}

func parseRunFlags(args []string, stderr io.Writer) (*runOptions, error) {
	o := &runOptions{args: args}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, runUsage); fs.PrintDefaults() }
	port := fs.Uint("port", 0, "protected TCP `port` (required)")
	backend := fs.String("backend", "", "backend `HOST:PORT` the connections are spliced to (required)")
	fs.StringVar(&o.driverName, "driver", "nfqueue", "packet I/O driver: "+strings.Join(driverNames(), " or "))
	fs.StringVar(&o.iface, "interface", "", "`name` of the interface clients arrive on (--driver afpacket)")
	fs.IntVar(&o.workers, "workers", runtime.NumCPU(), "number of queues and worker threads")
	queue := fs.Uint("queue", 100, "first netfilter queue `number`")
	fs.StringVar(&o.keyFile, "key-file", "", "cookie secret `file` (64 hex digits; mode 0600); default: a random key")
	fs.StringVar(&o.fleetFile, "fleet-secret-file", "", "fleet master secret `file` shared by all proxies of a fleet")
	fs.DurationVar(&o.rotate, "rotate", 0, "rotate the cookie key every `period` (whole minutes; 0: never)")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on `ADDR:PORT` (/metrics)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the nft ruleset and exit")
	fs.IntVar(&o.mss, "mss", 1460, "MSS advertised to IPv4 clients (synproxy mss)")
	fs.IntVar(&o.mss6, "mss6", 1440, "MSS advertised to IPv6 clients")
	fs.IntVar(&o.wscale, "wscale", 7, "window scale advertised (synproxy wscale); -1 disables window scaling")
	fs.BoolVar(&o.timestamp, "timestamp", true, "offer timestamps (synproxy timestamp); they carry wscale and SACK through the cookie")
	fs.BoolVar(&o.sack, "sack", true, "offer SACK (synproxy sack-perm)")
	fs.BoolVar(&o.proxyProtocol, "proxy-protocol", false, "send a PROXY protocol v2 header to the backend")
	fs.BoolVar(&o.failOpen, "fail-open", false, "let traffic bypass the proxy (straight to the backend) while the daemon is down or overloaded")
	fs.StringVar(&o.table, "table", nft.DefaultTable, "name of the nft table (inet family) the daemon owns")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	lf := addLimitFlags(fs)
	o.bgpFlags = addBGPFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	bc, err := o.bgpFlags.config()
	if err != nil {
		return nil, err
	}
	o.bgp = bc
	lim, err := lf.limits()
	if err != nil {
		return nil, err
	}
	o.limits = lim
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *port == 0 || *port > 65535 {
		return nil, errors.New("--port is required (1-65535)")
	}
	o.port = uint16(*port)
	if *queue > 65535 {
		return nil, errors.New("--queue out of range")
	}
	o.queue = uint16(*queue)
	if *backend == "" {
		return nil, errors.New("--backend is required")
	}
	ap, err := resolveAddrPort(*backend)
	if err != nil {
		return nil, fmt.Errorf("--backend: %v", err)
	}
	o.backend = ap
	d, ok := proxy.LookupDriver(o.driverName)
	switch {
	case !ok:
		return nil, fmt.Errorf("--driver %q: %s", o.driverName, strings.Join(driverNames(), " or "))
	case d.NeedsInterface && o.iface == "":
		return nil, fmt.Errorf("--driver %s needs --interface", o.driverName)
	case o.failOpen && !d.FailOpen:
		return nil, fmt.Errorf("--fail-open needs --driver %s (%s cannot hand packets back when the daemon is gone)",
			strings.Join(driverNames(func(d proxy.Driver) bool { return d.FailOpen }), " or "), o.driverName)
	}
	if o.workers < 1 || o.workers > 256 || int(o.queue)+o.workers > 65536 {
		return nil, errors.New("--workers must be 1-256 and fit above --queue")
	}
	if o.keyFile != "" && o.fleetFile != "" {
		return nil, errors.New("--key-file and --fleet-secret-file exclude each other")
	}
	if o.wscale > cookie.MaxWScale || o.wscale < -1 {
		return nil, errors.New("--wscale must be -1..14")
	}
	if o.mss < -1 || o.mss > 65535 || o.mss6 < -1 || o.mss6 > 65535 {
		return nil, errors.New("--mss/--mss6 out of range")
	}
	return o, nil
}

func resolveAddrPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", port)
	}
	ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("cannot resolve %q", host)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(p)), nil
}

// driverNames lists the drivers of proxy.Drivers (those keep says yes to).
func driverNames(keep ...func(proxy.Driver) bool) []string {
	var names []string
	for _, d := range proxy.Drivers() {
		if len(keep) == 0 || keep[0](d) {
			names = append(names, d.Name)
		}
	}
	return names
}

// serverConfig is the proxy.ServerConfig the flags describe.
func (o *runOptions) serverConfig(log *slog.Logger) (*proxy.ServerConfig, error) {
	ring, err := o.ring()
	if err != nil {
		return nil, err
	}
	return &proxy.ServerConfig{Port: o.port, Backend: o.backend, ProxyProtocol: o.proxyProtocol,
		Driver: o.driverName, Interface: o.iface, Workers: o.workers, Queue: o.queue, Table: o.table,
		FailOpen: o.failOpen, Ring: ring, Rule: o.rule(o.mss, 1460), Rule6: o.rule(o.mss6, 1440), Logger: log,
		Limits: o.limits, OnEngine: o.serveMetrics(log)}, nil
}

// rule is the synproxy rule of the flags for one family: mss as given
// (--mss or --mss6; 0 means defMSS, -1 no MSS option), --wscale (-1: no
// window scaling), --timestamp and --sack.
func (o *runOptions) rule(mss, defMSS int) *packet.Rule {
	if mss == 0 {
		mss = defMSS
	}
	return &packet.Rule{MSS: uint16(max(mss, 0)), HasMSS: mss > 0, WScale: uint8(max(o.wscale, 0)),
		HasWScale: o.wscale >= 0, Timestamp: o.timestamp, SACKPerm: o.sack, TTL: packet.DefaultTTL}
}

// ring returns the cookie ring of --key-file, --fleet-secret-file and
// --rotate; nil (the server's own key, passed on by a graceful restart)
// without them.
func (o *runOptions) ring() (*cookie.Ring, error) {
	rc := &cookie.RingConfig{Rotate: o.rotate}
	switch {
	case o.keyFile != "":
		k, err := config.LoadKeyFile(o.keyFile)
		if err != nil {
			return nil, err
		}
		rc.Key = &k
	case o.fleetFile != "":
		f, err := config.LoadFleetSecretFile(o.fleetFile)
		if err != nil {
			return nil, err
		}
		rc.Fleet = &f
	case o.rotate == 0:
		return nil, nil
	}
	return cookie.NewRing(rc)
}

// serveMetrics returns the server's OnEngine: it serves the engine's
// counters on --metrics until the engine stops.
func (o *runOptions) serveMetrics(log *slog.Logger) func(*engine.Engine) (func(), error) {
	if o.metrics == "" {
		return nil
	}
	return func(eng *engine.Engine) (func(), error) {
		c := metrics.NewCollector(eng)
		c.Handoff, c.RulesLost = o.handoffStats, o.rulesLost
		c.Build = buildInfo()
		return metrics.ServeCollector(o.metrics, c, log, o.bgpCollectors()...)
	}
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseRunFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite run: %v\n", err)
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil && !o.dryRun {
		fmt.Fprintf(stderr, "synproxy-lite run: --log-level: %v\n", err)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if o.dryRun {
		cfg := &proxy.ServerConfig{Port: o.port, Backend: o.backend, Driver: o.driverName, Interface: o.iface,
			Workers: o.workers, Queue: o.queue, Table: o.table, FailOpen: o.failOpen}
		text, err := proxy.Ruleset(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "synproxy-lite run: %v\n", err)
			return exitUsage
		}
		fmt.Fprint(stdout, text)
		return exitOK
	}
	if err := daemon(ctx, o, log); err != nil {
		log.Error("stopped with an error", "err", err)
		return exitFailure
	}
	return exitOK
}

// daemon runs the proxy until ctx is done, or until a graceful restart
// (SIGHUP) handed over to a new process.
func daemon(ctx context.Context, o *runOptions, log *slog.Logger) error {
	cfg, err := o.serverConfig(log)
	if err != nil {
		return err
	}
	sd := &notifier{log: log, port: o.port}
	cfg.RestartCheck, cfg.OnHandOver = o.restartCheck(log), o.detachOnHandOver(sd.tookOver)
	srv, err := proxy.NewServer(cfg)
	if err != nil {
		return err
	}
	if o.speaker, err = o.newSpeaker(srv, log); err != nil {
		return err
	}
	o.handoffStats, o.rulesLost = srv.HandoffStats, srv.RulesLost
	if err := srv.Start(); err != nil {
		return err
	}
	sd.ready()
	if o.speaker != nil {
		o.speaker.Start()
		defer o.speaker.Close()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hup) }()
	go func() {
		for range hup {
			sd.reloading()
			if err := srv.Restart(); err != nil { // it logs how it went
				sd.reloadFailed(err)
			}
		}
	}()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			sd.stopping()
		case <-stopped:
		}
	}()
	return srv.Run(o.withdrawThenStop(ctx, o.speaker, log))
}
