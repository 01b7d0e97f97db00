package proxy

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

// TestReadyChecks: each check of Ready names what fails, on a Server
// whose parts are set by hand (no watch that would put the table back):
// not started; rules installed but no engine; the table deleted behind
// its back; a backend without a route; closed.
func TestReadyChecks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: the readiness checks need root (a network namespace, nftables)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("SKIPPED LOUDLY: nft is not installed (scripts/test-deps.sh installs it)")
	}
	lab := netlabtest.New(t, "rdyz")
	ns, err := lab.AddNS("px")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(&ServerConfig{Port: 8080, Table: "spl_ready", Queue: 240,
		Backend: netip.MustParseAddrPort("10.99.121.1:80")})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, want []string, not ...string) {
		t.Helper()
		var got error
		if err := ns.Do(func() error { got = s.ready(true); return nil }); err != nil {
			t.Fatal(err)
		}
		if got == nil {
			t.Fatalf("%s: ready, want %q", what, want)
		}
		for _, w := range want {
			if !strings.Contains(got.Error(), w) {
				t.Errorf("%s: Ready says %q, want %q in it", what, got, w)
			}
		}
		for _, n := range not {
			if strings.Contains(got.Error(), n) {
				t.Errorf("%s: Ready says %q, want no %q", what, got, n)
			}
		}
	}
	check("before Start", []string{"not started"})
	var rules *nft.Rules
	if err := ns.Do(func() (err error) { rules, err = nft.Install(s.nftConfig()); return }); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.started, s.rules = true, rules
	s.mu.Unlock()
	check("no engine", []string{"engine: not running"}, "nft rules")
	if out, err := exec.Command("ip", "netns", "exec", ns.Name(), "nft", "delete", "table", "inet", "spl_ready").CombinedOutput(); err != nil {
		t.Fatalf("nft delete table: %v: %s", err, out)
	}
	check("table deleted", []string{"engine: not running", "nft rules: table inet spl_ready is gone"})
	s.px = &handoff.Proxy{Backend: s.cfg.Backend.String()}
	var known error
	if err := ns.Do(func() error { known = s.ReadyKnown(); return nil }); err != nil {
		t.Fatal(err)
	}
	if known == nil || strings.Contains(known.Error(), "backend") || s.px.BackendState().Last() != (time.Time{}) {
		t.Errorf("ReadyKnown before any dial: %v, backend state %+v; want no backend reason and no dial", known, s.px.BackendState())
	}
	check("backend without a route", []string{"backend 10.99.121.1:80: unreachable: last dial failed"})
	if err := ns.Do(func() error { known = s.ReadyKnown(); return nil }); err != nil {
		t.Fatal(err)
	}
	if known == nil || !strings.Contains(known.Error(), "backend 10.99.121.1:80: unreachable: last dial failed") {
		t.Errorf("ReadyKnown after a failed probe: %v", known)
	}
	s.mu.Lock()
	s.rules = nil
	s.mu.Unlock()
	s.Close()
	check("closed", []string{"closed"})
}
