package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serveName serves its name on every path of ln, telling the backends
// apart.
func serveName(t *testing.T, ln net.Listener, name string) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// TestE2EConfigServices: one daemon, started with --config, protects two
// services: "web" on one port with three backends (one of them down) and
// "api" on two ports with an IPv6 backend. Real clients fetch through every
// port over IPv4 and IPv6; web's connections go round-robin to its two live
// backends, skipping the dead one; each port has its own table, and the
// metrics are labelled by service and port. The key is one key generate
// wrote, seeding the rotation.
func TestE2EConfigServices(t *testing.T) {
	l := newLab(t, 120, false)
	serveName(t, listenIn(t, l.proxy, l.proxyIP+":8081"), "web-a")
	serveName(t, listenIn(t, l.proxy, l.proxyIP+":8082"), "web-b")
	serveName(t, listenIn(t, l.proxy, "["+l.proxy6+"]:8083"), "api")
	dir := t.TempDir()
	key := filepath.Join(dir, "cookie.key")
	if _, stderr, code := runMain("key", "generate", "--out", key); code != exitOK {
		t.Fatal(stderr)
	}
	metrics := l.proxyIP + ":9120"
	conf := filepath.Join(dir, "synproxy-lite.toml")
	err := os.WriteFile(conf, fmt.Appendf(nil, `key_file = %q
rotate = "1h"
workers = 1
table = "spl"
metrics = %q

[[services]]
name = "web"
ports = [8080]
backends = ["%[3]s:8081", "%[3]s:8089", "%[3]s:8082"]

[[services]]
name = "api"
ports = [9090, 9091]
backends = ["[%[4]s]:8083"]
`, key, metrics, l.proxyIP, l.proxy6), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code := runMain("check", "--config", conf); code != exitOK || strings.Count(stdout, "table inet spl_") != 3 {
		t.Fatalf("check: exit %d\n%s\n%s", code, stdout, stderr)
	}
	d := startDaemon(t, l.proxy, "--config", conf)
	eventually(t, "the three servers to run", func() bool { return strings.Count(d.out.String(), "proxy running") == 3 })
	tables := sh(t, "ip", "netns", "exec", l.proxy, "nft", "list", "tables")
	for _, want := range []string{"inet spl_web\n", "inet spl_api\n", "inet spl_api_2\n"} {
		if !strings.Contains(tables, want) {
			t.Errorf("no table %q in\n%s", want, tables)
		}
	}

	c := httpClient(l.client)
	get := func(url string) string {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	hosts := []string{l.proxyIP, "[" + l.proxy6 + "]"}
	seen := map[string]int{}
	for i := range 6 {
		seen[get(fmt.Sprintf("http://%s:8080/", hosts[i%2]))]++
	}
	// Round-robin over web-a, the dead backend and web-b: the dead one's
	// turns fail over to web-b.
	if seen["web-a"] != 2 || seen["web-b"] != 4 || len(seen) != 2 {
		t.Errorf("web's backends served %v, want web-a 2, web-b 4", seen)
	}
	for _, port := range []string{"9090", "9091"} {
		for _, host := range hosts {
			if got := get("http://" + host + ":" + port + "/"); got != "api" {
				t.Errorf("%s:%s served %q, want api", host, port, got)
			}
		}
		if out, err := curl(t, l.client, "-g", "http://["+l.proxy6+"]:"+port+"/"); err != nil || out != "api" {
			t.Errorf("curl %s: %v %q", port, err, out)
		}
	}
	for _, m := range []struct {
		labels string
		n      float64
	}{{`port="8080",service="web"`, 6}, {`port="9090",service="api"`, 3}, {`port="9091",service="api"`, 3}} {
		scrapeAtLeast(t, l.proxy, metrics, "synproxy_lite_handed_over_total{"+m.labels+"}", m.n)
	}

	d.stop()
	if tables := sh(t, "ip", "netns", "exec", l.proxy, "nft", "list", "tables"); strings.Contains(tables, "spl") {
		t.Errorf("tables left after the daemon stopped:\n%s", tables)
	}
}
