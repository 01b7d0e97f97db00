package main

import (
	"strings"
	"testing"
)

// The end-to-end tests of the daemon, run with --driver afxdp: the same lab
// (client, proxy with a bridge, attacker), the same backend and clients.
// The XDP program attaches to br0, in generic mode (a bridge has no native
// XDP). Addresses 10.99.130.0-10.99.149.255 and fd00:99:130::/64.. belong
// to them.

// afxdpArgs returns the daemon's flags. As with afpacket, bridge netfilter
// is off in the proxy namespace: with br_netfilter loaded the bridge runs
// the IP prerouting hooks (and so the drop rules) before the frame reaches
// br0, where the XDP program runs.
func afxdpArgs(l *lab, extra ...string) []string {
	args := afpacketArgs(l, 1, extra...)
	for i, a := range args {
		if a == "afpacket" {
			args[i] = "afxdp"
		}
	}
	return args
}

func TestE2EAfxdpCurlAndGo(t *testing.T) {
	l := newLab(t, 130, false)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	metrics := l.proxyIP + ":9100"
	d := startDaemon(t, l.proxy, afxdpArgs(l, "--metrics", metrics)...)
	if !strings.Contains(d.out.String(), "driver=afxdp") {
		t.Fatalf("daemon does not run the afxdp driver:\n%s", d.out.String())
	}
	for _, host := range []string{l.proxyIP, "[" + l.proxy6 + "]"} {
		out, err := curl(t, l.client, "-g", "http://"+host+":8080/small")
		if err != nil || out != "hello from the backend\n" {
			t.Fatalf("curl via %s: %v %q", host, err, out)
		}
	}
	c := httpClient(l.client)
	for _, host := range []string{l.proxyIP, "[" + l.proxy6 + "]"} {
		transfer(t, c, "http://"+host+":8080", 100<<20)
	}
	m := scrape(t, l.proxy, metrics)
	if m["synproxy_lite_handed_over_total"] < 6 || m["synproxy_lite_cookie_valid_total"] < 6 {
		t.Errorf("metrics: %v", m)
	}
	if m["synproxy_lite_handoff_failed_total"] != 0 {
		t.Errorf("handoffs failed: %v", m["synproxy_lite_handoff_failed_total"])
	}
	if m[`synproxy_lite_malformed_total{reason="checksum"}`] > 0 {
		t.Errorf("%v packets failed the checksum (offloaded checksums not completed?)",
			m[`synproxy_lite_malformed_total{reason="checksum"}`])
	}
	// Established traffic never reaches the engine: the transfers' data
	// segments pass to the stack in the XDP program.
	if p := m["synproxy_lite_packets_total"]; p > 1000 {
		t.Errorf("the engine saw %v packets for a few handshakes and 400 MB of transfers", p)
	}
}
