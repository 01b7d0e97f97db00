package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
)

// Collector exports an engine's counters (and its driver's) to Prometheus at
// scrape time. Register it on a dedicated registry.
type Collector struct {
	e     *engine.Engine
	descs map[string]*prometheus.Desc
}

// NewCollector returns a collector for e. A nil e exports zeros.
func NewCollector(e *engine.Engine) *Collector {
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
	k := &engine.Counters{}
	var ds driver.DriverStats
	if c.e != nil {
		k = c.e.Counters()
		ds = c.e.Driver().Stats()
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
		{"established", "Segments of connections handed over earlier, never checked as cookies.", "", k.Established.Load()},
		{"strays", "FIN segments of connections the engine does not know: never a handshake, dropped.", "", k.Strays.Load()},
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
		{"driver_rx_errors", "Errors read from the driver's receive sockets (ENETDOWN after a link went down).", "", ds.RxErrors},
		{"driver_idle_wakeups", "Driver wake-ups with nothing to read and no wake-up asked for; thousands a second are a worker spinning.", "", ds.IdleWakeups},
		{"driver_skipped", skippedHelp, "not_host", ds.Skipped.NotHost},
		{"driver_skipped", skippedHelp, "not_local", ds.Skipped.NotLocal},
		{"driver_skipped", skippedHelp, "vlan", ds.Skipped.VLAN},
		{"driver_skipped", skippedHelp, "truncated", ds.Skipped.Truncated},
		{"driver_skipped", skippedHelp, "not_ip", ds.Skipped.NotIP},
	}
}

const skippedHelp = "Frames the driver received and left to the kernel without showing them to the engine, by reason."

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
