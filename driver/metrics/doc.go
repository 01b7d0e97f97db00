// Package metrics exports the counters of a SYN proxy engine
// (driver/engine), of its driver and of its handoff.Proxy to Prometheus,
// and serves them with the daemon's health endpoints. The Collector reads
// the engine's atomic counters at scrape time, in the style of a custom
// prometheus.Collector on a dedicated registry; nothing is counted twice
// and nothing is done per packet.
//
// Names follow Prometheus' conventions: counters are
// synproxy_lite_<thing>_total; those with a kernel counterpart in
// /proc/net/stat/synproxy say so in their help text. The cookie_invalid,
// malformed, handoffs_refused and backend_dial_failures families carry a
// "reason" label. The gauges are connections_open, connections_max,
// backend_dials_in_flight and handoffs_in_flight (Collector.Handoff),
// synproxy_lite_ready (Collector.Readiness) and synproxy_lite_build_info
// {version,revision,goversion}, always 1, which names the build
// (Collector.Build). The histograms, in seconds, are
// handoff_duration_seconds and backend_connect_duration_seconds; the
// handoff.Proxy observes them once per connection, never per packet.
//
// ServeCollector serves /metrics (with the Go runtime's and the process's
// collectors), /healthz (the process is alive and serving) and /readyz
// (Collector.Readiness: 503 and the reasons when the daemon does not
// serve). Readiness itself is the caller's: the daemon passes its
// proxy.Server through the Readiness interface, so this package imports
// neither driver/proxy nor more of the engine than its counters. A scrape
// reads ReadyKnown, which has no side effects; only /readyz calls Ready,
// which may probe the backend.
//
// This is the only package of driver/ that imports the Prometheus client,
// so the engine, the drivers and driver/proxy stay free of it.
package metrics
