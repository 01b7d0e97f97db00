// Package metrics exports the counters of a SYN proxy engine
// (driver/engine) and of its driver to Prometheus. The Collector reads the
// engine's atomic counters at scrape time, in the style of a custom
// prometheus.Collector on a dedicated registry; nothing is counted twice
// and nothing is done per packet.
//
// Every metric is a counter named synproxy_lite_<thing>_total; those with
// a kernel counterpart in /proc/net/stat/synproxy say so in their help
// text. The cookie_invalid, malformed and handoffs_refused families carry
// a "reason" label. The exceptions are three gauges of the handoff.Proxy
// (Collector.Handoff): connections_open, connections_max and
// backend_dials_in_flight; and synproxy_lite_build_info{version,revision,
// goversion}, always 1, which names the build (Collector.Build).
//
// This is the only package of driver/ that imports the Prometheus client,
// so the engine, the drivers and driver/proxy stay free of it.
package metrics
