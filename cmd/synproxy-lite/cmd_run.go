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
       synproxy-lite run --config FILE [--dry-run]

Answers every SYN to --port with a SYN cookie, keeps no state until the
client's ACK proves it, then makes the connection a real kernel socket and
splices it to --backend. Needs CAP_NET_ADMIN and CAP_NET_RAW. A
configuration file (--config; see "synproxy-lite check") describes one or
more services instead of the flags.

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
	logFormat     string
	limits        *handoff.Limits
	bgp           *bgp.Config // cfg's (config.Config.Speaker); nil without BGP
	bgpFlags      *bgpFlags
	speaker       *bgp.Speaker // set before the server starts
	// args are the arguments parsed, which a graceful restart's new
	// process is started with.
	args []string
	// configFile is --config; cfg the configuration, of the file or of
	// the flags.
	configFile  string
	cfg         *config.Config
	policyFlags *policyFlags
	// policy, lists and proven are the protection policy of the flags
	// (the one service of cfg), for the tests.
	policy     *engine.Policy
	lists      *nft.Lists
	proven     *nft.Proven
	listCounts func() metrics.ListCounts
	// handoffStats and rulesLost are the Server's, for the metrics (set
	// once it exists).
	handoffStats func() handoff.ProxyStats
	rulesLost    func() uint64
	readiness    metrics.Readiness
}

// configOnly are the flags --config goes with; every other flag of run is
// a key of the file.
var configOnly = map[string]bool{"config": true, "dry-run": true}

func parseRunFlags(args []string, help io.Writer) (*runOptions, error) {
	o := &runOptions{args: args}
	fs := newFlagSet("run", runUsage, help)
	fs.StringVar(&o.configFile, "config", "", "configuration `file` (TOML) describing the services; excludes the other flags but --dry-run")
	port := fs.Uint("port", 0, "protected TCP `port` (required)")
	backend := fs.String("backend", "", "backend `HOST:PORT` the connections are spliced to (required)")
	fs.StringVar(&o.driverName, "driver", proxy.AutoDriver, "packet I/O driver: "+strings.Join(driverNames(), ", ")+
		", or auto (afxdp where XDP attaches to --interface, else afpacket, else nfqueue)")
	fs.StringVar(&o.iface, "interface", "", "`name` of the interface clients arrive on (--driver afpacket or afxdp)")
	fs.IntVar(&o.workers, "workers", config.DefaultWorkers(), "number of queues and worker threads")
	queue := fs.Uint("queue", config.DefaultQueue, "first netfilter queue `number`")
	fs.StringVar(&o.keyFile, "key-file", "", "cookie secret `file` (64 hex digits; mode 0600); default: a random key; "+
		"with --rotate it seeds the rotation")
	fs.StringVar(&o.fleetFile, "fleet-secret-file", "", "fleet master secret `file` shared by all proxies of a fleet")
	fs.DurationVar(&o.rotate, "rotate", 0, "rotate the cookie key every `period` (whole minutes; 0: never)")
	profile := fs.String("cookie-profile", "linux", "cookie layout: linux (the kernel's) or full (window scale and SACK in the ISN, for clients without timestamps); every node of a fleet must agree")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on `ADDR:PORT` (/metrics)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the nft ruleset and exit")
	fs.IntVar(&o.mss, "mss", config.DefaultMSS, "MSS advertised to IPv4 clients (synproxy mss)")
	fs.IntVar(&o.mss6, "mss6", config.DefaultMSS6, "MSS advertised to IPv6 clients")
	fs.IntVar(&o.wscale, "wscale", config.DefaultWScale, "window scale advertised (synproxy wscale); -1 disables window scaling")
	fs.BoolVar(&o.timestamp, "timestamp", true, "offer timestamps (synproxy timestamp); they carry wscale and SACK through the cookie")
	fs.BoolVar(&o.sack, "sack", true, "offer SACK (synproxy sack-perm)")
	fs.BoolVar(&o.proxyProtocol, "proxy-protocol", false, "send a PROXY protocol v2 header to the backend")
	fs.BoolVar(&o.failOpen, "fail-open", false, "let traffic bypass the proxy (straight to the backend) while the daemon is down or overloaded")
	fs.StringVar(&o.table, "table", nft.DefaultTable, "name of the nft table (inet family) the daemon owns")
	fs.StringVar(&o.logLevel, "log-level", config.DefaultLogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", config.DefaultLogFormat, "log line format: text (logfmt) or json (one object a line)")
	lf := addLimitFlags(fs)
	o.policyFlags = addPolicyFlags(fs)
	o.bgpFlags = addBGPFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.configFile != "" {
		var others []string
		fs.Visit(func(f *flag.Flag) {
			if !configOnly[f.Name] {
				others = append(others, "--"+f.Name)
			}
		})
		if len(others) > 0 {
			return nil, fmt.Errorf("--config excludes %s: the file describes the services (flags serve one service without a file)",
				strings.Join(others, ", "))
		}
		c, err := config.Load(o.configFile)
		if err != nil {
			return nil, err
		}
		o.cfg, o.bgp = c, c.Speaker()
		return o, nil
	}
	if *queue > 65535 {
		return nil, fmt.Errorf("--queue %d: want 0-65535", *queue)
	}
	c := config.Config{Table: o.table, Metrics: o.metrics, LogLevel: o.logLevel, LogFormat: o.logFormat, CookieProfile: *profile, Workers: o.workers,
		FailOpen: o.failOpen, Secret: config.Secret{KeyFile: o.keyFile, FleetSecretFile: o.fleetFile}, Rotate: o.rotate,
		Services: []config.Service{{Name: "default", ProxyProtocol: o.proxyProtocol, Driver: o.driverName,
			Interface: o.iface, Workers: o.workers, Queue: int(*queue), FailOpen: o.failOpen, Table: o.table,
			MSS: o.mss, MSS6: o.mss6, WScale: o.wscale, Timestamp: o.timestamp, SACK: o.sack, Limits: lf.config(),
			Policy: o.policyFlags.config()}}, BGP: o.bgpFlags.config()}
	o.cfg = config.FromFlags(c, int(min(*port, 1<<20)), *backend)
	if err := o.cfg.Validate(); err != nil {
		return nil, err
	}
	o.bgp = o.cfg.Speaker()
	var err error
	s := &o.cfg.Services[0]
	o.policy, o.proven = s.EnginePolicy(), s.Proven()
	if o.lists, err = o.cfg.Lists(0); err != nil {
		return nil, err
	}
	o.port, o.queue = uint16(*port), uint16(*queue)
	ap, err := resolveAddrPort(*backend)
	if err != nil {
		return nil, fmt.Errorf("--backend %s: %v", *backend, err)
	}
	o.backend = ap
	o.limits = handoffLimits(&o.cfg.Services[0].Limits)
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

// rule is the synproxy rule of the flags for one family (see ruleOf).
func (o *runOptions) rule(mss, defMSS int) *packet.Rule {
	return ruleOf(&o.cfg.Services[0], mss, defMSS)
}

// ruleOf is the synproxy rule of a service for one family: mss as given
// (mss or mss6; 0 means defMSS, -1 no MSS option), wscale (-1: no window
// scaling), timestamp and sack.
func ruleOf(s *config.Service, mss, defMSS int) *packet.Rule {
	if mss == 0 {
		mss = defMSS
	}
	return &packet.Rule{MSS: uint16(max(mss, 0)), HasMSS: mss > 0, WScale: uint8(max(s.WScale, 0)),
		HasWScale: s.WScale >= 0, Timestamp: s.Timestamp, SACKPerm: s.SACK, TTL: packet.DefaultTTL}
}

// ring returns the cookie ring of the key or fleet secret and the
// rotation (config.Config.Ring); nil (the server's own key, passed on by a
// graceful restart) without them.
func (o *runOptions) ring() (*cookie.Ring, error) {
	return o.cfg.Ring()
}

// server is one proxy.Server of the daemon: a port of a service.
type server struct {
	name string // the service's name
	cfg  *proxy.ServerConfig
	// lists re-reads the service's allow and deny lists (SIGUSR1); nil
	// without lists.
	lists func() (*nft.Lists, error)
}

// servers returns the ServerConfig of every port of every service of c,
// the backends resolved; with secrets, each with its cookie ring (read
// from the key or fleet secret; see config.Config.Ring).
func servers(c *config.Config, log *slog.Logger, secrets bool) ([]server, error) {
	var out []server
	for si, s := range c.Services {
		lists, err := c.Lists(si)
		if err != nil {
			return nil, err
		}
		var reread func() (*nft.Lists, error)
		if lists != nil {
			reread = func() (*nft.Lists, error) { return c.Lists(si) }
		}
		var backends []netip.AddrPort
		for _, b := range s.Backends {
			ap, err := resolveAddrPort(b)
			if err != nil {
				return nil, fmt.Errorf("service %s: backend %s: %v", s.Name, b, err)
			}
			backends = append(backends, ap)
		}
		tables := s.Tables()
		for i, port := range s.Ports {
			var ring *cookie.Ring
			if secrets {
				var err error
				if ring, err = c.Ring(); err != nil {
					return nil, err
				}
			}
			l := log
			if len(c.Services) > 1 || len(s.Ports) > 1 {
				l = log.With("service", s.Name)
			}
			out = append(out, server{name: s.Name, cfg: &proxy.ServerConfig{Port: uint16(port), Addrs: s.Addrs(), Backend: backends[0],
				Backends: backends[1:], ProxyProtocol: s.ProxyProtocol, Driver: s.Driver, Interface: s.Interface,
				Workers: s.Workers, Queue: s.PortQueue(i), Table: tables[i], FailOpen: s.FailOpen, Ring: ring,
				Rule: ruleOf(&s, s.MSS, config.DefaultMSS), Rule6: ruleOf(&s, s.MSS6, config.DefaultMSS6),
				Limits: handoffLimits(&s.Limits), Logger: l, Engine: &engine.Config{Profile: c.Profile()},
				Lists: cloneLists(lists), Policy: s.EnginePolicy(), ProvenClients: s.Proven()}, lists: reread})
		}
	}
	return out, nil
}

// rulesets returns the nft ruleset each server installs (proxy.Ruleset),
// after a comment naming its service and port when there are several.
func rulesets(srvs []server) (string, error) {
	var b strings.Builder
	for _, s := range srvs {
		text, err := proxy.Ruleset(s.cfg)
		if err != nil {
			return "", fmt.Errorf("service %s, port %d: %w", s.name, s.cfg.Port, err)
		}
		if len(srvs) > 1 {
			fmt.Fprintf(&b, "# service %s, port %d\n", s.name, s.cfg.Port)
		}
		b.WriteString(text)
	}
	return b.String(), nil
}

// serveMetrics returns the server's OnEngine: it serves the engine's
// counters on the metrics address until the engine stops.
func (o *runOptions) serveMetrics(log *slog.Logger) func(*engine.Engine) (func(), error) {
	if o.cfg.Metrics == "" {
		return nil
	}
	return func(eng *engine.Engine) (func(), error) {
		c := metrics.NewCollector(eng)
		c.Handoff, c.RulesLost, c.Readiness, c.Lists = o.handoffStats, o.rulesLost, withBGP(o.readiness, o.speaker), o.listCounts
		c.Build = buildInfo()
		return metrics.ServeCollector(o.cfg.Metrics, c, log, o.bgpCollectors()...)
	}
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseRunFlags(args, stdout) // help goes to stdout
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite run: %v\n", err)
		return exitUsage
	}
	var level slog.Level
	level.UnmarshalText([]byte(o.cfg.LogLevel)) // validated
	log := newLogger(stderr, o.cfg.LogFormat, level)
	if o.dryRun {
		chooseDrivers(o.cfg, log, false)
		srvs, err := servers(o.cfg, log, false)
		if err == nil {
			var text string
			if text, err = rulesets(srvs); err == nil {
				fmt.Fprint(stdout, text)
				return exitOK
			}
		}
		fmt.Fprintf(stderr, "synproxy-lite run: %v\n", err)
		return exitUsage
	}
	if err := daemon(ctx, o, log); err != nil {
		log.Error("stopped with an error", "err", err)
		return exitFailure
	}
	return exitOK
}

// newLogger is the daemon's logger: --log-format text (logfmt) or json (one
// object a line), at --log-level, on w.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// daemon runs the proxy until ctx is done, or until a graceful restart
// (SIGHUP) handed over to a new process. With several servers (services
// or ports) it runs them all until one stops.
func daemon(ctx context.Context, o *runOptions, log *slog.Logger) error {
	chooseDrivers(o.cfg, log, true)
	srvs, err := servers(o.cfg, log, true)
	if err != nil {
		return err
	}
	if len(srvs) > 1 {
		return daemonMany(ctx, o, srvs, log)
	}
	cfg := srvs[0].cfg
	cfg.OnEngine = o.serveMetrics(log)
	sd := &notifier{log: log, serving: fmt.Sprintf("port %d", cfg.Port)}
	cfg.RestartCheck, cfg.OnHandOver = o.restartCheck(log), o.detachOnHandOver(sd.tookOver)
	srv, err := proxy.NewServer(cfg)
	if err != nil {
		return err
	}
	if o.speaker, err = o.newSpeaker(bgpReady(srv), log); err != nil {
		return err
	}
	o.handoffStats, o.rulesLost, o.readiness = srv.HandoffStats, srv.RulesLost, srv
	if cfg.Lists != nil || cfg.ProvenClients != nil {
		o.listCounts = listCounts(srv)
	}
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
	defer reloadOnUSR1([]*proxy.Server{srv}, srvs, log)()
	return srv.Run(o.withdrawThenStop(ctx, o.speaker, log))
}
