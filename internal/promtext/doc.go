// Package promtext reads the Prometheus text exposition format as far as
// the demo and the tests need it: every sample of a scrape into a map keyed
// by the metric name with its labels exactly as exposed, e.g.
// synproxy_lite_cookie_invalid_total{reason="hash"}. Comments (HELP, TYPE)
// and lines that are not samples are skipped; timestamps are not supported.
package promtext
