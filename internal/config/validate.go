package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
)

// flagOf is run's flag for each key of a one-service Config (services[0]
// dropped from the path).
var flagOf = map[string]string{
	"table": "--table", "metrics": "--metrics", "log_level": "--log-level", "log_format": "--log-format", "cookie_profile": "--cookie-profile", "workers": "--workers",
	"fail_open": "--fail-open", "key_file": "--key-file", "fleet_secret_file": "--fleet-secret-file",
	"rotate": "--rotate", "ports": "--port", "backends": "--backend", "proxy_protocol": "--proxy-protocol",
	"driver": "--driver", "interface": "--interface", "queue": "--queue", "mss": "--mss", "mss6": "--mss6",
	"wscale": "--wscale", "timestamp": "--timestamp", "sack": "--sack",
	"limits.max_conns": "--max-conns", "limits.max_conns_per_source": "--max-conns-per-source",
	"limits.source_prefix4": "--source-prefix4", "limits.source_prefix6": "--source-prefix6",
	"limits.idle_timeout": "--idle-timeout", "limits.keepalive": "--keepalive",
	"limits.user_timeout": "--user-timeout", "limits.backend_timeout": "--backend-timeout",
	"limits.max_dials":  "--max-dials",
	"policy.allow_file": "--allow-file", "policy.deny_file": "--deny-file", "policy.syn_rate": "--syn-rate",
	"policy.syn_burst": "--syn-burst", "policy.reflect_rate": "--reflect-rate", "policy.reflect_burst": "--reflect-burst",
	"policy.mode": "--mode", "policy.on_demand.rate": "--on-demand-rate", "policy.on_demand.release": "--on-demand-release",
	"policy.on_demand.hold": "--on-demand-hold", "policy.proven_clients.enabled": "--proven-clients",
	"policy.proven_clients.size": "--proven-size", "policy.proven_clients.timeout": "--proven-timeout",
	"bgp.peers": "--bgp-peer", "bgp.asn": "--bgp-asn", "bgp.peer_asn": "--bgp-peer-asn", "bgp.router_id": "--bgp-router-id",
	"bgp.announce": "--bgp-announce", "bgp.hold_time": "--bgp-hold-time", "bgp.graceful_restart": "--bgp-graceful-restart",
	"bgp.withdraw_delay": "--bgp-withdraw-delay", "bgp.communities": "--bgp-community", "bgp.next_hop": "--bgp-next-hop",
	"bgp.next_hop6": "--bgp-next-hop6", "bgp.local_address": "--bgp-local-address", "bgp": "--bgp-*",
}

// FromFlags returns the one-service Config that run's flags spell, whose
// Validate names the flags instead of the keys. port and backend are the
// flags' values as given (0 and "" when left out).
func FromFlags(c Config, port int, backend string) *Config {
	s := c.Services[0]
	s.Ports, s.Backends = nil, nil
	if port != 0 {
		s.Ports = []int{port}
	}
	if backend != "" {
		s.Backends = []string{backend}
	}
	c.Services = []Service{s}
	c.lines, c.file = nil, ""
	c.flags = true
	return &c
}

// Validate checks that run could serve c: every value in range, the
// services apart (ports, queues, tables), the drivers known and able to
// do what they are asked. It reads no file and touches nothing. Its errors
// are *Error values joined, naming each key (with its line when c came
// from a file) or, for a Config from FromFlags, each flag.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.global()
	for i := range c.Services {
		v.service(i)
	}
	v.apart()
	v.bgp()
	return errors.Join(v.errs...)
}

type validator struct {
	c    *Config
	errs []error
}

// bad records an invalid value of key (a path below the top, services
// indexed).
func (v *validator) bad(key string, value any, want string, args ...any) {
	e := &Error{File: v.c.file, Line: v.c.line(key), Key: key, Want: fmt.Sprintf(want, args...)}
	if value != nil {
		if v.c.flags {
			e.Value = fmt.Sprint(value)
		} else if s, ok := value.(string); ok {
			e.Value = strconv.Quote(s)
		} else {
			e.Value = fmt.Sprint(value)
		}
	}
	if v.c.flags {
		k := key
		if strings.HasPrefix(k, "services[0].") {
			k = strings.TrimPrefix(k, "services[0].")
		}
		if f, ok := flagOf[k]; ok {
			e.Flag = f
		}
	}
	for _, old := range v.errs {
		if old.Error() == e.Error() { // a global and a service's key of one flag
			return
		}
	}
	v.errs = append(v.errs, e)
}

func (v *validator) global() {
	c := v.c
	if !validName(c.Table, 64) {
		v.bad("table", c.Table, "want a name of letters, digits and '_' (at most 64), starting with a letter")
	}
	if c.Metrics != "" {
		if _, port, err := net.SplitHostPort(c.Metrics); err != nil || !validPort(port, true) {
			v.bad("metrics", c.Metrics, "want ADDR:PORT, e.g. \"127.0.0.1:9464\" or \"[::1]:9464\" (empty: no metrics)")
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		v.bad("log_level", c.LogLevel, "want debug, info, warn or error")
	}
	if _, err := cookie.ParseProfile(c.CookieProfile); err != nil {
		v.bad("cookie_profile", c.CookieProfile, "want linux or full")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		v.bad("log_format", c.LogFormat, "want text or json")
	}
	if c.Workers < 1 || c.Workers > 256 {
		v.bad("workers", c.Workers, "want 1-256")
	}
	if c.Rotate < 0 || c.Rotate%time.Minute != 0 {
		v.bad("rotate", c.Rotate, "want 0 (never) or a whole number of minutes (1m, 5m, 1h): cookies live in minute slots")
	}
	s := c.Secret
	var set []string
	for _, k := range []struct{ key, val string }{
		{"key_file", s.KeyFile}, {"key_credential", s.KeyCredential},
		{"fleet_secret_file", s.FleetSecretFile}, {"fleet_secret_credential", s.FleetSecretCredential},
	} {
		if k.val == "" {
			continue
		}
		set = append(set, k.key)
		if strings.HasSuffix(k.key, "_credential") && !validCredential(k.val) {
			v.bad(k.key, k.val, "want a credential name (LoadCredential=NAME:…), without '/'")
		}
	}
	if len(set) > 1 {
		names := set
		if c.flags {
			names = nil
			for _, k := range set {
				names = append(names, flagOf[k])
			}
		}
		v.errs = append(v.errs, &Error{File: c.file, Line: c.line(set[1]), Key: set[1], Flag: flagOfIf(c, set[1]),
			Want: fmt.Sprintf("%s exclude each other: give one key or one fleet secret", strings.Join(names, " and "))})
	}
	if len(c.Services) == 0 {
		v.bad("services", nil, "want at least one [[services]] table")
	}
}

func flagOfIf(c *Config, key string) string {
	if c.flags {
		return flagOf[key]
	}
	return ""
}

func (v *validator) service(i int) {
	s := &v.c.Services[i]
	k := func(key string) string { return fmt.Sprintf("services[%d].%s", i, key) }
	if len(v.c.Services) > 1 || !v.c.flags {
		if !validName(s.Name, 32) {
			v.bad(k("name"), s.Name, "want a name of letters, digits and '_' (at most 32), starting with a letter; "+
				"it names the service's table and metrics")
		}
	}
	if len(s.Ports) == 0 {
		v.bad(k("ports"), nil, "required: the protected TCP port(s), 1-65535")
	}
	for _, p := range s.Ports {
		if p < 1 || p > 65535 {
			v.bad(k("ports"), p, "want a port number 1-65535")
		}
	}
	seen := map[netip.Addr]bool{}
	for _, a := range s.Addresses {
		ip, err := netip.ParseAddr(a)
		switch {
		case err != nil || ip.Zone() != "":
			v.bad(k("addresses"), a, "want an IPv4 or IPv6 address without a port or zone (\"192.0.2.1\", \"2001:db8::1\")")
		case ip.IsUnspecified() || ip.IsMulticast():
			v.bad(k("addresses"), a, "want a unicast address of this host (leave addresses out to protect every local address)")
		case seen[ip.Unmap()]:
			v.bad(k("addresses"), a, "listed twice")
		}
		seen[ip.Unmap()] = true
	}
	if len(s.Backends) == 0 {
		v.bad(k("backends"), nil, "required: the HOST:PORT the connections are spliced to")
	}
	for _, b := range s.Backends {
		if err := checkHostPort(b); err != "" {
			v.bad(k("backends"), b, "%s", err)
		}
	}
	d, ok := proxy.LookupDriver(s.Driver)
	switch {
	case s.Driver == proxy.AutoDriver:
		// Chosen at the start among the drivers that fit the service
		// (fail-open and addresses: nfqueue).
	case !ok:
		v.bad(k("driver"), s.Driver, "want %s or %s", proxy.AutoDriver, strings.Join(driverNames(nil), " or "))
	case d.NeedsInterface && s.Interface == "":
		v.bad(k("interface"), nil, "required with driver %s: the interface clients arrive on", s.Driver)
	case s.FailOpen && !d.FailOpen:
		v.bad(k("fail_open"), s.FailOpen, "fail-open needs driver %s (%s cannot hand packets back when the daemon is gone)",
			strings.Join(driverNames(func(d proxy.Driver) bool { return d.FailOpen }), " or "), s.Driver)
	case len(s.Addresses) > 0 && d.Drop:
		v.bad(k("addresses"), nil, "addresses need driver %s (%s sees the ports on every address)",
			strings.Join(driverNames(func(d proxy.Driver) bool { return !d.Drop }), " or "), s.Driver)
	}
	if s.Workers < 1 || s.Workers > 256 {
		v.bad(k("workers"), s.Workers, "want 1-256")
	}
	if s.Queue < 0 || s.Queue+s.queues() > 65536 {
		v.bad(k("queue"), s.Queue, "want 0-65535, with the %d queues from it (2 × workers per port, 2 × (workers + 1) with "+
			"proven clients, the second half "+
			"for graceful restarts) at most 65535", s.queues())
	}
	if !validName(s.Table, 64) {
		v.bad(k("table"), s.Table, "want a name of letters, digits and '_' (at most 64), starting with a letter")
	}
	if s.MSS < -1 || s.MSS > 65535 {
		v.bad(k("mss"), s.MSS, "want -1 (no MSS option), 0 (%d) or 1-65535", DefaultMSS)
	}
	if s.MSS6 < -1 || s.MSS6 > 65535 {
		v.bad(k("mss6"), s.MSS6, "want -1 (no MSS option), 0 (%d) or 1-65535", DefaultMSS6)
	}
	if s.WScale < -1 || s.WScale > cookie.MaxWScale {
		v.bad(k("wscale"), s.WScale, "want -1 (no window scaling) or 0-%d", cookie.MaxWScale)
	}
	v.limits(k("limits."), &s.Limits)
	v.policy(k("policy."), s)
}

func (v *validator) limits(k string, l *Limits) {
	switch {
	case l.MaxConns < -1:
		v.bad(k+"max_conns", l.MaxConns, "want -1 (no limit), 0 (from the descriptor limit) or positive")
	case l.MaxConnsPerSource < 0:
		v.bad(k+"max_conns_per_source", l.MaxConnsPerSource, "want 0 (no limit) or positive")
	case l.SourcePrefix4 < 1 || l.SourcePrefix4 > 32:
		v.bad(k+"source_prefix4", l.SourcePrefix4, "want 1-32")
	case l.SourcePrefix6 < 1 || l.SourcePrefix6 > 128:
		v.bad(k+"source_prefix6", l.SourcePrefix6, "want 1-128")
	case l.IdleTimeout < 0:
		v.bad(k+"idle_timeout", l.IdleTimeout, "want 0 (never) or a positive duration")
	case l.KeepAlive < 0 || l.KeepAlive > 0 && l.KeepAlive < time.Second:
		v.bad(k+"keepalive", l.KeepAlive, "want 0 (off) or at least 1s")
	case l.UserTimeout < 0 || l.UserTimeout > 0 && l.UserTimeout < time.Millisecond:
		v.bad(k+"user_timeout", l.UserTimeout, "want 0 (the kernel's) or at least 1ms")
	case l.BackendTimeout <= 0:
		v.bad(k+"backend_timeout", l.BackendTimeout, "want a positive duration")
	case l.MaxDials < -1 || l.MaxDials == 0:
		v.bad(k+"max_dials", l.MaxDials, "want -1 (no limit) or positive")
	}
}

// apart checks that the services share no name, port, table or queue.
func (v *validator) apart() {
	names := map[string]int{}
	type owner struct {
		i     int
		addrs []string
	}
	ports := map[int][]owner{}
	tables := map[string]int{}
	type span struct{ i, lo, hi int }
	var queues []span
	for i, s := range v.c.Services {
		k := func(key string) string { return fmt.Sprintf("services[%d].%s", i, key) }
		if j, ok := names[s.Name]; ok && s.Name != "" {
			v.bad(k("name"), s.Name, "services[%d] has that name; want a name of its own", j)
		}
		names[s.Name] = i
		for _, p := range s.Ports {
			for _, o := range ports[p] {
				if len(o.addrs) == 0 || len(s.Addresses) == 0 || overlap(o.addrs, s.Addresses) {
					v.bad(k("ports"), p, "services[%d] protects that port on the same address; want each port and "+
						"address in one service (addresses may tell them apart)", o.i)
					break
				}
			}
			ports[p] = append(ports[p], owner{i, s.Addresses})
		}
		for _, t := range s.Tables() {
			if j, ok := tables[t]; ok {
				v.bad(k("table"), s.Table, "services[%d] owns the table %q; want a table of its own", j, t)
			}
			tables[t] = i
		}
		// auto may choose nfqueue, so its queues count too.
		if d, ok := proxy.LookupDriver(s.Driver); s.Driver == proxy.AutoDriver || ok && !d.Drop {
			lo, hi := s.Queue, s.Queue+s.queues()
			for _, q := range queues {
				if lo < q.hi && q.lo < hi {
					v.bad(k("queue"), s.Queue, "its queues %d-%d overlap those of services[%d] (%d-%d); want a range of its own",
						lo, hi-1, q.i, q.lo, q.hi-1)
				}
			}
			queues = append(queues, span{i, lo, hi})
		}
	}
}

// overlap reports whether two lists of addresses share one.
func overlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			px, ex := netip.ParseAddr(x)
			py, ey := netip.ParseAddr(y)
			if ex == nil && ey == nil && px.Unmap() == py.Unmap() {
				return true
			}
		}
	}
	return false
}

// Addrs returns the service's addresses, parsed (once valid).
func (s *Service) Addrs() []netip.Addr {
	var out []netip.Addr
	for _, a := range s.Addresses {
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// queues is the number of queues the service uses from Queue.
func (s *Service) queues() int { return s.portQueues() * max(len(s.Ports), 1) }

// portQueues is the number of queues of one port: the workers' and the
// proven clients' one, twice (the second half for graceful restarts).
func (s *Service) portQueues() int {
	n := max(s.Workers, 1)
	if s.Policy.ProvenClients.Enabled {
		n++
	}
	return 2 * n
}

// Tables returns the nft table of each of the service's ports: Table,
// then Table_2, Table_3…
func (s *Service) Tables() []string {
	t := make([]string, max(len(s.Ports), 1))
	for i := range t {
		t[i] = s.Table
		if i > 0 {
			t[i] = fmt.Sprintf("%s_%d", s.Table, i+1)
		}
	}
	return t
}

// PortQueue returns the first queue of the service's i-th port.
func (s *Service) PortQueue(i int) uint16 { return uint16(s.Queue + s.portQueues()*i) }

func driverNames(keep func(proxy.Driver) bool) []string {
	var names []string
	for _, d := range proxy.Drivers() {
		if keep == nil || keep(d) {
			names = append(names, d.Name)
		}
	}
	return names
}

// checkHostPort says what is wrong with a backend, or "".
func checkHostPort(s string) string {
	const want = "want HOST:PORT with a port 1-65535, an IPv6 address in brackets ([2001:db8::1]:8443)"
	host, port, err := net.SplitHostPort(s)
	switch {
	case err != nil && strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "["):
		return "an IPv6 address needs brackets: " + want
	case err != nil:
		return want
	case host == "":
		return "the host is missing: " + want
	case !validPort(port, false):
		return "bad port " + strconv.Quote(port) + ": " + want
	}
	return ""
}

func validPort(s string, zero bool) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p <= 65535 && (p > 0 || zero && p == 0)
}

func validName(s string, n int) bool {
	if s == "" || len(s) > n || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func validCredential(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/\x00") && s != "." && s != ".."
}
