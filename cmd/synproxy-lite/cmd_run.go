package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/afpacket"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/metrics"
	"github.com/synproxy-lite/synproxy-lite/driver/nfqueue"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
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
}

func parseRunFlags(args []string, stderr io.Writer) (*runOptions, error) {
	o := &runOptions{}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, runUsage); fs.PrintDefaults() }
	port := fs.Uint("port", 0, "protected TCP `port` (required)")
	backend := fs.String("backend", "", "backend `HOST:PORT` the connections are spliced to (required)")
	fs.StringVar(&o.driverName, "driver", "nfqueue", "packet I/O driver: nfqueue or afpacket")
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
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
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
	switch o.driverName {
	case "nfqueue":
	case "afpacket":
		if o.iface == "" {
			return nil, errors.New("--driver afpacket needs --interface")
		}
		if o.failOpen {
			return nil, errors.New("--fail-open needs --driver nfqueue (AF_PACKET cannot hand packets back when the daemon is gone)")
		}
	default:
		return nil, fmt.Errorf("--driver %q: nfqueue or afpacket", o.driverName)
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

func (o *runOptions) nftConfig() *nft.Config {
	return &nft.Config{Table: o.table, Port: o.port, QueueNum: o.queue, QueueTotal: uint16(o.workers),
		FailOpen: o.failOpen, Fallback: o.backend, Drop: o.driverName == "afpacket"}
}

// openDriver opens the packet I/O driver o names.
func (o *runOptions) openDriver() (driver.Driver, error) {
	if o.driverName == "afpacket" {
		return afpacket.Open(&afpacket.Config{Interface: o.iface, Port: o.port, Workers: o.workers})
	}
	return nfqueue.Open(&nfqueue.Config{QueueNum: o.queue, Queues: o.workers, FailOpen: o.failOpen})
}

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
	}
	return cookie.NewRing(rc)
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
	if o.dryRun {
		m, perr := nft.ProbeQueue(o.nftConfig())
		note := "# queueing: " + m.String()
		if perr != nil {
			note = "# queueing: " + m.String() + " (nft_queue not probed: " + perr.Error() + ")"
		}
		text, err := nft.Render(o.nftConfig(), m)
		if err != nil {
			fmt.Fprintf(stderr, "synproxy-lite run: %v\n", err)
			return exitUsage
		}
		fmt.Fprintln(stdout, note)
		fmt.Fprint(stdout, text)
		return exitOK
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "synproxy-lite run: --log-level: %v\n", err)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := daemon(ctx, o, log, nil); err != nil {
		log.Error("stopped with an error", "err", err)
		return exitFailure
	}
	return exitOK
}

// rule is the synproxy rule the flags spell for clients of one family, mss
// being --mss or --mss6 (defMSS its default): -1 sends no MSS option, 0
// means defMSS; --wscale -1 turns window scaling off.
func (o *runOptions) rule(mss, defMSS int) *packet.Rule {
	if mss == 0 {
		mss = defMSS
	}
	return &packet.Rule{MSS: uint16(max(mss, 0)), HasMSS: mss > 0, WScale: uint8(max(o.wscale, 0)),
		HasWScale: o.wscale >= 0, Timestamp: o.timestamp, SACKPerm: o.sack, TTL: packet.DefaultTTL}
}

// daemon runs the proxy until ctx is done. started, when not nil, receives
// the engine once traffic flows (the demo reads its counters).
func daemon(ctx context.Context, o *runOptions, log *slog.Logger, started chan<- *engine.Engine) error {
	in, err := inherited()
	if err != nil {
		return err
	}
	ring, key, err := o.ringFor(in)
	if err != nil {
		return err
	}
	ho, err := newProxyHandoff(ctx, o, log)
	if err != nil {
		return err
	}
	defer ho.Close()
	if in != nil {
		ho.adopt(in)
		log.Info("graceful restart: adopted the open connections", "connections", len(in.splices))
	}
	var (
		eng        *engine.Engine
		stopEngine = func() {}
		engDone    chan error
	)
	startEngine := func() error {
		drv, err := o.openDriver()
		if err != nil {
			return err
		}
		eng, err = engine.New(drv, &engine.Config{Port: o.port, Ring: ring, Handoff: ho,
			Rule4: o.rule(o.mss, 1460), Rule6: o.rule(o.mss6, 1440), Logger: log})
		if err != nil {
			drv.Close()
			return err
		}
		var engCtx context.Context
		engCtx, stopEngine = context.WithCancel(context.Background())
		engDone = make(chan error, 1)
		go func() { engDone <- eng.Run(engCtx) }()
		return nil
	}
	if err := startEngine(); err != nil {
		return err
	}
	defer func() { stopEngine() }()

	rules, err := nft.Install(o.nftConfig())
	if err != nil {
		stopEngine()
		<-engDone
		return err
	}
	if rules.Stale && in == nil {
		log.Warn("removed a stale nft table left by an earlier run", "table", o.table)
	}
	log.Info("nft rules installed", "table", "inet "+o.table, "queueing", rules.Method.String(),
		"queues", fmt.Sprintf("%d-%d", o.queue, int(o.queue)+o.workers-1), "fail_open", o.failOpen)
	keepRules := false // a graceful restart leaves them to the new process
	defer func() {
		if keepRules {
			return
		}
		if err := rules.Remove(); err != nil {
			log.Error("removing nft table", "err", err)
		} else {
			log.Info("nft table removed", "table", "inet "+o.table)
		}
	}()

	var metricsSrv *http.Server
	startMetrics := func() error {
		if o.metrics == "" {
			return nil
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(metrics.NewCollector(eng))
		ln, err := net.Listen("tcp", o.metrics)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go metricsSrv.Serve(ln)
		log.Info("metrics", "addr", ln.Addr().String())
		return nil
	}
	stopMetrics := func() {
		if metricsSrv != nil {
			metricsSrv.Close()
			metricsSrv = nil
		}
	}
	if err := startMetrics(); err != nil {
		stopEngine()
		<-engDone
		return err
	}
	defer stopMetrics()
	log.Info("proxy running", "port", o.port, "backend", o.backend.String(), "workers", o.workers,
		"proxy_protocol", o.proxyProtocol, "pid", os.Getpid())
	in.signalReady()
	if started != nil {
		started <- eng
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			// Rules first, so the kernel stops queueing, then the queues.
			if err := rules.Remove(); err != nil {
				log.Error("removing nft table", "err", err)
			}
			stopEngine()
			return <-engDone
		case err := <-engDone:
			return fmt.Errorf("engine stopped: %w", err)
		case <-hup:
		}
		log.Info("graceful restart: handing over to a new process")
		// Release the queues and the metrics address for the new process;
		// the table stays, open connections keep reaching their sockets.
		stopEngine()
		<-engDone
		stopMetrics()
		_, kept, err := ho.handOver(key, log)
		if err == nil {
			keepRules = true
			if kept > 0 {
				log.Info("graceful restart: serving the remaining connections to their end", "connections", kept)
			}
			ho.Wait()
			return nil
		}
		log.Error("graceful restart failed; carrying on", "err", err)
		if err := startEngine(); err != nil {
			return err
		}
		if err := startMetrics(); err != nil {
			log.Error("metrics", "err", err)
		}
	}
}
