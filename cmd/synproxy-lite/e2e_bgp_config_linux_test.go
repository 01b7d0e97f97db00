package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFleetBGPConfigFile: a node started with run --config, whose [bgp]
// table names the router, peers with BIRD and announces the service's
// /32 and /128 (the router installs them via the node), serves clients
// through them, and withdraws them on SIGTERM before it stops; with one
// server, and with two services (one speaker for the daemon).
func TestFleetBGPConfigFile(t *testing.T) {
	needBird(t)
	for _, tc := range []struct{ name, driver, more string }{
		{"one-service", `driver = "afpacket"
interface = "vp"`, ""},
		{"two-services", `driver = "nfqueue"`, `
[[services]]
name = "other"
ports = [8082]
backends = ["10.99.161.20:8081"]
driver = "nfqueue"
queue = 1610
`},
	} {
		t.Run(tc.name, func(t *testing.T) { testBGPConfigFile(t, tc.driver, tc.more) })
	}
}

func testBGPConfigFile(t *testing.T, driver, more string) {
	l := newBGPRouterLab(t)
	conf := filepath.Join(t.TempDir(), "node.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`table = "splb"
metrics = "127.0.0.1:9100"
workers = 1
fleet_secret_file = %q

[[services]]
name = "web"
ports = [8080]
backends = ["10.99.161.20:8081"]
%s
queue = 1600
%s
[bgp]
peers = [%q]
asn = 65001
peer_asn = 65000
router_id = %q
announce = ["%s/32", "%s/128"]
hold_time = %q
communities = ["65001:160"]
next_hop6 = "fd00:99:a1::11"
withdraw_delay = "1s"
`, l.secretFile, driver, more, bgpRouter, bgpNodeAddrs[0], bgpVIP, bgpVIP6, bgpHold.String())), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, l.nodes[0], "--config", conf)
	l.daemons[0] = d
	took := l.waitNexthops(t, bgpVIP, 10*time.Second, bgpNodeAddrs[0])
	l.waitNexthops(t, bgpVIP6, 5*time.Second, "fd00:99:a1::11")
	t.Logf("route to %s via the node %v after its start", bgpVIP, took.Round(10*time.Millisecond))
	if errs := l.clients(20, 4, 3*time.Second); len(errs) > 0 {
		t.Fatalf("%d of 20 connections failed through the announced route: %v", len(errs), errs[0])
	}
	if more != "" {
		if errs := l.clientsTo("http://"+bgpVIP+":8082/small", 20, 4, 3*time.Second); len(errs) > 0 {
			t.Fatalf("%d of 20 connections to the second service failed: %v", len(errs), errs[0])
		}
	}
	if n := scrape(t, l.nodes[0], "127.0.0.1:9100"); n["synproxy_lite_bgp_ready"] != 1 {
		t.Errorf("metrics: synproxy_lite_bgp_ready %v, want 1", n["synproxy_lite_bgp_ready"])
	}
	// /readyz shows the sessions below its answer.
	if code, body := getIn(t, l.nodes[0], "127.0.0.1:9100", "/readyz"); code != 200 ||
		!strings.Contains(body, "bgp: ready") || !strings.Contains(body, "established") {
		t.Errorf("/readyz %d: %q, want 200 with the BGP sessions (bgp: ready ... established)", code, body)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	gone := l.waitNexthops(t, bgpVIP, 3*time.Second)
	l.waitNexthops(t, bgpVIP6, 3*time.Second)
	t.Logf("routes withdrawn %v after SIGTERM", gone.Round(10*time.Millisecond))
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon: %v\n%s", err, d.out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("daemon did not stop within 10s of SIGTERM:\n%s", d.out.String())
	}
	out := d.out.String()
	for _, want := range []string{"bgp: session established", "bgp: ready, announcing", "bgp: withdrawing"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the daemon's log:\n%s", want, out)
		}
	}
}
