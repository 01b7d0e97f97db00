package metrics

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
)

// The dashboard (docs/grafana) and the alert rules (docs/alerts) are
// checked against what a real Collector serves: every metric they use
// must exist, so a renamed metric cannot leave them querying nothing.
const (
	dashboardFile = "../../docs/grafana/synproxy-lite.json"
	rulesFile     = "../../docs/alerts/synproxy-lite.rules.yml"
	operatorsFile = "../../docs/operators.md"
)

// servedNames serves a Collector (with the Proxy's stats and readiness
// set, as the daemon does) and returns the metric names of one scrape of
// /metrics: series names, histograms' _bucket, _sum and _count included.
func servedNames(t *testing.T) map[string]bool {
	t.Helper()
	c := NewCollector(nil)
	c.Handoff = func() handoff.ProxyStats { return handoff.ProxyStats{} }
	c.Readiness = fakeReadiness{ready: func() error { return nil }, known: func() error { return nil }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stop, err := ServeCollector(addr, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
	}
	return names
}

// metricRE finds the metric names in a PromQL expression: ours, the Go
// and process collectors', and Prometheus' own up.
var metricRE = regexp.MustCompile(`\b(synproxy_lite_[a-z0-9_]+|process_[a-z0-9_]+|go_[a-z0-9_]+|up)\b`)

func checkExpr(t *testing.T, where, expr string, served map[string]bool, used map[string]bool) {
	t.Helper()
	found := metricRE.FindAllString(expr, -1)
	if len(found) == 0 {
		t.Errorf("%s: %q uses no metric of synproxy-lite", where, expr)
	}
	for _, m := range found {
		used[m] = true
		if m != "up" && !served[m] {
			t.Errorf("%s: %q uses %s, which the collector does not serve", where, expr, m)
		}
	}
}

func TestDashboardMetrics(t *testing.T) {
	served := servedNames(t)
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title, UID string
		Panels     []struct {
			Type, Title string
			Targets     []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	used := map[string]bool{}
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkExpr(t, "panel "+p.Title, tg.Expr, served, used)
		}
	}
	// What the dashboard must show.
	for _, m := range []string{"synproxy_lite_synack_sent_total", "synproxy_lite_cookie_valid_total",
		"synproxy_lite_cookie_invalid_total", "synproxy_lite_handed_over_total", "synproxy_lite_handoffs_refused_total",
		"synproxy_lite_connections_open", "synproxy_lite_backend_dial_failures_total",
		"synproxy_lite_handoff_duration_seconds_bucket", "synproxy_lite_malformed_total", "synproxy_lite_rx_overruns_total",
		"synproxy_lite_build_info", "synproxy_lite_ready"} {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

// rules is the part of a Prometheus rule file the test reads.
type rules struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Alert, Record, Expr, For string
			Labels, Annotations      map[string]string
		}
	}
}

func TestAlertRules(t *testing.T) {
	served := servedNames(t)
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f rules
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	used := map[string]bool{}
	var alerts []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: an alert needs alert, expr, labels.severity and annotations.summary", r.Alert)
			}
			alerts = append(alerts, r.Alert)
			checkExpr(t, "alert "+r.Alert, r.Expr, served, used)
		}
	}
	for _, m := range []string{"synproxy_lite_ready", "synproxy_lite_backend_dial_failures_total",
		"synproxy_lite_nft_table_lost_total", "synproxy_lite_rx_overruns_total"} {
		if !used[m] {
			t.Errorf("no alert uses %s", m)
		}
	}
	if len(alerts) != len(slices.Compact(slices.Sorted(slices.Values(alerts)))) {
		t.Errorf("alert names repeat: %v", alerts)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("PROMTOOL NOT RUN: promtool is not installed (Debian's prometheus package; scripts/test-deps.sh installs it); the rules were only parsed")
		return
	}
	if out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}

// TestOperatorsDocMetrics: docs/operators.md names every metric family
// of synproxy-lite the collector serves.
func TestOperatorsDocMetrics(t *testing.T) {
	b, err := os.ReadFile(operatorsFile)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for name := range servedNames(t) {
		if !strings.HasPrefix(name, "synproxy_lite_") {
			continue
		}
		family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !strings.Contains(doc, family) {
			t.Errorf("%s does not mention %s", operatorsFile, family)
		}
	}
}
