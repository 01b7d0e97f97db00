package metrics

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/drivertest"
)

// TestCollector: every metric keeps its name, and the values are the
// engine's counters at scrape time.
func TestCollector(t *testing.T) {
	ring, err := cookie.NewRing(nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(drivertest.New(1, 8), &engine.Config{Port: 8080, Ring: ring,
		Handoff: engine.HandoffFunc(func(*engine.Handshake) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	col := NewCollector(e)
	col.RulesLost = func() uint64 { return 2 }
	reg.MustRegister(col)
	e.Counters().SYNReceived.Add(3)
	e.Counters().InvalidStale.Add(2)
	e.Counters().MalformedChecksum.Add(1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	values := map[string]float64{}
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "/" + l.GetValue()
			}
			values[k] = m.GetCounter().GetValue()
		}
	}
	want := []string{"packets", "syn_received", "synack_sent", "synack_resent", "window_update_sent",
		"cookie_valid", "cookie_invalid", "cookie_retrans", "conn_reopened", "established", "strays", "handed_over", "handoff_failed",
		"handoffs_refused", "backend_dial_failures", "connections_idle_closed", "nft_table_lost",
		"passed", "malformed", "tx_errors", "rx_overruns",
		"driver_rx_errors", "driver_idle_wakeups", "driver_skipped"}
	for i, w := range want {
		want[i] = "synproxy_lite_" + w + "_total"
	}
	want = append(want, "synproxy_lite_connections_open", "synproxy_lite_connections_max",
		"synproxy_lite_backend_dials_in_flight", "synproxy_lite_build_info",
		"synproxy_lite_handoffs_in_flight", "synproxy_lite_handoff_duration_seconds",
		"synproxy_lite_backend_connect_duration_seconds")
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("metrics\n got %v\nwant %v", names, want)
	}
	for k, v := range map[string]float64{
		"synproxy_lite_syn_received_total":             3,
		"synproxy_lite_cookie_invalid_total/stale":     2,
		"synproxy_lite_cookie_invalid_total/hash":      0,
		"synproxy_lite_malformed_total/checksum":       1,
		"synproxy_lite_malformed_total/not_tcp":        0,
		"synproxy_lite_cookie_valid_total":             0,
		"synproxy_lite_driver_skipped_total/not_local": 0,
		"synproxy_lite_driver_skipped_total/vlan":      0,
		"synproxy_lite_driver_idle_wakeups_total":      0,
		"synproxy_lite_nft_table_lost_total":           2,
	} {
		if got, ok := values[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

// statsDriver is a fake driver with counters of its own.
type statsDriver struct {
	*drivertest.Driver
	s driver.DriverStats
}

func (d statsDriver) Stats() driver.DriverStats { return d.s }

// TestDriverStats: the driver's own counters are exported, skipped frames
// by reason.
func TestDriverStats(t *testing.T) {
	ring, err := cookie.NewRing(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := statsDriver{drivertest.New(1, 8), driver.DriverStats{Overruns: 1, TxErrors: 2, RxErrors: 3, IdleWakeups: 4,
		Skipped: driver.SkipStats{NotHost: 5, NotLocal: 6, VLAN: 7, Truncated: 8, NotIP: 9}}}
	e, err := engine.New(d, &engine.Config{Port: 8080, Ring: ring,
		Handoff: engine.HandoffFunc(func(*engine.Handshake) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(e))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "/" + l.GetValue()
			}
			values[k] = m.GetCounter().GetValue()
		}
	}
	for k, v := range map[string]float64{
		"synproxy_lite_rx_overruns_total":              1,
		"synproxy_lite_tx_errors_total":                2,
		"synproxy_lite_driver_rx_errors_total":         3,
		"synproxy_lite_driver_idle_wakeups_total":      4,
		"synproxy_lite_driver_skipped_total/not_host":  5,
		"synproxy_lite_driver_skipped_total/not_local": 6,
		"synproxy_lite_driver_skipped_total/vlan":      7,
		"synproxy_lite_driver_skipped_total/truncated": 8,
		"synproxy_lite_driver_skipped_total/not_ip":    9,
	} {
		if got, ok := values[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

// TestCollectorLimits: refused handoffs by reason come from the engine's
// counters, dial failures and the open connections from the Proxy's stats.
func TestCollectorLimits(t *testing.T) {
	ring, err := cookie.NewRing(nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(drivertest.New(1, 8), &engine.Config{Port: 8080, Ring: ring,
		Handoff: engine.HandoffFunc(func(*engine.Handshake) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	c := NewCollector(e)
	c.Handoff = func() handoff.ProxyStats {
		return handoff.ProxyStats{Conns: 3, MaxConns: 3, Dials: 1, DialFailures: 7, IdleClosed: 2}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	e.Counters().RefusedMaxConns.Add(4)
	e.Counters().RefusedPerSource.Add(5)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += "/" + l.GetValue()
			}
			values[k] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for k, v := range map[string]float64{
		"synproxy_lite_handoffs_refused_total/max_conns":  4,
		"synproxy_lite_handoffs_refused_total/per_source": 5,
		"synproxy_lite_handoffs_refused_total/dials":      0,
		"synproxy_lite_backend_dial_failures_total/other": 7,
		"synproxy_lite_connections_idle_closed_total":     2,
		"synproxy_lite_connections_open":                  3,
		"synproxy_lite_connections_max":                   3,
		"synproxy_lite_backend_dials_in_flight":           1,
	} {
		if got, ok := values[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

// TestBuildInfo: synproxy_lite_build_info is a gauge of 1 labelled with the
// build, empty labels when the collector was given none.
func TestBuildInfo(t *testing.T) {
	for _, c := range []struct {
		build BuildInfo
		want  map[string]string
	}{
		{BuildInfo{Version: "v1.2.3", Revision: "abc123", GoVersion: "go1.26.0"},
			map[string]string{"version": "v1.2.3", "revision": "abc123", "goversion": "go1.26.0"}},
		{BuildInfo{}, map[string]string{}},
	} {
		col := NewCollector(nil)
		col.Build = c.build
		reg := prometheus.NewRegistry()
		reg.MustRegister(col)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, mf := range mfs {
			if mf.GetName() != "synproxy_lite_build_info" {
				continue
			}
			found = true
			if len(mf.GetMetric()) != 1 || mf.GetType().String() != "GAUGE" {
				t.Fatalf("build_info: %v", mf)
			}
			m := mf.GetMetric()[0]
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				if l.GetValue() != "" {
					got[l.GetName()] = l.GetValue()
				}
			}
			if !maps.Equal(got, c.want) || m.GetGauge().GetValue() != 1 {
				t.Errorf("build_info %v = %v, want %v = 1", got, m.GetGauge().GetValue(), c.want)
			}
		}
		if !found {
			t.Errorf("%+v: no synproxy_lite_build_info", c.build)
		}
	}
}

// TestCollectorObserve: the dial failures by reason, the handoffs in
// flight, the two histograms and readiness come from the Proxy's stats and
// Ready.
func TestCollectorObserve(t *testing.T) {
	h := handoff.NewHistogram(handoff.HandoffBuckets...)
	h.Observe(30 * time.Microsecond)
	h.Observe(2 * time.Millisecond)
	c := NewCollector(nil)
	c.Handoff = func() handoff.ProxyStats {
		return handoff.ProxyStats{DialFailures: 10, DialFailuresBy: [4]uint64{4, 3, 2, 1}, Handoffs: 2,
			HandoffSeconds: h.Snapshot()}
	}
	ready := errors.New("backend 10.99.0.1:80: unreachable")
	c.Readiness = fakeReadiness{known: func() error { return ready }}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	values := map[string]float64{}
	gather := func() {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				k := mf.GetName()
				for _, l := range m.GetLabel() {
					k += "/" + l.GetValue()
				}
				values[k] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
				if hg := m.GetHistogram(); hg != nil {
					values[k+"/count"] = float64(hg.GetSampleCount())
					for _, b := range hg.GetBucket() {
						values[fmt.Sprintf("%s/le=%g", k, b.GetUpperBound())] = float64(b.GetCumulativeCount())
					}
				}
			}
		}
	}
	gather()
	for k, v := range map[string]float64{
		"synproxy_lite_backend_dial_failures_total/refused":     4,
		"synproxy_lite_backend_dial_failures_total/timeout":     3,
		"synproxy_lite_backend_dial_failures_total/unreachable": 2,
		"synproxy_lite_backend_dial_failures_total/other":       1,
		"synproxy_lite_handoffs_in_flight":                      2,
		"synproxy_lite_handoff_duration_seconds/count":          2,
		"synproxy_lite_handoff_duration_seconds/le=5e-05":       1,
		"synproxy_lite_handoff_duration_seconds/le=0.0025":      2,
		"synproxy_lite_backend_connect_duration_seconds/count":  0,
		"synproxy_lite_ready":                                   0,
	} {
		if got, ok := values[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	ready = nil
	gather()
	if values["synproxy_lite_ready"] != 1 {
		t.Errorf("synproxy_lite_ready = %v once ready, want 1", values["synproxy_lite_ready"])
	}
}

// fakeReadiness is a Readiness of funcs; a nil one panics, so a test sees
// which of the two was called.
type fakeReadiness struct{ ready, known func() error }

func (f fakeReadiness) Ready() error      { return f.ready() }
func (f fakeReadiness) ReadyKnown() error { return f.known() }
