package metrics_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/synproxy-lite/synproxy-lite/driver/metrics"
)

// The collector goes on a dedicated registry, served on /metrics with
// promhttp.HandlerFor(reg, promhttp.HandlerOpts{}). Here it collects for no
// engine, so every counter is zero.
func ExampleNewCollector() {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(nil))
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if strings.Contains(mf.GetName(), "cookie") {
			fmt.Println(mf.GetName(), len(mf.GetMetric()))
		}
	}
	// Output:
	// synproxy_lite_cookie_invalid_total 3
	// synproxy_lite_cookie_retrans_total 1
	// synproxy_lite_cookie_valid_total 1
}

// backendDown is a Readiness whose backend does not answer; the daemon
// passes its proxy.Server.
type backendDown struct{}

func (backendDown) Ready() error      { return errors.New("backend 10.99.0.2:80: unreachable") }
func (backendDown) ReadyKnown() error { return errors.New("backend 10.99.0.2:80: unreachable") }

// A readiness that fails is synproxy_lite_ready 0, and /readyz answers 503
// with the reason (ServeCollector).
func ExampleCollector_readiness() {
	c := metrics.NewCollector(nil)
	c.Readiness = backendDown{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "synproxy_lite_ready" {
			fmt.Println(mf.GetName(), mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	// Output:
	// synproxy_lite_ready 0
}
