package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// hostRules is a host set up for the kernel's SYNPROXY on port 8082, as its
// documentation has it (nf_conntrack_tcp_loose=0 beside it): SYNs to 8082
// untracked, the handshake's INVALID or UNTRACKED packets to the synproxy
// expression, every other INVALID packet dropped. exemptIn and exemptOut
// are rules placed before the drops; dropOut adds an output chain that
// drops INVALID packets too.
func hostRules(exemptIn, exemptOut string, dropOut bool) string {
	out := ""
	if dropOut {
		out = `
	chain output {
		type filter hook output priority filter; policy accept;
		` + exemptOut + `
		ct state invalid counter name invalid_out drop
	}`
	}
	return `table inet host {
	counter invalid_in {}
	counter invalid_out {}
	chain raw {
		type filter hook prerouting priority raw; policy accept;
		tcp dport 8082 tcp flags & (fin | syn | rst | ack) == syn notrack
	}
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 8082 ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
		` + exemptIn + `
		ct state invalid counter name invalid_in drop
	}` + out + `
}`
}

// TestE2EConntrackKernelSynproxyHost: synproxy-lite on a host set up for
// the kernel's SYNPROXY (docs/operators.md). The daemon answers the SYN
// itself and makes the connection's socket with TCP_REPAIR, so conntrack
// never sees a SYN for the flow: with nf_conntrack_tcp_loose=0 it creates no
// entry for the ACKs and data that follow, they are INVALID, and `ct state
// invalid drop` drops them (the daemon's table accepts them at priority raw,
// but an accept ends one base chain only; the host's input chain still
// runs). The connection is made and hangs. Exempting the protected port
// from the INVALID drop (tcp dport P ct state invalid accept) makes both
// work side by side; an output chain that drops INVALID too needs tcp sport
// P. nf_conntrack_tcp_loose=1 would make synproxy-lite work but breaks the
// kernel's SYNPROXY, whose handshake ACK must be INVALID to reach it.
func TestE2EConntrackKernelSynproxyHost(t *testing.T) {
	t.Parallel() // its lab is its own (see newLab)
	l := newLab(t, 100, false)
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8081"))
	startBackend(t, listenIn(t, l.proxy, l.proxyIP+":8082"))
	startBackend(t, listenIn(t, l.proxy, "["+l.proxy6+"]:8082"))
	metrics := l.proxyIP + ":9100"
	startDaemon(t, l.proxy, "--port", "8080", "--backend", l.proxyIP+":8081", "--workers", "1", "--queue", "1000",
		"--metrics", metrics)
	load := func(script string) {
		t.Helper()
		sh(t, "ip", "netns", "exec", l.proxy, "nft", "delete table inet host; add table inet host")
		nftIn(t, l.proxy, script)
	}
	loose := func(v string) {
		t.Helper()
		sh(t, "ip", "netns", "exec", l.proxy, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose="+v)
	}
	counter := func(name string) int {
		t.Helper()
		out := sh(t, "ip", "netns", "exec", l.proxy, "nft", "list", "counter", "inet", "host", name)
		i := strings.Index(out, "packets ")
		if i < 0 {
			t.Fatalf("counter %s: %s", name, out)
		}
		n, _ := strconv.Atoi(strings.Fields(out[i+len("packets "):])[0])
		return n
	}
	get := func(host, port string) error {
		t.Helper()
		out, err := curl(t, l.client, "-g", "--max-time", "4", "http://"+host+":"+port+"/small")
		if err == nil && out != "hello from the backend\n" {
			err = fmt.Errorf("answer %q", out)
		}
		if err != nil {
			return fmt.Errorf("%s port %s: %v: %s", host, port, err, out)
		}
		return nil
	}
	hosts := []string{l.proxyIP, "[" + l.proxy6 + "]"}
	nftIn(t, l.proxy, "table inet host {}")
	for _, c := range []struct {
		name                string
		loose               string
		exemptIn, exemptOut string
		dropOut             bool
		daemon, kernel      bool // whether the port of each works
		dropped             string
	}{
		{"loose 0, invalid dropped", "0", "", "", false, false, true, "invalid_in"},
		{"loose 0, port exempt", "0", "tcp dport 8080 ct state invalid accept", "", false, true, true, ""},
		// An output chain that drops INVALID drops the daemon's SYN-ACKs
		// (conntrack saw no SYN for them) and breaks the kernel's SYNPROXY
		// as well; the daemon's port needs its exemption both ways.
		{"loose 0, output drops invalid too", "0", "tcp dport 8080 ct state invalid accept", "", true, false, false, "invalid_out"},
		{"loose 0, port exempt both ways", "0", "tcp dport 8080 ct state invalid accept", "tcp sport 8080 ct state invalid accept", true, true, false, ""},
		{"loose 1", "1", "", "", false, true, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			load(hostRules(c.exemptIn, c.exemptOut, c.dropOut))
			loose(c.loose)
			before := scrape(t, l.proxy, metrics)
			for _, h := range hosts {
				if err := get(h, "8080"); (err == nil) != c.daemon {
					t.Errorf("synproxy-lite: %v; want working %v", err, c.daemon)
				}
				if err := get(h, "8082"); (err == nil) != c.kernel {
					t.Errorf("kernel SYNPROXY: %v; want working %v", err, c.kernel)
				}
			}
			after := scrape(t, l.proxy, metrics)
			handed := after["synproxy_lite_handed_over_total"] - before["synproxy_lite_handed_over_total"]
			t.Logf("handed over %v, dropped as invalid: in %d, out %d", handed, counter("invalid_in"), counter("invalid_out"))
			if c.dropped != "invalid_out" && handed != float64(len(hosts)) {
				// The handshake completes (and the socket exists) whether
				// or not the flow's later packets are dropped.
				t.Errorf("%v connections handed over, want %d", handed, len(hosts))
			}
			if c.dropped != "" && counter(c.dropped) == 0 {
				t.Errorf("counter %s did not move", c.dropped)
			}
			if c.daemon {
				transfer(t, httpClient(l.client), "http://"+l.proxyIP+":8080", 8<<20)
				transfer(t, httpClient(l.client), "http://["+l.proxy6+"]:8080", 8<<20)
			}
		})
	}
}
