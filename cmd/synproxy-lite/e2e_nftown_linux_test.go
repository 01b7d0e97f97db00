package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The daemon's nft tables and its own sockets: it never replaces or
// deletes a table it did not create, two instances keep to their own
// tables, a deleted table is noticed and installed again, and a backend
// that is the daemon itself is refused.

// runRefused runs the daemon in ns and expects it to refuse to start: it
// exits non-zero within 20 s. It returns the daemon's output.
func runRefused(t *testing.T, ns string, args ...string) string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	cmd.Env = append(os.Environ(), daemonEnv+"="+strings.Join(args, " "))
	out := &syncBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("the daemon exited 0; want a refusal:\n%s", out.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Errorf("the daemon ran; want a refusal:\n%s", out.String())
	}
	return out.String()
}

func nftRuleset(t *testing.T, ns string) string {
	return sh(t, "ip", "netns", "exec", ns, "nft", "list", "ruleset")
}

func curlSmall(t *testing.T, l *lab, port string) {
	t.Helper()
	if out, err := curl(t, l.client, "http://"+l.proxyIP+":"+port+"/small"); err != nil || out != "hello from the backend\n" {
		t.Errorf("curl via port %s: %v %q", port, err, out)
	}
}

// TestE2ENftForeignTable: --table filter, with the host firewall's inet
// filter in place, is refused and leaves that table as it was.
func TestE2ENftForeignTable(t *testing.T) {
	l := newLab(t, 70, false)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	sh(t, "ip", "netns", "exec", l.proxy, "nft", "add", "table", "inet", "filter")
	sh(t, "ip", "netns", "exec", l.proxy, "nft", "add", "chain", "inet", "filter", "input",
		"{ type filter hook input priority 0; policy accept; }")
	sh(t, "ip", "netns", "exec", l.proxy, "nft", "add", "rule", "inet", "filter", "input", "tcp", "dport", "22", "accept")
	before := nftRuleset(t, l.proxy)
	out := runRefused(t, l.proxy, "--port", "8080", "--backend", l.proxyIP+":8081", "--workers", "1", "--queue", "170", "--table", "filter")
	if !strings.Contains(out, "not created by synproxy-lite") || !strings.Contains(out, "inet filter") {
		t.Errorf("the refusal does not say why:\n%s", out)
	}
	if after := nftRuleset(t, l.proxy); after != before {
		t.Errorf("inet filter changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestE2ENftTwoInstances: two daemons with their own ports and tables
// both serve; a third on the first one's table is refused, and the first
// keeps its table and serves on.
func TestE2ENftTwoInstances(t *testing.T) {
	l := newLab(t, 71, false)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8083"))
	startDaemon(t, l.proxy, "--port", "8080", "--backend", l.proxyIP+":8081", "--workers", "1", "--queue", "171", "--table", "spl_a")
	startDaemon(t, l.proxy, "--port", "8082", "--backend", l.proxyIP+":8083", "--workers", "1", "--queue", "172", "--table", "spl_b")
	curlSmall(t, l, "8080")
	curlSmall(t, l, "8082")
	before := nftRuleset(t, l.proxy)
	out := runRefused(t, l.proxy, "--port", "8084", "--backend", l.proxyIP+":8081", "--workers", "1", "--queue", "173", "--table", "spl_a")
	if !strings.Contains(out, "in use by another synproxy-lite process") {
		t.Errorf("the refusal does not say why:\n%s", out)
	}
	after := nftRuleset(t, l.proxy)
	for _, table := range []string{"table inet spl_a {", "table inet spl_b {"} {
		if !strings.Contains(after, table) {
			t.Errorf("%s gone after the refused start:\n%s", table, after)
		}
	}
	if strings.Contains(after, "8084") {
		t.Errorf("the refused daemon's rules were installed:\n%s", after)
	}
	if strip := func(s string) string { return strings.Join(strings.Fields(stripCounters(s)), " ") }; strip(after) != strip(before) {
		t.Errorf("the ruleset changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	curlSmall(t, l, "8080")
	curlSmall(t, l, "8082")
}

// stripCounters removes the packet and byte counts of nft's listing.
func stripCounters(s string) string {
	f := strings.Fields(s)
	out := f[:0]
	for i := 0; i < len(f); i++ {
		if (f[i] == "packets" || f[i] == "bytes") && i+1 < len(f) {
			i++
			continue
		}
		out = append(out, f[i])
	}
	return strings.Join(out, " ")
}

// TestE2ENftTableDeleted: the daemon notices that its table was deleted,
// says so, and installs its rules again; connections go on being served.
func TestE2ENftTableDeleted(t *testing.T) {
	l := newLab(t, 72, false)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	d := startDaemon(t, l.proxy, "--port", "8080", "--backend", l.proxyIP+":8081", "--workers", "1", "--queue", "174", "--table", "spl_c",
		"--metrics", metrics)
	curlSmall(t, l, "8080")
	sh(t, "ip", "netns", "exec", l.proxy, "nft", "delete", "table", "inet", "spl_c")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.out.String(), "nft rules installed again") {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not notice its table was deleted:\n%s", d.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(d.out.String(), "level=ERROR msg=\"the nft table disappeared") {
		t.Errorf("no error logged:\n%s", d.out.String())
	}
	if got := nftRuleset(t, l.proxy); !strings.Contains(got, "table inet spl_c {") || !strings.Contains(got, "tcp dport 8080") {
		t.Errorf("the table is not back:\n%s", got)
	}
	curlSmall(t, l, "8080")
	if got := scrape(t, l.proxy, metrics)["synproxy_lite_nft_table_lost_total"]; got != 1 {
		t.Errorf("nft_table_lost_total %v, want 1", got)
	}
	if d.cmd.ProcessState != nil {
		t.Errorf("the daemon exited: %v", d.cmd.ProcessState)
	}
}

// TestE2EBackendIsSelf: a backend on this host at the protected port is
// refused at start, naming both flags: at the proxy's own address, on
// loopback, and at the unspecified address.
func TestE2EBackendIsSelf(t *testing.T) {
	l := newLab(t, 73, false)
	for _, backend := range []string{l.proxyIP + ":8080", "127.0.0.1:8080", "[" + l.proxy6 + "]:8080", "[::]:8080"} {
		out := runRefused(t, l.proxy, "--port", "8080", "--backend", backend, "--workers", "1", "--queue", "179")
		for _, w := range []string{"--port 8080", "--backend " + backend} {
			if !strings.Contains(out, w) {
				t.Errorf("backend %s: the refusal does not name %q:\n%s", backend, w, out)
			}
		}
		if strings.Contains(out, "proxy running") {
			t.Errorf("backend %s: the daemon ran:\n%s", backend, out)
		}
	}
	if got := nftRuleset(t, l.proxy); strings.Contains(got, "synproxy_lite") {
		t.Errorf("a refused daemon left rules:\n%s", got)
	}
}
