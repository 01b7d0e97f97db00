package metrics

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
// Handoff and Readiness are set, say), and any extra collectors on the
// same registry. Beside /metrics, which also carries the
// Go runtime's and the process's metrics (go_*, process_*), it serves:
//   - /healthz: 200 "ok" while the process serves HTTP at all (liveness);
//   - /readyz: 200 "ready" when c.Readiness.Ready returns nil, else 503
//     with "not ready" and Ready's error, one reason a line. Without
//     c.Readiness it answers as /healthz.
func ServeCollector(addr string, c *Collector, log *slog.Logger, extra ...prometheus.Collector) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	for _, c := range append([]prometheus.Collector{c}, extra...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return ServeRegistry(addr, reg, c.Readiness, log)
}

// ServeRegistry serves reg (with the Go runtime's and the process's
// collectors added to it) at /metrics, and /healthz and /readyz as
// ServeCollector does with ready (nil: /readyz answers as /healthz), until
// stop is called. It is for a binary that registers several Collectors,
// labelled apart, on one registry.
func ServeRegistry(addr string, reg *prometheus.Registry, ready Readiness, log *slog.Logger) (stop func(), err error) {
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errors.Join(errors.New("metrics: listener"), err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		detail := ""
		if d, ok := ready.(ReadyDetailer); ok {
			detail = d.ReadyDetail()
		}
		if ready != nil {
			if err := ready.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "not ready\n"+err.Error()+"\n"+detail)
				return
			}
		}
		io.WriteString(w, "ready\n"+detail)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	if log != nil {
		log.Info("metrics", "addr", ln.Addr().String(), "paths", "/metrics /healthz /readyz")
	}
	return func() { srv.Close() }, nil
}
