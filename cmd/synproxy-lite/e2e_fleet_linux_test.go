package main

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

// fleetLab is the ECMP rehash case: a client and two proxies on one
// Ethernet segment (a bridge in a switch namespace), both proxies holding
// the anycast service address 10.99.48.100. The client's neighbour entry
// sends the service's packets to proxy 2, and an nft rule on the client's
// egress rewrites the destination MAC of every SYN to proxy 1: each
// handshake is answered by one proxy and completed at the other, as when an
// ECMP fabric rehashes a flow between the client's SYN and its ACK.
type fleetLab struct {
	cli, sw, p1, p2 string
	driver          string // the proxies' --driver: afpacket unless set
}

const fleetVIP = "10.99.48.100"

func newFleetLab(t *testing.T) *fleetLab {
	t.Helper()
	needLab(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	nl := netlabtest.New(t, "splf")
	var ns [4]*netlab.NS
	for i, role := range []string{"cli", "sw", "p1", "p2"} {
		n, err := nl.AddNS(role)
		must(err)
		ns[i] = n
	}
	cli, sw, p1, p2 := ns[0], ns[1], ns[2], ns[3]
	f := &fleetLab{cli: cli.Name(), sw: sw.Name(), p1: p1.Name(), p2: p2.Name()}
	must(sw.AddBridge("br0"))
	vip := netip.MustParsePrefix(fleetVIP + "/32")
	link := func(n *netlab.NS, dev, addr, port string, extra ...netip.Prefix) {
		must(nl.Link(n, sw, &netlab.LinkConfig{AName: dev, BName: port, BMaster: "br0",
			AAddrs: append([]netip.Prefix{netip.MustParsePrefix(addr)}, extra...)}))
	}
	link(cli, "vc", "10.99.48.1/24", "sc")
	link(p1, "vp", "10.99.48.2/24", "s1", vip)
	link(p2, "vp", "10.99.48.3/24", "s2", vip)
	mac := func(n *netlab.NS, dev string) net.HardwareAddr {
		m, err := n.HardwareAddr(dev)
		must(err)
		return m
	}
	must(cli.SetNeighbour("vc", vip.Addr(), mac(p2, "vp")))
	fleetNft(t, f.cli, `table netdev ecmp {
	chain out {
		type filter hook egress device "vc" priority 0; policy accept;
		ip daddr `+fleetVIP+` tcp flags & (syn|ack) == syn ether daddr set `+mac(p1, "vp").String()+`
	}
}
`)
	return f
}

func fleetNft(t *testing.T, ns, ruleset string) {
	t.Helper()
	p := t.TempDir() + "/rules.nft"
	if err := os.WriteFile(p, []byte(ruleset), 0o600); err != nil {
		t.Fatal(err)
	}
	sh(t, "ip", "netns", "exec", ns, "nft", "-f", p)
}

func (f *fleetLab) start(t *testing.T, secret1, secret2 string) (*daemonProc, *daemonProc) {
	t.Helper()
	var ds []*daemonProc
	for i, p := range []string{f.p1, f.p2} {
		be := []string{"10.99.48.2:8081", "10.99.48.3:8081"}[i]
		startBackend(t, listenIn(t, p, be))
		drv := f.driver
		if drv == "" {
			drv = "afpacket"
		}
		args := []string{"--port", "8080", "--backend", be, "--driver", drv,
			"--interface", "vp", "--workers", "1", "--metrics", "127.0.0.1:9100"}
		if s := []string{secret1, secret2}[i]; s != "" {
			file := t.TempDir() + "/fleet.secret"
			if err := os.WriteFile(file, []byte(s+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--fleet-secret-file", file)
		}
		ds = append(ds, startDaemon(t, p, args...))
	}
	return ds[0], ds[1]
}

func randomSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TestFleetRehash: with one fleet secret, proxy 2 accepts the ACKs of
// handshakes that proxy 1 answered, hands the connections over and serves
// them. With a
// key each, as the kernel's per-boot secret would be, proxy 2 rejects them
// and the client gets nothing: the control that shows the path is real.
func TestFleetRehash(t *testing.T) { testFleetRehash(t, "afpacket") }

// testFleetRehash runs TestFleetRehash with the proxies on driver drv.
func testFleetRehash(t *testing.T, drv string) {
	t.Run("shared fleet secret", func(t *testing.T) {
		f := newFleetLab(t)
		f.driver = drv
		secret := randomSecret()
		f.start(t, secret, secret)
		// Every handshake must be handed over by proxy 2 and every request
		// must complete. (An odd TCP_TIMESTAMP value, which switches a
		// socket to microsecond timestamps on Linux 6.7+, once stalled
		// about half of them: the socket's TSval fell behind the cookie
		// TSval the client had stored, and PAWS dropped its segments.)
		const n = 6
		ok := 0
		for i := 0; i < n; i++ {
			out, err := curl(t, f.cli, "--max-time", "20", "http://"+fleetVIP+":8080/small")
			if err == nil && out == "hello from the backend\n" {
				ok++
			} else {
				t.Errorf("request %d across the rehash: %v %q", i, err, out)
			}
		}
		t.Logf("%d of %d requests completed across the rehash", ok, n)
		m1, m2 := scrape(t, f.p1, "127.0.0.1:9100"), scrape(t, f.p2, "127.0.0.1:9100")
		t.Logf("proxy 1: syn_received %v synack_sent %v handed_over %v; proxy 2: syn_received %v cookie_valid %v handed_over %v",
			m1["synproxy_lite_syn_received_total"], m1["synproxy_lite_synack_sent_total"], m1["synproxy_lite_handed_over_total"],
			m2["synproxy_lite_syn_received_total"], m2["synproxy_lite_cookie_valid_total"], m2["synproxy_lite_handed_over_total"])
		if m1["synproxy_lite_synack_sent_total"] < n || m1["synproxy_lite_handed_over_total"] != 0 {
			t.Errorf("proxy 1 should answer every SYN and hand nothing over: %v", m1)
		}
		if m2["synproxy_lite_syn_received_total"] != 0 || m2["synproxy_lite_handed_over_total"] < n {
			t.Errorf("proxy 2 should see no SYN and hand over every connection: %v", m2)
		}
	})
	t.Run("a key each", func(t *testing.T) {
		f := newFleetLab(t)
		f.driver = drv
		f.start(t, "", "")
		out, err := curl(t, f.cli, "--max-time", "3", "http://"+fleetVIP+":8080/small")
		if err == nil || strings.Contains(out, "hello") {
			t.Fatalf("a connection went through with unrelated keys: %q", out)
		}
		m2 := scrape(t, f.p2, "127.0.0.1:9100")
		if m2["synproxy_lite_handed_over_total"] != 0 || m2[`synproxy_lite_cookie_invalid_total{reason="hash"}`]+m2[`synproxy_lite_cookie_invalid_total{reason="stale"}`] == 0 {
			t.Errorf("proxy 2 should reject the ACKs: %v", m2)
		}
	})
}
