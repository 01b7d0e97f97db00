package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/metrics"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
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
	fs.StringVar(&p.mode, "mode", "protect", "protect (cookies always), monitor (count what would be done, touch nothing) or on-demand (cookies only while the SYN rate is above --on-demand-rate)")
	fs.IntVar(&p.engageRate, "on-demand-rate", 1000, "SYNs a `second` to the port that engage the cookies (--mode on-demand)")
	fs.IntVar(&p.releaseRate, "on-demand-release", 0, "SYNs a `second` below which the cookies release after --on-demand-hold; 0: half of --on-demand-rate")
	fs.DurationVar(&p.hold, "on-demand-hold", engine.DefaultHold, "how long the SYN rate must stay below --on-demand-release before the cookies release")
	fs.BoolVar(&p.proven, "proven-clients", false, "serve sources that completed a handshake first: their packets go to a queue and worker of their own (--driver nfqueue)")
	fs.IntVar(&p.provenSize, "proven-size", nft.DefaultProvenSize, "most proven sources remembered per family (--proven-clients)")
	fs.DurationVar(&p.provenTimeout, "proven-timeout", nft.DefaultProvenTimeout, "how long a source stays proven after its last handed-over packet (--proven-clients)")
	return p
}

// provenClients returns the proven-clients configuration of the flags (nil
// without --proven-clients).
func (p *policyFlags) provenClients() (*nft.Proven, error) {
	switch {
	case !p.proven:
		return nil, nil
	case p.provenSize < 1 || p.provenSize > 1<<24:
		return nil, errors.New("--proven-size must be 1-16777216")
	case p.provenTimeout < time.Second:
		return nil, errors.New("--proven-timeout must be at least 1s")
	}
	return &nft.Proven{Size: uint32(p.provenSize), Timeout: p.provenTimeout}, nil
}

// policy checks the flags and returns the engine's policy (prefixes from
// --source-prefix4/6) and the lists (nil without --allow-file and
// --deny-file).
func (p *policyFlags) policy(prefix4, prefix6 int) (*engine.Policy, *nft.Lists, error) {
	mode, err := engine.ParseMode(p.mode)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("--mode %q: protect, monitor or on-demand", p.mode)
	case p.synRate < 0 || p.synBurst < 0:
		return nil, nil, errors.New("--syn-rate and --syn-burst must be 0 or positive")
	case p.reflectRate < 0 || p.reflectBurs < 0:
		return nil, nil, errors.New("--reflect-rate and --reflect-burst must be 0 or positive")
	case mode == engine.ModeOnDemand && p.engageRate <= 0:
		return nil, nil, errors.New("--on-demand-rate must be positive")
	case p.releaseRate < 0 || p.releaseRate > p.engageRate:
		return nil, nil, errors.New("--on-demand-release must be 0 (half of --on-demand-rate) up to --on-demand-rate")
	case p.hold < 0:
		return nil, nil, errors.New("--on-demand-hold must not be negative")
	}
	pol := &engine.Policy{Mode: mode, SYNRate: p.synRate, SYNBurst: p.synBurst, ReflectRate: p.reflectRate,
		ReflectBurst: p.reflectBurs, Prefix4: prefix4, Prefix6: prefix6}
	if mode == engine.ModeOnDemand {
		pol.EngageRate, pol.ReleaseRate, pol.Hold = p.engageRate, p.releaseRate, p.hold
	}
	lists, err := p.lists()
	return pol, lists, err
}

// lists reads --allow-file and --deny-file (nil without either).
func (p *policyFlags) lists() (*nft.Lists, error) {
	if p.allowFile == "" && p.denyFile == "" {
		return nil, nil
	}
	l := &nft.Lists{}
	var err error
	if l.Allow, err = readPrefixFile("--allow-file", p.allowFile); err != nil {
		return nil, err
	}
	if l.Deny, err = readPrefixFile("--deny-file", p.denyFile); err != nil {
		return nil, err
	}
	return l, nil
}

// readPrefixFile reads a list of CIDRs or addresses, one a line; # starts
// a comment. An empty name is an empty list.
func readPrefixFile(flagName, name string) ([]netip.Prefix, error) {
	if name == "" {
		return nil, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", flagName, err)
	}
	defer f.Close()
	var ps []netip.Prefix
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s, _, _ := strings.Cut(sc.Text(), "#")
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%s %s:%d: %q is neither a CIDR (10.0.0.0/8, fd00::/48) nor an address", flagName, name, line, s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Zone() != "" {
			return nil, fmt.Errorf("%s %s:%d: %q has a zone", flagName, name, line, s)
		}
		ps = append(ps, p.Masked())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", flagName, err)
	}
	return ps, nil
}

// reloadLists re-reads --allow-file and --deny-file into the running
// server (SIGUSR1); a file that does not parse leaves the lists as they
// are.
func (o *runOptions) reloadLists(srv *proxy.Server, log *slog.Logger) {
	l, err := o.policyFlags.lists()
	if err == nil && l == nil {
		err = errors.New("no --allow-file or --deny-file")
	}
	if err == nil {
		err = srv.SetLists(l)
	}
	if err != nil {
		log.Error("reloading the allow and deny lists failed; the lists in force stay", "err", err)
	}
}

// listCounts returns the metrics hook of the lists' nft counters.
func listCounts(srv *proxy.Server) func() metrics.ListCounts {
	return func() metrics.ListCounts {
		c, _ := srv.PolicyCounts()
		return metrics.ListCounts{Allowed: c.Allowed, Denied: c.Denied, Proven: c.Proven}
	}
}

// applyPolicy gives the one server of the flags the protection policy the
// flags describe (the policy flags do not go with --config).
func (o *runOptions) applyPolicy(srvs []server) {
	if len(srvs) != 1 || o.configFile != "" {
		return
	}
	c := srvs[0].cfg
	c.Lists, c.Policy, c.ProvenClients = o.lists, o.policy, o.proven
}
