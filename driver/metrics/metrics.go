package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// Collector exports an engine's counters (and its driver's) to Prometheus at
// scrape time. Register it on a dedicated registry.
type Collector struct {
	// Handoff, if set, supplies the stats of the handoff.Proxy the engine
	// hands its connections to (Proxy.Stats): open connections, backend
	// dials in flight and failed, connections closed idle. Nil exports
	// zeros. Set it before the first scrape.
	Handoff func() handoff.ProxyStats

	// RulesLost, if set, supplies how many times the daemon found its nft
	// table gone or taken and installed it again (proxy.Server.RulesLost).
	// Nil exports zero.
	RulesLost func() uint64

	// Readiness, if set, says whether the daemon serves (a
	// *proxy.Server): its ReadyKnown is exported as synproxy_lite_ready (1
	// or 0) at each scrape, its Ready answers /readyz (ServeCollector).
	// Nil exports no synproxy_lite_ready and makes /readyz answer as
	// /healthz does.
	Readiness Readiness

	// Lists, if set, supplies the packets the allow and deny lists
	// matched. Nil exports zeros.
	Lists func() ListCounts

	// Build is exported as synproxy_lite_build_info{version,revision,goversion},
	// a gauge of value 1. Its zero value exports empty labels. Set it before
	// the first scrape.
	Build BuildInfo

	e         *engine.Engine
	descs     map[string]*prometheus.Desc
	buildDesc *prometheus.Desc
	readyDesc *prometheus.Desc
	handoffH  *prometheus.Desc
	connectH  *prometheus.Desc
}

// Readiness is what the daemon's readiness comes from (proxy.Server
// implements it): each returns nil when the daemon serves, else an error
// that says why, one reason a line.
type Readiness interface {
	// Ready answers /readyz: it may take a moment to find out (a probe
	// of the backend), and is called per request, never per packet.
	Ready() error
	// ReadyKnown answers from what is known, without side effects (no
	// connection to the backend): it is called at every scrape.
	ReadyKnown() error
}

// ReadyDetailer is a Readiness that has more to say on /readyz than its
// answer: lines (each ending in a newline) that follow "ready" or the
// reasons for "not ready", such as the state of the daemon's BGP sessions.
type ReadyDetailer interface {
	ReadyDetail() string
}

// BuildInfo names the build of the binary that serves the metrics: the
// labels of synproxy_lite_build_info. The package leaves reading it to the
// binary (internal/version).
type BuildInfo struct {
	Version   string // the main module's version, or (devel)
	Revision  string // the VCS revision, empty if none was recorded
	GoVersion string // the toolchain's, e.g. go1.26.0
}

// NewCollector returns a collector for e. A nil e exports zeros.
func NewCollector(e *engine.Engine) *Collector {
	c := &Collector{e: e, descs: map[string]*prometheus.Desc{}}
	for _, m := range append(c.metrics(), c.policyMetrics(true)...) {
		if _, ok := c.descs[m.name]; ok {
			continue
		}
		name := "synproxy_lite_" + m.name
		if !m.gauge {
			name += "_total"
		}
		c.descs[m.name] = prometheus.NewDesc(name, m.help, m.labels(), nil)
	}
	c.buildDesc = prometheus.NewDesc("synproxy_lite_build_info",
		"The build of synproxy-lite running: always 1, the build in the labels.",
		[]string{"version", "revision", "goversion"}, nil)
	c.readyDesc = prometheus.NewDesc("synproxy_lite_ready",
		"1 when the daemon serves (rules installed and present, engine running, the backend's last dial answered), else 0: /readyz without its probe.",
		nil, nil)
	c.handoffH = prometheus.NewDesc("synproxy_lite_handoff_duration_seconds",
		"Time a proven connection took to become a kernel socket (TCP_REPAIR), refused handoffs excluded.", nil, nil)
	c.connectH = prometheus.NewDesc("synproxy_lite_backend_connect_duration_seconds",
		"Time a successful backend dial took (connections' dials and readiness probes).", nil, nil)
	return c
}

type metric struct {
	name, help string
	label      string // value of the "reason" label, if any
	v          uint64
	gauge      bool // a gauge, not a counter
}

func (m metric) labels() []string {
	if m.label != "" {
		return []string{"reason"}
	}
	return nil
}

func (c *Collector) metrics() []metric {
	var hs handoff.ProxyStats
	if c.Handoff != nil {
		hs = c.Handoff()
	}
	return c.metricsWith(hs)
}

// metricsWith is metrics with the handoff.Proxy's stats read once.
func (c *Collector) metricsWith(hs handoff.ProxyStats) []metric {
	k := &engine.Counters{}
	var ds driver.DriverStats
	if c.e != nil {
		k = c.e.Counters()
		ds = c.e.Driver().Stats()
	}
	var lost uint64
	if c.RulesLost != nil {
		lost = c.RulesLost()
	}
	return append([]metric{
		{"packets", "Packets the engine examined.", "", k.Packets.Load(), false},
		{"syn_received", "SYNs received (kernel synproxy: syn_received).", "", k.SYNReceived.Load(), false},
		{"synack_sent", "Cookie SYN-ACKs transmitted.", "", k.SYNACKSent.Load(), false},
		{"synack_resent", "SYN-ACKs sent again because no valid ACK came back.", "", k.SYNACKResent.Load(), false},
		{"window_update_sent", "Window-opening ACKs sent to clients once their connection was handed over.", "", k.WindowUpdates.Load(), false},
		{"cookie_valid", "ACKs with a valid cookie (kernel synproxy: cookie_valid).", "", k.CookieValid.Load(), false},
		{"cookie_invalid", "ACKs with an invalid cookie (kernel synproxy: cookie_invalid), by reason.", "stale", k.InvalidStale.Load(), false},
		{"cookie_invalid", "ACKs with an invalid cookie (kernel synproxy: cookie_invalid), by reason.", "hash", k.InvalidHash.Load(), false},
		{"cookie_invalid", "ACKs with an invalid cookie (kernel synproxy: cookie_invalid), by reason.", "tuple", k.InvalidMalformed.Load(), false},
		{"cookie_retrans", "Segments of a connection queued before its socket existed (kernel synproxy: cookie_retrans).", "", k.CookieRetrans.Load(), false},
		{"conn_reopened", "SYNs on a tuple handed over moments before (kernel synproxy: conn_reopened).", "", k.ConnReopened.Load(), false},
		{"established", "Segments of connections handed over earlier, never checked as cookies.", "", k.Established.Load(), false},
		{"strays", "FIN segments of connections the engine does not know: never a handshake, dropped.", "", k.Strays.Load(), false},
		{"handed_over", "Connections materialised as kernel sockets.", "", k.HandedOver.Load(), false},
		{"handoff_failed", "Valid handshakes whose handoff failed.", "", k.HandoffFailed.Load(), false},
		{"handoffs_refused", refusedHelp, "max_conns", k.RefusedMaxConns.Load(), false},
		{"handoffs_refused", refusedHelp, "per_source", k.RefusedPerSource.Load(), false},
		{"handoffs_refused", refusedHelp, "dials", k.RefusedDials.Load(), false},
		{"handoffs_refused", refusedHelp, "other", k.RefusedOther.Load(), false},
		{"backend_dial_failures", dialHelp, handoff.DialRefused, hs.DialFailuresBy[0], false},
		{"backend_dial_failures", dialHelp, handoff.DialTimeout, hs.DialFailuresBy[1], false},
		{"backend_dial_failures", dialHelp, handoff.DialUnreachable, hs.DialFailuresBy[2], false},
		{"backend_dial_failures", dialHelp, handoff.DialOther, dialOther(hs), false},
		{"connections_idle_closed", "Connections closed because neither direction moved data for the idle timeout.", "", hs.IdleClosed, false},
		{"connections_open", "Handed-over connections open now (client and backend sockets).", "", uint64(max(hs.Conns, 0)), true},
		{"connections_max", "The limit on open connections in force (0: none).", "", uint64(max(hs.MaxConns, 0)), true},
		{"backend_dials_in_flight", "Backend dials in progress.", "", uint64(max(hs.Dials, 0)), true},
		{"handoffs_in_flight", "Proven connections being made kernel sockets now.", "", uint64(max(hs.Handoffs, 0)), true},
		{"nft_table_lost", "Times the daemon found its nft table gone or taken and installed it again.", "", lost, false},
		{"passed", "Packets given back to the kernel untouched.", "", k.Passed.Load(), false},
		{"malformed", "Packets dropped as malformed, by reason.", "truncated", k.MalformedTrunc.Load(), false},
		{"malformed", "Packets dropped as malformed, by reason.", "header", k.MalformedHeader.Load(), false},
		{"malformed", "Packets dropped as malformed, by reason.", "checksum", k.MalformedChecksum.Load(), false},
		{"malformed", "Packets dropped as malformed, by reason.", "options", k.MalformedOptions.Load(), false},
		{"malformed", "Packets dropped as malformed, by reason.", "flags", k.MalformedFlags.Load(), false},
		{"malformed", "Packets dropped as malformed, by reason.", "not_tcp", k.MalformedNotTCP.Load(), false},
		{"tx_errors", "Packets the engine failed to transmit.", "", k.TxErrors.Load() + ds.TxErrors, false},
		{"rx_overruns", "Receive buffer overruns (ENOBUFS): packets the kernel could not queue to userspace.", "", ds.Overruns, false},
		{"driver_rx_errors", "Errors read from the driver's receive sockets (ENETDOWN after a link went down).", "", ds.RxErrors, false},
		{"driver_idle_wakeups", "Driver wake-ups with nothing to read and no wake-up asked for; thousands a second are a worker spinning.", "", ds.IdleWakeups, false},
		{"driver_skipped", skippedHelp, "not_host", ds.Skipped.NotHost, false},
		{"driver_skipped", skippedHelp, "not_local", ds.Skipped.NotLocal, false},
		{"driver_skipped", skippedHelp, "vlan", ds.Skipped.VLAN, false},
		{"driver_skipped", skippedHelp, "truncated", ds.Skipped.Truncated, false},
		{"driver_skipped", skippedHelp, "not_ip", ds.Skipped.NotIP, false},
	}, c.policyMetrics(false)...)
}

const refusedHelp = "Valid handshakes refused at a limit, by reason: no socket was made, the ACK was dropped, the client's retransmission tries again."

const dialHelp = "Backend dials that failed, by reason (refused, timeout, unreachable, other); each closed its client's connection."

// dialOther is the failures of reason "other": those the Proxy counted so,
// and any its total has beyond the reasons (stats made by hand).
func dialOther(hs handoff.ProxyStats) uint64 {
	known := hs.DialFailuresBy[0] + hs.DialFailuresBy[1] + hs.DialFailuresBy[2] + hs.DialFailuresBy[3]
	if hs.DialFailures > known {
		return hs.DialFailuresBy[3] + hs.DialFailures - known
	}
	return hs.DialFailuresBy[3]
}

const skippedHelp = "Frames the driver received and left to the kernel without showing them to the engine, by reason."

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	ch <- c.buildDesc
	ch <- c.readyDesc
	ch <- c.handoffH
	ch <- c.connectH
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	var hs handoff.ProxyStats
	if c.Handoff != nil {
		hs = c.Handoff()
	}
	for _, m := range c.metricsWith(hs) {
		d := c.descs[m.name]
		vt := prometheus.CounterValue
		if m.gauge {
			vt = prometheus.GaugeValue
		}
		if m.label != "" {
			ch <- prometheus.MustNewConstMetric(d, vt, float64(m.v), m.label)
		} else {
			ch <- prometheus.MustNewConstMetric(d, vt, float64(m.v))
		}
	}
	ch <- prometheus.MustNewConstMetric(c.buildDesc, prometheus.GaugeValue, 1,
		c.Build.Version, c.Build.Revision, c.Build.GoVersion)
	ch <- histogram(c.handoffH, hs.HandoffSeconds)
	ch <- histogram(c.connectH, hs.ConnectSeconds)
	if c.Readiness != nil {
		v := 1.0
		if c.Readiness.ReadyKnown() != nil {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(c.readyDesc, prometheus.GaugeValue, v)
	}
}

func histogram(d *prometheus.Desc, s handoff.HistogramSnapshot) prometheus.Metric {
	return prometheus.MustNewConstHistogram(d, s.Count, s.Sum, s.Buckets)
}
