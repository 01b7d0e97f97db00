package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EConfigPolicy: the protection policy from a configuration file,
// one policy per service, in 10.99.170.0/24 (spoofed sources in
// 10.99.171.0/24). Service "web" denies the attacker (a list file named
// relative to the configuration) and limits SYNs per source; service "api"
// allows the client (a source written in the file) and leaves the attacker
// to the cookies. Real clients (curl, Go's net) and trafgen floods; the
// invariants are the flag tests': a denied source never reaches the
// engine and its flood is counted by the nft counter, an allowed one
// reaches the backend around the engine, every SYN the engine took is
// answered or limited and no more are answered than the bucket allows.
// SIGUSR1 re-reads the list files of both services in place; the metrics
// of each are labelled service and port.
func TestE2EConfigPolicy(t *testing.T) {
	l := newLab(t, 170, true)
	src := spoofed(t, l)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	serveName(t, listenIn(t, l.proxy, l.proxyIP+":8084"), "api")
	dir := t.TempDir()
	deny := writeList(t, filepath.Join(dir, "deny.list"), "# attackers", l.attackIP)
	allow := writeList(t, filepath.Join(dir, "allow.list"), "# monitoring (none yet)")
	metrics := l.proxyIP + ":9170"
	const rate = 100
	conf := filepath.Join(dir, "synproxy-lite.toml")
	err := os.WriteFile(conf, fmt.Appendf(nil, `workers = 1
table = "spl"
metrics = %q

[[services]]
name = "web"
ports = [8080]
backends = ["%[2]s:8081"]
driver = "nfqueue"

[services.policy]
deny_file = "deny.list"
syn_rate = %[4]d
reflect_rate = 0

[[services]]
name = "api"
ports = [9090]
backends = ["%[2]s:8084"]
driver = "nfqueue"

[services.policy]
allow_file = "allow.list"
allow = ["%[3]s"]
`, metrics, l.proxyIP, l.clientIP, rate), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runMain("check", "--config", conf)
	if code != exitOK || !strings.Contains(stdout, "elements = { "+l.attackIP+" }") ||
		!strings.Contains(stderr, "service web: mode protect; SYN limit 100/s burst 100 per /32 and /64 source; no reflection budget; allow 0, deny 1 prefixes") ||
		!strings.Contains(stderr, "service api: mode protect; no SYN limit; reflection budget 1000 SYN-ACK/s burst 1000 per /32 and /64 source; allow 1, deny 0 prefixes") {
		t.Fatalf("check: exit %d\n%s\n%s", code, stdout, stderr)
	}
	d := startDaemon(t, l.proxy, "--config", conf)
	eventually(t, "the two servers to run", func() bool { return strings.Count(d.out.String(), "proxy running") == 2 })
	const web, api = `{port="8080",service="web"}`, `{port="9090",service="api"}`
	webURL, apiURL := "http://"+l.proxyIP+":8080/small", "http://"+l.proxyIP+":9090/"

	// web: the client goes through the engine; the attacker is denied.
	if out, err := curl(t, l.client, webURL); err != nil || out != "hello from the backend\n" {
		t.Fatalf("client to web: %v %q", err, out)
	}
	if !dialFails(l.attack, l.proxyIP+":8080") {
		t.Error("the attacker, denied by web, connected to web")
	}
	// api: the client is allowed (around the engine); the attacker is not
	// denied there, its cookie handshake is handed over.
	if out, err := curl(t, l.client, apiURL); err != nil || out != "api" {
		t.Fatalf("client to api: %v %q", err, out)
	}
	if out, err := curl(t, l.attack, apiURL); err != nil || out != "api" {
		t.Fatalf("attacker to api: %v %q", err, out)
	}
	m := scrapeAtLeast(t, l.proxy, metrics, "synproxy_lite_handed_over_total"+api, 1)
	if got := m["synproxy_lite_handed_over_total"+api]; got != 1 {
		t.Errorf("api handed over %v connections, want the attacker's only (the client is allowed around the engine)", got)
	}
	if got := m["synproxy_lite_list_allowed_packets_total"+api]; got < 3 {
		t.Errorf("api's allowed packets %v, want the client's", got)
	}

	// A flood from the denied attacker to web: counted by the nft counter,
	// none of it reaches web's engine.
	before := scrapeDrained(t, l.proxy, metrics)
	const n = 1000
	lost0 := linkDrops(t, l.attack) + linkDrops(t, l.proxy)
	trafgen(t, l, synFlood(t, l, l.attackIP), n)
	m = scrapeDrained(t, l.proxy, metrics)
	lost := linkDrops(t, l.attack) + linkDrops(t, l.proxy) - lost0
	if got := m["synproxy_lite_syn_received_total"+web] - before["synproxy_lite_syn_received_total"+web]; got != 0 {
		t.Errorf("web's engine took %v SYNs of the denied flood, want 0", got)
	}
	if got := m["synproxy_lite_list_denied_packets_total"+web] - before["synproxy_lite_list_denied_packets_total"+web]; got+lost < n || got > n {
		t.Errorf("web's denied packets grew by %v (%v lost on links), want the %d flood SYNs", got, lost, n)
	}

	// A flood from one spoofed source to web, over its syn_rate, while the
	// client connects.
	before = m
	const flood = 5000
	t0 := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); trafgen(t, l, synFlood(t, l, src), flood) }()
	if out, err := curl(t, l.client, webURL); err != nil || out != "hello from the backend\n" {
		t.Errorf("client to web during the flood: %v %q", err, out)
	}
	<-done
	m = scrapeDrained(t, l.proxy, metrics)
	secs := math.Ceil(time.Since(t0).Seconds())
	delta := func(name string) float64 { return m[name+web] - before[name+web] }
	syn, sent, limited := delta("synproxy_lite_syn_received_total"), delta("synproxy_lite_synack_sent_total"), delta("synproxy_lite_syn_limited_total")
	t.Logf("%d SYNs from %s over %.0f s: web's engine took %v, answered %v, limited %v", flood, src, secs, syn, sent, limited)
	if syn != sent+limited+delta("synproxy_lite_tx_errors_total") {
		t.Errorf("SYNs %v != answered %v + limited %v + failed sends: a SYN unaccounted for", syn, sent, limited)
	}
	if bound := rate + rate*secs + 1; sent > bound { // +1: the client's, another bucket
		t.Errorf("answered %v SYNs of one source in %.0f s, the bucket allows %v", sent, secs, bound)
	}
	if limited == 0 || m["synproxy_lite_syn_limited_total"+api] != 0 {
		t.Errorf("web limited %v SYNs, api %v; want some, none", limited, m["synproxy_lite_syn_limited_total"+api])
	}

	// SIGUSR1: web now denies the client and not the attacker; api allows
	// the attacker too (its file), and still the client (the file's own
	// source). Both servers replace their lists, nothing restarts.
	writeList(t, deny, l.clientIP)
	writeList(t, allow, l.attackIP)
	d.cmd.Process.Signal(syscall.SIGUSR1)
	eventually(t, "web's reloaded lists", func() bool { return !dialFails(l.attack, l.proxyIP+":8080") })
	if !dialFails(l.client, l.proxyIP+":8080") {
		t.Error("the client connected to web after its list denied it")
	}
	if out, err := curl(t, l.attack, webURL); err != nil || out != "hello from the backend\n" {
		t.Errorf("the attacker, no longer denied by web: %v %q", err, out)
	}
	handed := scrape(t, l.proxy, metrics)["synproxy_lite_handed_over_total"+api]
	for _, ns := range []string{l.client, l.attack} {
		if out, err := curl(t, ns, apiURL); err != nil || out != "api" {
			t.Errorf("%s to api after the reload: %v %q", ns, err, out)
		}
	}
	m = scrape(t, l.proxy, metrics)
	if got := m["synproxy_lite_handed_over_total"+api]; got != handed {
		t.Errorf("api handed over %v connections after the reload, want still %v: both sources are allowed", got, handed)
	}
	out := d.out.String()
	if c := strings.Count(out, "allow and deny lists replaced"); c != 2 || !strings.Contains(out, "service=web") ||
		strings.Contains(out, "graceful restart") || strings.Contains(out, "reloading the allow and deny lists failed") {
		t.Errorf("%d servers replaced their lists, want 2, in place:\n%s", c, out)
	}
	for _, name := range []string{"synproxy_lite_list_denied_packets_total" + web, "synproxy_lite_list_allowed_packets_total" + api,
		"synproxy_lite_syn_limited_total" + web, "synproxy_lite_reflection_limited_total" + api, "synproxy_lite_cookies_engaged" + web} {
		if _, ok := m[name]; !ok {
			t.Errorf("no %s in the metrics", name)
		}
	}
}

// TestE2EConfigPolicyRestart: SIGHUP re-reads the whole configuration file,
// the policy included. A file whose policy is invalid is refused, naming
// the key, and the daemon carries on unchanged; a valid one hands over to
// a new process with the new policy (the attacker denied, the SYN limit in
// force), in 10.99.172.0/24.
func TestE2EConfigPolicyRestart(t *testing.T) {
	l := newLab(t, 172, true)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	dir := t.TempDir()
	metrics := l.proxyIP + ":9172"
	conf := filepath.Join(dir, "synproxy-lite.toml")
	write := func(policy string) {
		t.Helper()
		err := os.WriteFile(conf, fmt.Appendf(nil, "workers = 1\nmetrics = %q\n\n[[services]]\nname = \"web\"\nports = [8080]\n"+
			"backends = [\"%s:8081\"]\ndriver = \"nfqueue\"\n%s", metrics, l.proxyIP, policy), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}
	write("")
	d := startDaemon(t, l.proxy, "--config", conf)
	newPid := 0
	t.Cleanup(func() {
		// The new daemon writes into the old one's output pipe: stop it
		// before the old one is reaped.
		if newPid != 0 {
			syscall.Kill(newPid, syscall.SIGTERM)
			for i := 0; i < 200 && syscall.Kill(newPid, 0) == nil; i++ {
				time.Sleep(50 * time.Millisecond)
			}
			syscall.Kill(newPid, syscall.SIGKILL)
		}
	})
	url := "http://" + l.proxyIP + ":8080/small"
	for _, ns := range []string{l.client, l.attack} {
		if out, err := curl(t, ns, url); err != nil || out != "hello from the backend\n" {
			t.Fatalf("%s before the restart: %v %q", ns, err, out)
		}
	}

	write("\n[services.policy]\nmode = \"passive\"\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the refused restart", func() bool { return strings.Contains(d.out.String(), "graceful restart refused") })
	if out := d.out.String(); !strings.Contains(out, `services[0].policy.mode = \"passive\": want protect, monitor or on-demand`) {
		t.Errorf("the refusal does not name the key:\n%s", out)
	}
	if out, err := curl(t, l.attack, url); err != nil || out != "hello from the backend\n" {
		t.Fatalf("after the refused restart: %v %q", err, out)
	}

	write(fmt.Sprintf("\n[services.policy]\ndeny = [%q]\nsyn_rate = 50\n", l.attackIP))
	d.cmd.Process.Signal(syscall.SIGHUP)
	pidRE := regexp.MustCompile(`the new process took over" pid=(\d+)`)
	eventually(t, "the new process", func() bool {
		m := pidRE.FindStringSubmatch(d.out.String())
		if m != nil {
			newPid, _ = strconv.Atoi(m[1])
		}
		return m != nil
	})
	if !dialFails(l.attack, l.proxyIP+":8080") {
		t.Error("the attacker, denied by the new configuration, connected")
	}
	if out, err := curl(t, l.client, url); err != nil || out != "hello from the backend\n" {
		t.Errorf("client after the restart: %v %q", err, out)
	}
	var m map[string]float64
	eventually(t, "the new process's policy metrics", func() bool {
		m = scrape(t, l.proxy, metrics)
		return m["synproxy_lite_list_denied_packets_total"] > 0
	})
	if _, ok := m["synproxy_lite_syn_limited_total"]; !ok {
		t.Error("no synproxy_lite_syn_limited_total after the restart: the SYN limit is not in force")
	}
}
