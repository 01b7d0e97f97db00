package metrics

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/drivertest"
)

// TestPolicyMetrics: an engine with a policy exports its counters, the
// lists' counts and the engagement gauge; one without exports none of them.
func TestPolicyMetrics(t *testing.T) {
	ring, err := cookie.NewRing(nil)
	if err != nil {
		t.Fatal(err)
	}
	newEngine := func(p *engine.Policy) *engine.Engine {
		e, err := engine.New(provenDriver{drivertest.New(1, 8)}, &engine.Config{Port: 8080, Ring: ring, Policy: p,
			Handoff: engine.HandoffFunc(func(*engine.Handshake) error { return nil })})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := newEngine(&engine.Policy{Mode: engine.ModeOnDemand, EngageRate: 10, SYNRate: 5})
	e.PolicyCounters().SYNLimited.Add(4)
	e.PolicyCounters().ReflectLimited.Add(2)
	e.PolicyCounters().Engagements.Add(1)
	e.PolicyCounters().Engaged.Store(true)
	c := NewCollector(e)
	c.Lists = func() ListCounts { return ListCounts{Allowed: 7, Denied: 9, Proven: 3} }
	got := gather(t, c)
	for name, want := range map[string]float64{
		"synproxy_lite_cookies_engaged": 1, "synproxy_lite_cookie_engagements_total": 1,
		"synproxy_lite_list_allowed_packets_total": 7, "synproxy_lite_list_denied_packets_total": 9,
		"synproxy_lite_proven_packets_total": 3, "synproxy_lite_syn_limited_total": 4, "synproxy_lite_proven_overruns_total": 6,
		"synproxy_lite_reflection_limited_total": 2, "synproxy_lite_monitor_synack_total": 0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (exported %v), want %v", name, v, ok, want)
		}
	}
	e2 := newEngine(&engine.Policy{Mode: engine.ModeMonitor})
	if v := gather(t, NewCollector(e2))["synproxy_lite_cookies_engaged"]; v != 0 {
		t.Errorf("monitor mode: cookies_engaged %v, want 0", v)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(newEngine(nil)))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.Contains(mf.GetName(), "limited") || strings.Contains(mf.GetName(), "engaged") {
			t.Errorf("an engine without a policy exports %s", mf.GetName())
		}
	}
}

// provenDriver is a driver with a ring of proven clients that lost 6
// packets.
type provenDriver struct{ driver.Driver }

func (provenDriver) ProvenOverruns() uint64 { return 6 }

func (provenDriver) ProvenPackets() uint64 { return 0 }

func (provenDriver) Prove(netip.Addr) {}

// gather returns the value of each unlabelled metric c exports.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]float64{}
	for _, mf := range mfs {
		for _, x := range mf.GetMetric() {
			if len(x.GetLabel()) > 0 {
				continue
			}
			if x.GetCounter() != nil {
				m[mf.GetName()] = x.GetCounter().GetValue()
			} else {
				m[mf.GetName()] = x.GetGauge().GetValue()
			}
		}
	}
	return m
}
