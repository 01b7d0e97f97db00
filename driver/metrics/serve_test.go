package metrics

import (
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
