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

// TestE2EConfigServices: one daemon, started with --config, protects three
// services: "web" on one port, every address, with three backends (one of
// them down); "api" on two ports of the IPv6 address only, with an IPv6
// backend; "api4" on api's first port, IPv4 address only, with a backend of
// its own. Real clients fetch through every port and address; web's
// connections go round-robin to its two live backends, skipping the dead
// one; the port api4 shares goes to the service of the address; api's
// second port on the IPv4 address is left to the kernel (nothing listens
// there); each port has its own table, and the metrics are labelled by
// service and port. The key is one key generate wrote, seeding the
// rotation.
func TestE2EConfigServices(t *testing.T) {
	l := newLab(t, 120, false)
	serveName(t, listenIn(t, l.proxy, l.proxyIP+":8081"), "web-a")
	serveName(t, listenIn(t, l.proxy, l.proxyIP+":8082"), "web-b")
	serveName(t, listenIn(t, l.proxy, "["+l.proxy6+"]:8083"), "api")
	serveName(t, listenIn(t, l.proxy, l.proxyIP+":8084"), "api4")
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
addresses = ["%[4]s"]
backends = ["[%[4]s]:8083"]

[[services]]
name = "api4"
ports = [9090]
addresses = ["%[3]s"]
backends = ["%[3]s:8084"]
`, key, metrics, l.proxyIP, l.proxy6), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code := runMain("check", "--config", conf); code != exitOK || strings.Count(stdout, "table inet spl_") != 4 {
		t.Fatalf("check: exit %d\n%s\n%s", code, stdout, stderr)
	}
	d := startDaemon(t, l.proxy, "--config", conf)
	eventually(t, "the four servers to run", func() bool { return strings.Count(d.out.String(), "proxy running") == 4 })
	tables := sh(t, "ip", "netns", "exec", l.proxy, "nft", "list", "tables")
	for _, want := range []string{"inet spl_web\n", "inet spl_api\n", "inet spl_api_2\n", "inet spl_api4\n"} {
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
	for _, tc := range []struct{ host, port, want string }{
		{hosts[1], "9090", "api"}, {hosts[1], "9091", "api"}, {hosts[0], "9090", "api4"},
	} {
		if got := get("http://" + tc.host + ":" + tc.port + "/"); got != tc.want {
			t.Errorf("%s:%s served %q, want %s", tc.host, tc.port, got, tc.want)
		}
		if out, err := curl(t, l.client, "-g", "http://"+tc.host+":"+tc.port+"/"); err != nil || out != tc.want {
			t.Errorf("curl %s:%s: %v %q", tc.host, tc.port, err, out)
		}
	}
	// api protects 9091 on its IPv6 address only: on the IPv4 address the
	// kernel answers, and nothing listens there.
	if out, err := curl(t, l.client, "http://"+l.proxyIP+":9091/"); err == nil || !strings.Contains(out, "(7)") {
		t.Errorf("curl %s:9091: %v %q, want curl's (7): the kernel's refusal", l.proxyIP, err, out)
	}
	for _, m := range []struct {
		labels string
		n      float64
	}{{`port="8080",service="web"`, 6}, {`port="9090",service="api"`, 2}, {`port="9091",service="api"`, 2},
		{`port="9090",service="api4"`, 2}} {
		scrapeAtLeast(t, l.proxy, metrics, "synproxy_lite_handed_over_total{"+m.labels+"}", m.n)
	}

	d.stop()
	if tables := sh(t, "ip", "netns", "exec", l.proxy, "nft", "list", "tables"); strings.Contains(tables, "spl") {
		t.Errorf("tables left after the daemon stopped:\n%s", tables)
	}
}
