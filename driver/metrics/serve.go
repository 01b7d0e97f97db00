package metrics

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/synproxy-lite/synproxy-lite/driver/engine"
)

// Serve exports e's counters on a dedicated registry at
// http://addr/metrics until stop is called, which closes the listener and
// so frees addr (a graceful restart's new process binds it next). log, if
// not nil, receives the address served.
func Serve(addr string, e *engine.Engine, log *slog.Logger) (stop func(), err error) {
	return ServeCollector(addr, NewCollector(e), log)
}

// ServeCollector is Serve with a Collector made by the caller (one whose
// Handoff is set, say), and any extra collectors on the same registry.
func ServeCollector(addr string, c *Collector, log *slog.Logger, extra ...prometheus.Collector) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	for _, c := range append([]prometheus.Collector{c}, extra...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errors.Join(errors.New("metrics: listener"), err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	if log != nil {
		log.Info("metrics", "addr", ln.Addr().String())
	}
	return func() { srv.Close() }, nil
}
