package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The health endpoints end to end, in 10.99.120.0/24: /readyz follows
// the backend and the nft table, and --log-format json writes one JSON
// object a line.

// getIn fetches http://addr+path from namespace ns: its status and body.
func getIn(t *testing.T, ns, addr, path string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: dialIn(ns), DisableKeepAlives: true},
		Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestE2EReadyz: /readyz is 200 while the rules are in place, the engine
// runs and the backend answers; 503, saying why, once the backend is gone
// (with no connection to dial it: the readiness probe finds it); 200
// again once it is back. Deleting the nft table makes the daemon install
// it again, and it is ready after that. /healthz is 200 throughout, and
// every line the daemon logged is JSON.
func TestE2EReadyz(t *testing.T) {
	t.Parallel() // its lab is its own (see newLab)
	l := newLab(t, 120, false)
	backend := l.proxyIP + ":8081"
	ln := listenIn(t, l.proxy, backend)
	metrics := l.proxyIP + ":9100"
	d := startDaemon(t, l.proxy, "--port", "8080", "--backend", backend, "--workers", "1", "--queue", "220",
		"--metrics", metrics, "--log-format", "json")
	ready := func(code int, want ...string) func() bool {
		return func() bool {
			c, body := getIn(t, l.proxy, metrics, "/readyz")
			if c != code {
				return false
			}
			for _, w := range want {
				if !strings.Contains(body, w) {
					t.Fatalf("/readyz %d says %q, want %q in it", c, body, w)
				}
			}
			return true
		}
	}
	healthy := func() {
		t.Helper()
		if c, body := getIn(t, l.proxy, metrics, "/healthz"); c != 200 || body != "ok\n" {
			t.Fatalf("/healthz: %d %q", c, body)
		}
	}
	eventually(t, "/readyz 200 with the backend listening", ready(200, "ready"))
	healthy()
	if m := scrape(t, l.proxy, metrics); m["synproxy_lite_ready"] != 1 {
		t.Errorf("synproxy_lite_ready = %v while ready", m["synproxy_lite_ready"])
	}

	ln.Close()
	eventually(t, "/readyz 503 with the backend gone", ready(503, "not ready", "backend "+backend, "unreachable", "refused"))
	healthy()
	if m := scrape(t, l.proxy, metrics); m["synproxy_lite_ready"] != 0 {
		t.Errorf("synproxy_lite_ready = %v with the backend gone", m["synproxy_lite_ready"])
	}

	var ln2 net.Listener
	eventually(t, "the backend's address free again", func() bool {
		var err error
		err = inNS(t, l.proxy, func() (err error) { ln2, err = net.Listen("tcp", backend); return })
		return err == nil
	})
	t.Cleanup(func() { ln2.Close() })
	eventually(t, "/readyz 200 with the backend back", ready(200, "ready"))

	if out, err := exec.Command("ip", "netns", "exec", l.proxy, "nft", "delete", "table", "inet", "synproxy_lite").CombinedOutput(); err != nil {
		t.Fatalf("nft delete table: %v: %s", err, out)
	}
	eventually(t, "the table installed again", func() bool {
		return scrape(t, l.proxy, metrics)["synproxy_lite_nft_table_lost_total"] >= 1
	})
	eventually(t, "/readyz 200 with the table back", ready(200, "ready"))
	healthy()

	d.stop()
	lines := strings.Split(strings.TrimSpace(d.out.String()), "\n")
	var msgs []string
	for _, line := range lines {
		var rec struct {
			Time, Level, Msg string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Time == "" || rec.Level == "" || rec.Msg == "" {
			t.Errorf("a log line that is not a JSON record (time, level, msg): %q (%v)", line, err)
			continue
		}
		msgs = append(msgs, rec.Level+" "+rec.Msg)
	}
	for _, want := range []string{"INFO proxy running", "WARN not ready", "INFO ready again", "ERROR the nft table disappeared"} {
		found := false
		for _, m := range msgs {
			found = found || strings.HasPrefix(m, want)
		}
		if !found {
			t.Errorf("no log line %q among %q", want, msgs)
		}
	}
}
