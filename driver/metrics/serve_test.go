package metrics

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/drivertest"
)

// TestServe: the counters are served at /metrics on the address given, and
// stop frees the address.
func TestServe(t *testing.T) {
	ring, err := cookie.NewRing(nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(drivertest.New(1, 8), &engine.Config{Port: 8080, Ring: ring,
		Handoff: engine.HandoffFunc(func(*engine.Handshake) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stop, err := Serve(addr, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "synproxy_lite_syn_received_total 0") {
		t.Errorf("/metrics has no syn_received counter:\n%s", body)
	}
	if _, err := Serve(addr, e, nil); err == nil {
		t.Error("a second Serve on a used address did not fail")
	}
	stop()
	stop2, err := Serve(addr, e, nil)
	if err != nil {
		t.Fatalf("the address was not freed by stop: %v", err)
	}
	stop2()
}

// TestServeHealth: /healthz answers while the process serves, /readyz
// follows Ready and says why it is not ready, and /metrics carries the Go
// and process collectors.
func TestServeHealth(t *testing.T) {
	c := NewCollector(nil)
	var why, known error
	c.Readiness = fakeReadiness{ready: func() error { return why }, known: func() error { return known }}
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
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, tc := range []struct {
		path string
		why  error
		code int
		body []string
	}{
		{"/healthz", nil, 200, []string{"ok"}},
		{"/readyz", nil, 200, []string{"ready"}},
		{"/readyz", errors.Join(errors.New("nft rules: table inet synproxy_lite is gone"), errors.New("backend 10.99.0.2:80: unreachable")),
			503, []string{"not ready", "nft rules: table inet synproxy_lite is gone\nbackend 10.99.0.2:80: unreachable"}},
		{"/healthz", errors.New("backend down"), 200, []string{"ok"}},
		{"/metrics", nil, 200, []string{"go_goroutines ", "process_cpu_seconds_total ", "synproxy_lite_ready 1", "synproxy_lite_build_info"}},
		// A scrape reads ReadyKnown, never Ready (which may probe).
		{"/metrics", errors.New("probe failed"), 200, []string{"synproxy_lite_ready 1"}},
	} {
		why = tc.why
		code, body := get(tc.path)
		if code != tc.code {
			t.Errorf("%s (Ready %v): status %d, want %d", tc.path, tc.why, code, tc.code)
		}
		for _, w := range tc.body {
			if !strings.Contains(body, w) {
				t.Errorf("%s (Ready %v): body lacks %q:\n%s", tc.path, tc.why, w, body)
			}
		}
	}
}
