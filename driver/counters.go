package driver

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Counters are the engine's counters. The names of the exported metrics
// mirror the kernel's /proc/net/stat/synproxy where one exists.
type Counters struct {
	Packets       atomic.Uint64 // every packet the engine looked at
	SYNReceived   atomic.Uint64 // syn_received
	SYNACKSent    atomic.Uint64 // cookie SYN-ACKs transmitted
	SYNACKResent  atomic.Uint64 // SYN-ACKs sent again while their ACK was missing
	WindowUpdates atomic.Uint64 // window-opening ACKs sent to handed-over clients
	CookieValid   atomic.Uint64 // cookie_valid
	CookieInvalid atomic.Uint64 // cookie_invalid (sum of the three below)
	CookieRetrans atomic.Uint64 // cookie_retrans: segments of a just-handed-over connection
	ConnReopened  atomic.Uint64 // conn_reopened: a SYN on a tuple handed over seconds ago
	HandedOver    atomic.Uint64 // connections handed over
	HandoffFailed atomic.Uint64
	Passed        atomic.Uint64 // given back to the kernel (resets, strays)
	TxErrors      atomic.Uint64

	InvalidStale     atomic.Uint64 // cookie older than two slots or from the future
	InvalidHash      atomic.Uint64 // MSS index >= 4: forged or mismatched
	InvalidMalformed atomic.Uint64 // tuple the cookie code refused

	Malformed         atomic.Uint64 // sum of the malformed reasons below
	MalformedTrunc    atomic.Uint64
	MalformedHeader   atomic.Uint64
	MalformedChecksum atomic.Uint64
	MalformedOptions  atomic.Uint64
	MalformedFlags    atomic.Uint64
	MalformedNotTCP   atomic.Uint64
}

func (c *Counters) countMalformed(r parseErr) {
	c.Malformed.Add(1)
	switch r {
	case parseTruncated:
		c.MalformedTrunc.Add(1)
	case parseChecksum:
		c.MalformedChecksum.Add(1)
	case parseBadOptions:
		c.MalformedOptions.Add(1)
	case parseNotTCP, parseFragment:
		c.MalformedNotTCP.Add(1)
	default:
		c.MalformedHeader.Add(1)
	}
}

// Collector exports an engine's counters (and its driver's) to Prometheus at
// scrape time. Register it on a dedicated registry.
type Collector struct {
	e     *Engine
	descs map[string]*prometheus.Desc
}

// NewCollector returns a collector for e.
func NewCollector(e *Engine) *Collector {
	c := &Collector{e: e, descs: map[string]*prometheus.Desc{}}
	for _, m := range c.metrics() {
		if _, ok := c.descs[m.name]; ok {
			continue
		}
		c.descs[m.name] = prometheus.NewDesc("synproxy_lite_"+m.name+"_total", m.help, m.labels(), nil)
	}
	return c
}

type metric struct {
	name, help string
	label      string // value of the "reason" label, if any
	v          uint64
}

func (m metric) labels() []string {
	if m.label != "" {
		return []string{"reason"}
	}
	return nil
}

func (c *Collector) metrics() []metric {
	k := &Counters{}
	var ds DriverStats
	if c.e != nil {
		k = &c.e.ctrs
		ds = c.e.drv.Stats()
	}
	return []metric{
		{"packets", "Packets the engine examined.", "", k.Packets.Load()},
		{"syn_received", "SYNs received (kernel synproxy: syn_received).", "", k.SYNReceived.Load()},
		{"synack_sent", "Cookie SYN-ACKs transmitted.", "", k.SYNACKSent.Load()},
		{"synack_resent", "SYN-ACKs sent again because no valid ACK came back.", "", k.SYNACKResent.Load()},
		{"window_update_sent", "Window-opening ACKs sent to clients once their connection was handed over.", "", k.WindowUpdates.Load()},
		{"cookie_valid", "ACKs with a valid cookie (kernel synproxy: cookie_valid).", "", k.CookieValid.Load()},
		{"cookie_invalid", "ACKs with an invalid cookie (kernel synproxy: cookie_invalid), by reason.", "stale", k.InvalidStale.Load()},
		{"cookie_invalid", "ACKs with an invalid cookie (kernel synproxy: cookie_invalid), by reason.", "hash", k.InvalidHash.Load()},
		{"cookie_invalid", "ACKs with an invalid cookie (kernel synproxy: cookie_invalid), by reason.", "tuple", k.InvalidMalformed.Load()},
		{"cookie_retrans", "Segments of a connection queued before its socket existed (kernel synproxy: cookie_retrans).", "", k.CookieRetrans.Load()},
		{"conn_reopened", "SYNs on a tuple handed over moments before (kernel synproxy: conn_reopened).", "", k.ConnReopened.Load()},
		{"handed_over", "Connections materialised as kernel sockets.", "", k.HandedOver.Load()},
		{"handoff_failed", "Valid handshakes whose handoff failed.", "", k.HandoffFailed.Load()},
		{"passed", "Packets given back to the kernel untouched.", "", k.Passed.Load()},
		{"malformed", "Packets dropped as malformed, by reason.", "truncated", k.MalformedTrunc.Load()},
		{"malformed", "Packets dropped as malformed, by reason.", "header", k.MalformedHeader.Load()},
		{"malformed", "Packets dropped as malformed, by reason.", "checksum", k.MalformedChecksum.Load()},
		{"malformed", "Packets dropped as malformed, by reason.", "options", k.MalformedOptions.Load()},
		{"malformed", "Packets dropped as malformed, by reason.", "flags", k.MalformedFlags.Load()},
		{"malformed", "Packets dropped as malformed, by reason.", "not_tcp", k.MalformedNotTCP.Load()},
		{"tx_errors", "Packets the engine failed to transmit.", "", k.TxErrors.Load() + ds.TxErrors},
		{"rx_overruns", "Receive buffer overruns (ENOBUFS): packets the kernel could not queue to userspace.", "", ds.Overruns},
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.metrics() {
		d := c.descs[m.name]
		if m.label != "" {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(m.v), m.label)
		} else {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(m.v))
		}
	}
}
