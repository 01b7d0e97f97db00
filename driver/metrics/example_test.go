package metrics_test

import (
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
