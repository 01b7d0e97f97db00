package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
)

// TestBadConfigs: every file in testdata/bad is refused with an *Error
// naming the key (with its indexed path) and the line it is on.
func TestBadConfigs(t *testing.T) {
	for _, tc := range []struct {
		file, key string
		line      int
		want      string // in the message
	}{
		{"unknown-top", "tabel", 1, "unknown key tabel: want a known key; valid keys here: table,"},
		{"unknown-service", "services[0].prots", 4, "unknown key services[0].prots"},
		{"unknown-limit", "services[0].limits.max_con", 5, "valid keys here: max_conns,"},
		{"port-range", "services[0].ports", 2, "services[0].ports = 70000: want a port number 1-65535"},
		{"no-ports", "services[0].ports", 1, "required"},
		{"backend-ipv6", "services[0].backends", 3, `"::1:80": an IPv6 address needs brackets`},
		{"backend-type", "services[0].backends", 3, "a list of \"HOST:PORT\" strings"},
		{"rotate", "rotate", 1, "rotate = 1m30s: want 0 (never) or a whole number of minutes"},
		{"rotate-type", "rotate", 1, "a duration string"},
		{"duration", "services[0].limits.idle_timeout", 5, `idle_timeout = "5x": want a duration`},
		{"two-secrets", "fleet_secret_credential", 2, "key_file and fleet_secret_credential exclude each other"},
		{"credential", "key_credential", 1, "without '/'"},
		{"driver", "services[0].driver", 4, `"xdp": want auto or nfqueue or afpacket`},
		{"interface", "services[0].interface", 1, "required with driver afpacket"},
		{"failopen-afpacket", "services[0].fail_open", 6, "fail-open needs driver nfqueue"},
		{"wscale", "services[0].wscale", 4, "want -1 (no window scaling) or 0-14"},
		{"mss", "services[0].mss", 4, "want -1 (no MSS option), 0 (1460) or 1-65535"},
		{"workers", "workers", 1, "workers = 0: want 1-256"},
		{"log-level", "log_level", 1, "want debug, info, warn or error"},
		{"metrics", "metrics", 1, "want ADDR:PORT"},
		{"table", "table", 1, `"my-table": want a name of letters`},
		{"max-conns", "services[0].limits.max_conns", 5, "want -1 (no limit)"},
		{"keepalive", "services[0].limits.keepalive", 5, "at least 1s"},
		{"max-dials", "services[0].limits.max_dials", 5, "want -1 (no limit) or positive"},
		{"queue", "services[0].queue", 4, "want 0-65535"},
		{"same-port", "services[1].ports", 7, "services[0] protects that port"},
		{"same-queue", "services[1].queue", 11, "overlap those of services[0] (100-101)"},
		{"no-name", "services[0].name", 1, "want a name of letters"},
		{"no-services", "services", 0, "want at least one [[services]] table"},
		{"syntax", "", 4, "valid TOML"},
		{"addresses", "services[0].addresses", 3, `addresses = "10.99.0.2:443": want an IPv4 or IPv6 address without a port`},
		{"addresses-afpacket", "services[0].addresses", 6, "addresses need driver nfqueue"},
		{"same-address", "services[2].ports", 15, "services[0] protects that port on the same address"},
		{"policy-unknown", "services[0].policy.syn_rat", 5, "valid keys here: allow_file, deny_file, allow, deny, syn_rate,"},
		{"policy-mode", "services[0].policy.mode", 5, `mode = "passive": want protect, monitor or on-demand`},
		{"policy-syn-rate", "services[0].policy.syn_rate", 5, "syn_rate = -1: want 0 (no limit) or a positive number"},
		{"policy-type", "services[0].policy.syn_rate", 5, "an integer"},
		{"policy-allow", "services[0].policy.allow", 5, `allow = "10.99.300.1": want CIDRs or addresses`},
		{"policy-on-demand", "services[0].policy.on_demand.rate", 7, "want a positive number of SYNs a second"},
		{"policy-release", "services[0].policy.on_demand.release", 8, "want 0 (half of on_demand.rate) up to on_demand.rate (100)"},
		{"policy-hold", "services[0].policy.on_demand.hold", 5, "hold = -1s: want 0 (10s) or a positive duration"},
		{"policy-proven-size", "services[0].policy.proven_clients.size", 6, "want 1-16777216"},
		{"policy-proven-timeout", "services[0].policy.proven_clients.timeout", 6, "want at least 1s"},
		{"policy-proven-unknown", "services[0].policy.proven_clients.enable", 5, "valid keys here: enabled, size, timeout"},
		{"bgp-unknown", "bgp.hold", 10, "unknown key bgp.hold: want a known key; valid keys here: peers, asn, peer_asn,"},
		{"bgp-no-peers", "bgp.peers", 5, "required in [bgp]: the neighbours"},
		{"bgp-asn", "bgp.asn", 5, "required with peers: this node's AS number"},
		{"bgp-asn-type", "bgp.asn", 7, "an integer AS number"},
		{"bgp-router-id", "bgp.router_id", 8, `router_id = "fd00:99::11": want an IPv4 address`},
		{"bgp-announce", "bgp.announce", 9, `announce = "10.99.175.1/8": want a prefix without host bits (10.0.0.0/8)`},
		{"bgp-hold-time", "bgp.hold_time", 10, "hold_time = 2s: want 3s-65535s"},
		{"bgp-community", "bgp.communities", 10, `communities = "65001": want AS:VALUE, both 0-65535`},
		{"bgp-next-hop6", "bgp.next_hop6", 10, `next_hop6 = "10.99.161.11": want an IPv6 address`},
		{"bgp-peer", "bgp.peers", 6, `peers = "router.example": want an address or ADDR:PORT`},
		{"bgp-peer-asn", "bgp.peer_asn", 8, "peer_asn = 65001: want the peers' AS, not this node's"},
		{"bgp-withdraw-delay", "bgp.withdraw_delay", 10, "withdraw_delay = -1s: want 0 or a positive duration"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tc.file+".toml")
			_, err := Load(path)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%v, want an *Error", err)
			}
			if e.Key != tc.key || e.Line != tc.line || e.File != path {
				t.Errorf("key %q line %d file %q, want %q line %d", e.Key, e.Line, e.File, tc.key, tc.line)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "config: "+path) ||
				tc.key != "" && !strings.Contains(msg, tc.key) {
				t.Errorf("message %q, want it to start with config: %s and name %q, %q", msg, path, tc.key, tc.want)
			}
		})
	}
	files, _ := filepath.Glob("testdata/bad/*.toml")
	if len(files) != 56 {
		t.Errorf("%d bad files; the table covers 56", len(files))
	}
}

// TestGoodConfigs: the files in testdata/good parse, with the defaults
// filled and the services laid out apart.
func TestGoodConfigs(t *testing.T) {
	c, err := Load("testdata/good/minimal.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services[0]
	if c.Table != "synproxy_lite" || s.Table != "synproxy_lite" || s.Name != "default" || s.Queue != 100 ||
		s.Driver != "auto" || s.MSS != 1460 || s.MSS6 != 1440 || s.WScale != 7 || !s.Timestamp || !s.SACK ||
		s.Limits != DefaultLimits() || c.LogLevel != "info" || s.Workers != c.Workers || c.Rotate != 0 {
		t.Errorf("minimal: %+v", c)
	}
	c, err = Load("testdata/good/two.toml")
	if err != nil {
		t.Fatal(err)
	}
	web, ssh := c.Services[0], c.Services[1]
	if web.Table != "spl_web" || ssh.Table != "spl_ssh" || web.Queue != 100 || ssh.Queue != 104 ||
		web.PortQueue(1) != 102 || strings.Join(web.Tables(), " ") != "spl_web spl_web_2" {
		t.Errorf("layout: web %+v, ssh %+v", web, ssh)
	}
	if c.Rotate != 5*time.Minute || c.Secret.KeyCredential != "cookie-key" || !web.ProxyProtocol ||
		web.Limits.MaxConns != 1000 || web.Limits.IdleTimeout != 5*time.Minute || ssh.Limits.MaxConnsPerSource != 4 ||
		!ssh.FailOpen || web.FailOpen || len(web.Backends) != 2 {
		t.Errorf("values: %+v", c)
	}
}

// TestPolicy: a service's [services.policy] fills its protection policy,
// the defaults (the flags') where it says nothing; Lists reads the files,
// relative to the configuration's directory, and the sources written in
// the file.
func TestPolicy(t *testing.T) {
	c, err := Load("testdata/good/minimal.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services[0]
	if !reflect.DeepEqual(s.Policy, DefaultPolicy()) || s.Proven() != nil {
		t.Errorf("minimal: %+v, want the defaults %+v", s.Policy, DefaultPolicy())
	}
	if p := s.EnginePolicy(); !reflect.DeepEqual(*p, engine.Policy{ReflectRate: engine.DefaultReflectRate, Prefix4: 32, Prefix6: 64}) {
		t.Errorf("minimal: engine policy %+v", *p)
	}
	if l, err := c.Lists(0); l != nil || err != nil {
		t.Errorf("minimal: lists %v %v, want none", l, err)
	}
	c, err = Load("testdata/good/policy.toml")
	if err != nil {
		t.Fatal(err)
	}
	web, api := c.Services[0], c.Services[1]
	if p := web.EnginePolicy(); !reflect.DeepEqual(*p, engine.Policy{Mode: engine.ModeOnDemand, SYNRate: 50, SYNBurst: 20,
		ReflectRate: 200, Prefix4: 32, Prefix6: 48, EngageRate: 300, Hold: 3 * time.Second}) {
		t.Errorf("web: engine policy %+v", *p)
	}
	if p := web.Proven(); p == nil || p.Size != 4096 || p.Timeout != 5*time.Minute {
		t.Errorf("web: proven %+v", p)
	}
	// The proven clients' queue: 2 × (workers + 1) from web's first.
	if web.Queue != 100 || api.Queue != 104 {
		t.Errorf("queues: web %d, api %d", web.Queue, api.Queue)
	}
	l, err := c.Lists(0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(l.Deny) != "[10.99.9.0/24 fd00:99:9::/64 10.99.66.0/24 fd00:99:66::1/128]" || len(l.Allow) != 0 {
		t.Errorf("web: lists %v", l)
	}
	if p := api.EnginePolicy(); p.Mode != engine.ModeMonitor || p.ReflectRate != engine.DefaultReflectRate || api.Proven() != nil {
		t.Errorf("api: %+v", *p)
	}
	if l, err := c.Lists(1); err != nil || fmt.Sprint(l.Allow) != "[10.99.7.0/24]" || len(l.Deny) != 0 {
		t.Errorf("api: lists %v %v", l, err)
	}
	// A list file that cannot be read is named by its key and line.
	c.Services[0].Policy.DenyFile = "nosuch.list"
	var e *Error
	if _, err := c.Lists(0); !errors.As(err, &e) || e.Key != "services[0].policy.deny_file" || e.Line != 13 ||
		!strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v (%+v)", err, e)
	}
}

// TestAddresses: two services may share a port on different addresses.
func TestAddresses(t *testing.T) {
	c, err := Load("testdata/good/addresses.toml")
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Services[0].Addrs(); len(a) != 2 || a[1].String() != "fd00:99::1" {
		t.Errorf("addresses %v", a)
	}
}

// TestExample: the example shipped in docs/ parses and validates, and
// names the credential the systemd unit loads.
func TestExample(t *testing.T) {
	c, err := Load("../../docs/synproxy-lite.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Secret.KeyCredential != "key" || len(c.Services) != 1 || c.Services[0].Name != "web" {
		t.Errorf("example: %+v", c)
	}
}

// TestExampleBGP: the example's commented [bgp] table parses once its
// keys are uncommented, and so does the configuration in docs/fleet.md.
func TestExampleBGP(t *testing.T) {
	b, err := os.ReadFile("../../docs/synproxy-lite.toml")
	if err != nil {
		t.Fatal(err)
	}
	text, block, ok := strings.Cut(string(b), "\n# [bgp]\n")
	if !ok {
		t.Fatal("no commented [bgp] table in the example")
	}
	var lines []string
	key := regexp.MustCompile(`^# [a-z_0-9]+ = `)
	for _, l := range strings.Split(block, "\n") {
		if key.MatchString(l) {
			lines = append(lines, strings.TrimPrefix(l, "# "))
		}
	}
	c, err := Parse([]byte(text + "\n[bgp]\n" + strings.Join(lines, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 12 || c.BGP == nil || c.Speaker() == nil || len(c.BGP.Peers) != 2 {
		t.Errorf("example [bgp]: %d keys, %+v", len(lines), c.BGP)
	}
	fleet, err := os.ReadFile("../../docs/fleet.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllSubmatch(fleet, -1)
	if len(blocks) == 0 {
		t.Fatal("no toml block in docs/fleet.md")
	}
	for _, m := range blocks {
		if c, err := Parse(m[1]); err != nil || c.Speaker() == nil {
			t.Errorf("docs/fleet.md: %v", err)
		}
	}
}

// TestFromFlags: a Config from run's flags names the flags in its errors.
func TestFromFlags(t *testing.T) {
	base, err := Parse([]byte("[[services]]\nports = [1]\nbackends = [\"127.0.0.1:1\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		edit    func(c *Config)
		port    int
		backend string
		want    string
	}{
		{nil, 70000, "127.0.0.1:80", "--port 70000: want a port number 1-65535"},
		{nil, 0, "127.0.0.1:80", "--port: required"},
		{nil, 80, "::1:80", "--backend ::1:80: an IPv6 address needs brackets"},
		{nil, 80, "", "--backend: required"},
		{func(c *Config) { c.Rotate = 90 * time.Second }, 80, "127.0.0.1:80", "--rotate 1m30s: want 0 (never) or a whole number of minutes"},
		{func(c *Config) { c.Secret.KeyFile, c.Secret.FleetSecretFile = "a", "b" }, 80, "127.0.0.1:80",
			"--key-file and --fleet-secret-file exclude each other"},
		{func(c *Config) { c.Services[0].Limits.MaxDials = 0 }, 80, "127.0.0.1:80", "--max-dials 0: want -1"},
		{func(c *Config) { c.Services[0].Policy.Mode = "passive" }, 80, "127.0.0.1:80", "--mode passive: want protect, monitor or on-demand"},
		{func(c *Config) {
			c.Services[0].Policy.ProvenClients = ProvenClients{Enabled: true, Size: 0, Timeout: time.Minute}
		}, 80, "127.0.0.1:80", "--proven-size 0: want 1-16777216"},
		{func(c *Config) { c.Services[0].Policy.OnDemand.Release = 5000 }, 80, "127.0.0.1:80", "--on-demand-release 5000: want 0"},
		{func(c *Config) { c.BGP = &BGP{ASN: 65001} }, 80, "127.0.0.1:80", "--bgp-announce, --bgp-asn and --bgp-router-id need --bgp-peer"},
		{func(c *Config) {
			c.BGP = &BGP{Peers: []string{"10.99.161.1"}, ASN: 65001, RouterID: "10.99.161.11", Announce: []string{"10.99.175.1"},
				HoldTime: time.Second}
		}, 80, "127.0.0.1:80", "--bgp-hold-time 1s: want 3s-65535s"},
		{func(c *Config) {
			c.BGP = &BGP{Peers: []string{"10.99.161.1"}, ASN: 65001, Announce: []string{"10.99.175.1"}, HoldTime: 3 * time.Second}
		}, 80, "127.0.0.1:80", "--bgp-router-id: required with peers"},
	} {
		c := *base
		c.Services = append([]Service(nil), base.Services...)
		if tc.edit != nil {
			tc.edit(&c)
		}
		err := FromFlags(c, tc.port, tc.backend).Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}

// TestBGP: the [bgp] table spells the speaker's configuration, the
// defaults where it says nothing; without it there is no BGP.
func TestBGP(t *testing.T) {
	c, err := Load("testdata/good/bgp.toml")
	if err != nil {
		t.Fatal(err)
	}
	b := c.Speaker()
	if b == nil || b.ASN != 65001 || len(b.Peers) != 2 || b.Peers[0].ASN != 65000 || b.Peers[1].Port != 1179 ||
		b.Peers[1].Addr != netip.MustParseAddr("fd00:99:a1::1") || b.Peers[0].LocalAddr != netip.MustParseAddr("10.99.161.11") ||
		fmt.Sprint(b.Prefixes) != "[10.99.175.1/32 fd00:99:af::1/128]" || fmt.Sprint(b.Communities) != fmt.Sprint([]uint32{65001<<16 | 160}) ||
		b.HoldTime != 3*time.Second || b.GracefulRestart != 10*time.Second || b.ConnectRetry != BGPConnectRetry ||
		b.NextHop6 != netip.MustParseAddr("fd00:99:a1::11") || b.NextHop.IsValid() || b.RouterID != netip.MustParseAddr("10.99.161.11") {
		t.Errorf("speaker %+v", b)
	}
	if c.BGP.WithdrawDelay != DefaultBGPWithdrawDelay {
		t.Errorf("withdraw delay %v, want the default", c.BGP.WithdrawDelay)
	}
	if s := c.BGP.Summary(); !strings.Contains(s, "AS 65001") || !strings.Contains(s, "2 peer(s)") ||
		!strings.Contains(s, "10.99.175.1/32, fd00:99:af::1") {
		t.Errorf("summary %q", s)
	}
	c, err = Load("testdata/good/minimal.toml")
	if err != nil || c.BGP != nil || c.Speaker() != nil || c.BGP.Summary() != "bgp: none" {
		t.Errorf("minimal: %v %+v", err, c.BGP)
	}
	c, err = Parse([]byte("[[services]]\nports = [1]\nbackends = [\"127.0.0.1:1\"]\n[bgp]\npeers = [\"10.99.161.1\"]\n" +
		"asn = 65001\nrouter_id = \"10.99.161.11\"\nannounce = [\"10.99.175.1\"]\n"))
	if err != nil || c.BGP.HoldTime != DefaultBGPHoldTime || c.Speaker().GracefulRestart != 0 {
		t.Errorf("defaults: %v %+v", err, c.BGP)
	}
}

// TestSecretRing: a key with rotate seeds the rotation: two rings from the
// same key file agree in every epoch, and not with a ring of another key.
func TestSecretRing(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := filepath.Join(dir, "k1"), filepath.Join(dir, "k2")
	os.WriteFile(k1, []byte(specKey), 0o600)
	os.WriteFile(k2, []byte(strings.Repeat("ab", 32)), 0o600)
	r1, err := (&Config{Secret: Secret{KeyFile: k1}, Rotate: time.Hour}).Ring()
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := (&Config{Secret: Secret{KeyFile: k1}, Rotate: time.Hour}).Ring()
	r3, _ := (&Config{Secret: Secret{KeyFile: k2}, Rotate: time.Hour}).Ring()
	tu := cookie.Tuple{Client: netip.MustParseAddrPort("10.99.0.2:40000"), Server: netip.MustParseAddrPort("10.99.0.1:443")}
	c, err := r1.Encode(tu, 1234, 1460)
	if err != nil {
		t.Fatal(err)
	}
	valid := func(r *cookie.Ring) bool { v, err := r.Check(tu, 1234, c); return err == nil && v.Valid }
	if !valid(r1) || !valid(r2) || valid(r3) {
		t.Error("rings of one key file disagree, or of two agree")
	}
	t.Setenv(CredentialsDirEnv, dir)
	r4, err := (&Config{Secret: Secret{KeyCredential: "k1"}, Rotate: time.Hour}).Ring()
	if err != nil || !valid(r4) {
		t.Errorf("credential: %v", err)
	}
	t.Setenv(CredentialsDirEnv, "")
	if _, err := (&Config{Secret: Secret{KeyCredential: "k1"}}).Ring(); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("no credentials directory: %v", err)
	}
	if r, err := (&Config{}).Ring(); r != nil || err != nil {
		t.Errorf("no secret, no rotation: %v %v", r, err)
	}
}
