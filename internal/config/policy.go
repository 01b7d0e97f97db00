package config

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
)

// Policy is a service's protection policy ([services.policy]): the allow
// and deny lists, the per-source SYN limit, the reflection budget, the
// mode and the proven clients (engine.Policy, nft.Lists, nft.Proven). The
// source prefixes of the limits are the service's Limits.SourcePrefix4
// and SourcePrefix6.
type Policy struct {
	// AllowFile and DenyFile name files of sources (CIDRs or addresses,
	// one a line, # comments) that bypass the proxy to the backend or are
	// dropped before the engine; SIGUSR1 re-reads them. A relative name
	// is relative to the configuration file's directory. Allow and Deny
	// are sources written in the configuration itself, added to the
	// files'.
	AllowFile, DenyFile string
	Allow, Deny         []string
	// SYNRate is the most SYNs a second from one source prefix (0: no
	// limit); SYNBurst the SYNs it may send at once (0: SYNRate).
	SYNRate, SYNBurst int
	// ReflectRate is the most SYN-ACKs a second towards one source prefix
	// (0: no budget; default engine.DefaultReflectRate); ReflectBurst the
	// SYN-ACKs at once (0: ReflectRate).
	ReflectRate, ReflectBurst int
	// Mode is protect (cookies always), monitor (count, touch nothing)
	// or on-demand (cookies only while the SYN rate is above OnDemand.Rate).
	Mode string
	// OnDemand is the hysteresis of mode on-demand.
	OnDemand OnDemand
	// ProvenClients serves the sources that completed a handshake first.
	ProvenClients ProvenClients
}

// OnDemand is when an on-demand service engages its cookies: at Rate SYNs
// a second to the port, released once the rate stayed below Release (0:
// half of Rate) for Hold.
type OnDemand struct {
	Rate, Release int
	Hold          time.Duration
}

// ProvenClients gives the sources that completed a handshake in the last
// Timeout a queue and worker of their own (driver nfqueue) or a ring of
// their own (afpacket, afxdp); at most Size of them per family.
type ProvenClients struct {
	Enabled bool
	Size    int
	Timeout time.Duration
}

// Policy defaults, the values of the keys the file leaves out and of
// run's flags.
const (
	DefaultMode         = "protect"
	DefaultOnDemandRate = 1000
)

// DefaultPolicy returns the policy of a service that sets none: protect,
// no lists, no SYN limit, the default reflection budget, no proven clients.
func DefaultPolicy() Policy {
	return Policy{ReflectRate: engine.DefaultReflectRate, Mode: DefaultMode,
		OnDemand:      OnDemand{Rate: DefaultOnDemandRate, Hold: engine.DefaultHold},
		ProvenClients: ProvenClients{Size: nft.DefaultProvenSize, Timeout: nft.DefaultProvenTimeout}}
}

type filePolicy struct {
	AllowFile     string       `toml:"allow_file"`
	DenyFile      string       `toml:"deny_file"`
	Allow         []string     `toml:"allow"`
	Deny          []string     `toml:"deny"`
	SYNRate       *int         `toml:"syn_rate"`
	SYNBurst      *int         `toml:"syn_burst"`
	ReflectRate   *int         `toml:"reflect_rate"`
	ReflectBurst  *int         `toml:"reflect_burst"`
	Mode          *string      `toml:"mode"`
	OnDemand      fileOnDemand `toml:"on_demand"`
	ProvenClients fileProven   `toml:"proven_clients"`
}

type fileOnDemand struct {
	Rate    *int      `toml:"rate"`
	Release *int      `toml:"release"`
	Hold    *duration `toml:"hold"`
}

type fileProven struct {
	Enabled *bool     `toml:"enabled"`
	Size    *int      `toml:"size"`
	Timeout *duration `toml:"timeout"`
}

// HasLists reports whether the policy has allow or deny lists (files or
// sources written in the configuration).
func (p *Policy) HasLists() bool {
	return p.AllowFile != "" || p.DenyFile != "" || len(p.Allow) > 0 || len(p.Deny) > 0
}

// EnginePolicy returns the engine's policy of the service (its mode,
// limits and prefixes; the lists go to nft, see Lists). Valid once
// Validate passed.
func (s *Service) EnginePolicy() *engine.Policy {
	p := &s.Policy
	mode, _ := engine.ParseMode(p.Mode)
	pol := &engine.Policy{Mode: mode, SYNRate: p.SYNRate, SYNBurst: p.SYNBurst, ReflectRate: p.ReflectRate,
		ReflectBurst: p.ReflectBurst, Prefix4: s.Limits.SourcePrefix4, Prefix6: s.Limits.SourcePrefix6}
	if mode == engine.ModeOnDemand {
		pol.EngageRate, pol.ReleaseRate, pol.Hold = p.OnDemand.Rate, p.OnDemand.Release, p.OnDemand.Hold
	}
	return pol
}

// Proven returns the proven clients' configuration of the service, nil
// when they are not enabled.
func (s *Service) Proven() *nft.Proven {
	p := s.Policy.ProvenClients
	if !p.Enabled {
		return nil
	}
	return &nft.Proven{Size: uint32(p.Size), Timeout: p.Timeout}
}

// Lists reads the allow and deny lists of services[i]: its files and the
// sources written in the configuration; nil when it has none. An error,
// an *Error, names the key (or run's flag) and the file's line at fault.
func (c *Config) Lists(i int) (*nft.Lists, error) {
	p := &c.Services[i].Policy
	if !p.HasLists() {
		return nil, nil
	}
	k := func(key string) string { return fmt.Sprintf("services[%d].policy.%s", i, key) }
	l := &nft.Lists{}
	for _, x := range []struct {
		key, file string
		inline    []string
		dst       *[]netip.Prefix
	}{{"allow", p.AllowFile, p.Allow, &l.Allow}, {"deny", p.DenyFile, p.Deny, &l.Deny}} {
		ps, err := ReadPrefixes(c.path(x.file))
		if err != nil {
			v := &validator{c: c}
			v.bad(k(x.key+"_file"), x.file, "%v", err)
			return nil, v.errs[0]
		}
		for _, s := range x.inline {
			pr, err := ParsePrefix(s)
			if err != nil {
				v := &validator{c: c}
				v.bad(k(x.key), s, "%v", err)
				return nil, v.errs[0]
			}
			ps = append(ps, pr)
		}
		*x.dst = ps
	}
	return l, nil
}

// path is a file named in the configuration: relative to the file's
// directory when it came from a file, else as given.
func (c *Config) path(name string) string {
	if name == "" || c.file == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(filepath.Dir(c.file), name)
}

// ParsePrefix parses a source of an allow or deny list: a CIDR
// (10.0.0.0/8, fd00::/48) or an address (a /32 or /128), masked.
func ParsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR (10.0.0.0/8, fd00::/48) nor an address", s)
		}
		p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q has a zone; want a CIDR or an address without one", s)
	}
	return p.Masked(), nil
}

// ReadPrefixes reads a list file: CIDRs or addresses (ParsePrefix), one a
// line; # starts a comment. An empty name is an empty list. Its errors
// name the file and the line.
func ReadPrefixes(name string) ([]netip.Prefix, error) {
	if name == "" {
		return nil, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ps []netip.Prefix
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s, _, _ := strings.Cut(sc.Text(), "#")
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		ps = append(ps, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return ps, nil
}

// policy checks the policy of a service (keys under k, "services[i].policy.").
func (v *validator) policy(k string, s *Service) {
	p := &s.Policy
	for _, x := range []struct {
		key  string
		list []string
	}{{"allow", p.Allow}, {"deny", p.Deny}} {
		for _, a := range x.list {
			if _, err := ParsePrefix(a); err != nil {
				v.bad(k+x.key, a, "want CIDRs or addresses (\"10.0.0.0/8\", \"2001:db8::1\")")
			}
		}
	}
	mode, err := engine.ParseMode(p.Mode)
	if err != nil {
		v.bad(k+"mode", p.Mode, "want protect, monitor or on-demand")
	}
	for _, x := range []struct {
		key string
		n   int
	}{{"syn_rate", p.SYNRate}, {"syn_burst", p.SYNBurst}, {"reflect_rate", p.ReflectRate}, {"reflect_burst", p.ReflectBurst}} {
		if x.n < 0 {
			v.bad(k+x.key, x.n, "want 0 (%s) or a positive number a second", map[bool]string{true: "no limit", false: "the rate"}[strings.HasSuffix(x.key, "rate")])
		}
	}
	od := p.OnDemand
	switch {
	case mode == engine.ModeOnDemand && od.Rate <= 0:
		v.bad(k+"on_demand.rate", od.Rate, "want a positive number of SYNs a second to the port (mode on-demand)")
	case od.Release < 0 || od.Release > max(od.Rate, 0):
		v.bad(k+"on_demand.release", od.Release, "want 0 (half of on_demand.rate) up to on_demand.rate (%d)", od.Rate)
	case od.Hold < 0:
		v.bad(k+"on_demand.hold", od.Hold, "want 0 (%s) or a positive duration", engine.DefaultHold)
	}
	pc := p.ProvenClients
	if !pc.Enabled {
		return
	}
	switch d, _ := proxy.LookupDriver(s.Driver); {
	case pc.Size < 1 || pc.Size > 1<<24:
		v.bad(k+"proven_clients.size", pc.Size, "want 1-16777216 sources per family")
	case pc.Timeout < time.Second:
		v.bad(k+"proven_clients.timeout", pc.Timeout, "want at least 1s")
	case s.Driver != proxy.AutoDriver && !d.Proven:
		v.bad(k+"proven_clients.enabled", pc.Enabled, "proven clients need driver %s (their packets get a queue or ring of their own; %s has none)",
			strings.Join(driverNames(func(d proxy.Driver) bool { return d.Proven }), " or "), s.Driver)
	}
}

// policy fills a service's policy from the file's values and the
// defaults; k names a key of [services.policy], for dur's errors.
func (f *filePolicy) policy(k func(string) string, num func(*int, int) int,
	dur func(string, *duration, time.Duration) time.Duration) Policy {
	d := DefaultPolicy()
	p := Policy{AllowFile: f.AllowFile, DenyFile: f.DenyFile, Allow: f.Allow, Deny: f.Deny,
		SYNRate: num(f.SYNRate, d.SYNRate), SYNBurst: num(f.SYNBurst, d.SYNBurst),
		ReflectRate: num(f.ReflectRate, d.ReflectRate), ReflectBurst: num(f.ReflectBurst, d.ReflectBurst), Mode: d.Mode,
		OnDemand: OnDemand{Rate: num(f.OnDemand.Rate, d.OnDemand.Rate), Release: num(f.OnDemand.Release, d.OnDemand.Release),
			Hold: dur(k("on_demand.hold"), f.OnDemand.Hold, d.OnDemand.Hold)},
		ProvenClients: ProvenClients{Size: num(f.ProvenClients.Size, d.ProvenClients.Size),
			Timeout: dur(k("proven_clients.timeout"), f.ProvenClients.Timeout, d.ProvenClients.Timeout)}}
	if f.Mode != nil {
		p.Mode = *f.Mode
	}
	if f.ProvenClients.Enabled != nil {
		p.ProvenClients.Enabled = *f.ProvenClients.Enabled
	}
	return p
}
