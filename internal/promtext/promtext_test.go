package promtext_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/internal/promtext"
)

const exposition = `# HELP synproxy_lite_syn_received_total SYNs taken by the engine.
# TYPE synproxy_lite_syn_received_total counter
synproxy_lite_syn_received_total 12345
# HELP synproxy_lite_cookie_invalid_total ACKs whose cookie failed.
# TYPE synproxy_lite_cookie_invalid_total counter
synproxy_lite_cookie_invalid_total{reason="hash"} 7
synproxy_lite_cookie_invalid_total{reason="stale"} 0
go_gc_duration_seconds{quantile="0.5"} 3.2e-05
process_start_time_seconds 1.7e+09

not a sample
synproxy_lite_bad_value notanumber
`

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want map[string]float64
	}{
		{"empty", "", map[string]float64{}},
		{"comments only", "# HELP x y\n# TYPE x counter\n", map[string]float64{}},
		{"daemon", exposition, map[string]float64{
			"synproxy_lite_syn_received_total":                   12345,
			`synproxy_lite_cookie_invalid_total{reason="hash"}`:  7,
			`synproxy_lite_cookie_invalid_total{reason="stale"}`: 0,
			`go_gc_duration_seconds{quantile="0.5"}`:             3.2e-05,
			"process_start_time_seconds":                         1.7e+09,
		}},
		{"later sample wins", "a 1\na 2\n", map[string]float64{"a": 2}},
		{"no newline at the end", "a 1", map[string]float64{"a": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := promtext.Parse(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, exposition)
	}))
	defer srv.Close()
	m, err := promtext.Scrape(context.Background(), srv.Client(), srv.URL+"/metrics")
	if err != nil || m["synproxy_lite_syn_received_total"] != 12345 {
		t.Errorf("Scrape: %v, %v", m, err)
	}
	if _, err := promtext.Scrape(context.Background(), srv.Client(), srv.URL+"/nothing"); err == nil ||
		!strings.HasPrefix(err.Error(), "promtext: ") || !strings.Contains(err.Error(), "404") {
		t.Errorf("Scrape of a missing page: %v", err)
	}
}
