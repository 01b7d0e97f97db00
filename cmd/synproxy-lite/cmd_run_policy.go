package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/metrics"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
	"github.com/synproxy-lite/synproxy-lite/internal/config"
)

// policyFlags are the flags of "run" that set the protection policy:
// the allow and deny lists, the per-source SYN limit, the reflection
// budget and the mode (engine.Policy, nft.Lists).
type policyFlags struct {
	allowFile, denyFile      string
	synRate, synBurst        int
	reflectRate, reflectBurs int
	mode                     string
	engageRate, releaseRate  int
	hold                     time.Duration
	proven                   bool
	provenSize               int
	provenTimeout            time.Duration
}

func addPolicyFlags(fs *flag.FlagSet) *policyFlags {
	p := &policyFlags{}
	fs.StringVar(&p.allowFile, "allow-file", "", "`file` of sources (CIDRs or addresses, one a line, # comments) that bypass the proxy to the backend; SIGUSR1 re-reads it")
	fs.StringVar(&p.denyFile, "deny-file", "", "`file` of sources (CIDRs or addresses) whose packets are dropped before the engine; SIGUSR1 re-reads it")
	fs.IntVar(&p.synRate, "syn-rate", 0, "most SYNs a `second` from one source prefix (--source-prefix4/6); more are dropped; 0: no limit")
	fs.IntVar(&p.synBurst, "syn-burst", 0, "SYNs one source prefix may send at once before --syn-rate applies; 0: --syn-rate")
	fs.IntVar(&p.reflectRate, "reflect-rate", engine.DefaultReflectRate, "most SYN-ACKs a `second` towards one source prefix (the reflection budget); 0: no budget")
	fs.IntVar(&p.reflectBurs, "reflect-burst", 0, "SYN-ACKs one source prefix may get at once before --reflect-rate applies; 0: --reflect-rate")
	fs.StringVar(&p.mode, "mode", config.DefaultMode, "protect (cookies always), monitor (count what would be done, touch nothing) or on-demand (cookies only while the SYN rate is above --on-demand-rate)")
	fs.IntVar(&p.engageRate, "on-demand-rate", config.DefaultOnDemandRate, "SYNs a `second` to the port that engage the cookies (--mode on-demand)")
	fs.IntVar(&p.releaseRate, "on-demand-release", 0, "SYNs a `second` below which the cookies release after --on-demand-hold; 0: half of --on-demand-rate")
	fs.DurationVar(&p.hold, "on-demand-hold", engine.DefaultHold, "how long the SYN rate must stay below --on-demand-release before the cookies release")
	fs.BoolVar(&p.proven, "proven-clients", false, "serve sources that completed a handshake first: their packets go to a queue and worker of their own (nfqueue) or a ring of their own (afpacket, afxdp)")
	fs.IntVar(&p.provenSize, "proven-size", nft.DefaultProvenSize, "most proven sources remembered per family (--proven-clients)")
	fs.DurationVar(&p.provenTimeout, "proven-timeout", nft.DefaultProvenTimeout, "how long a source stays proven after its last handed-over packet (--proven-clients)")
	return p
}

// config returns the service policy the flags spell (config.Policy),
// which config.Validate checks naming the flags.
func (p *policyFlags) config() config.Policy {
	return config.Policy{AllowFile: p.allowFile, DenyFile: p.denyFile, SYNRate: p.synRate, SYNBurst: p.synBurst,
		ReflectRate: p.reflectRate, ReflectBurst: p.reflectBurs, Mode: p.mode,
		OnDemand:      config.OnDemand{Rate: p.engageRate, Release: p.releaseRate, Hold: p.hold},
		ProvenClients: config.ProvenClients{Enabled: p.proven, Size: p.provenSize, Timeout: p.provenTimeout}}
}

// readPrefixFile reads a list of CIDRs or addresses, one a line
// (config.ReadPrefixes); its errors name the flag.
func readPrefixFile(flagName, name string) ([]netip.Prefix, error) {
	ps, err := config.ReadPrefixes(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", flagName, err)
	}
	return ps, nil
}

// reloadLists re-reads the allow and deny lists of a running server from
// their files (SIGUSR1); lists that do not parse leave the lists in force
// as they are.
func reloadLists(srv *proxy.Server, sv server, log *slog.Logger) {
	var l *nft.Lists
	err := errors.New("no allow or deny lists")
	if sv.lists != nil {
		l, err = sv.lists()
	}
	if err == nil && l == nil {
		err = errors.New("no allow or deny lists")
	}
	if err == nil {
		err = srv.SetLists(l)
	}
	if err != nil {
		log.Error("reloading the allow and deny lists failed; the lists in force stay", "service", sv.name,
			"port", sv.cfg.Port, "err", err)
	}
}

// reloadOnUSR1 reloads the lists of every server that has some on SIGUSR1
// until stop is closed.
func reloadOnUSR1(srvs []*proxy.Server, svs []server, log *slog.Logger) (stop func()) {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			n := 0
			for i, s := range srvs {
				if svs[i].cfg.Lists != nil {
					reloadLists(s, svs[i], log)
					n++
				}
			}
			if n == 0 {
				log.Error("reloading the allow and deny lists (SIGUSR1) failed: no service has allow or deny lists")
			}
		}
	}()
	return func() { signal.Stop(usr1); close(usr1) }
}

// listCounts returns the metrics hook of the lists' nft counters.
func listCounts(srv *proxy.Server) func() metrics.ListCounts {
	return func() metrics.ListCounts {
		c, _ := srv.PolicyCounts()
		return metrics.ListCounts{Allowed: c.Allowed, Denied: c.Denied, Proven: c.Proven}
	}
}

// cloneLists copies lists, so that each server of a service owns its own
// (nil stays nil).
func cloneLists(l *nft.Lists) *nft.Lists {
	if l == nil {
		return nil
	}
	return &nft.Lists{Allow: slices.Clone(l.Allow), Deny: slices.Clone(l.Deny)}
}
