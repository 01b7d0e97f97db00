package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
)

// Config is the daemon's configuration: what "synproxy-lite run" serves,
// from a file (Load, Parse) or from run's flags. Parse fills every
// default, so a Config it returns is complete; Validate says whether it can
// run.
type Config struct {
	// Table is the nft table (inet family) the daemon owns, or the prefix
	// of its services' tables when it serves several (see Service.Table).
	Table string
	// Metrics is the ADDR:PORT of the Prometheus endpoint; empty: none.
	Metrics string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text (logfmt) or json (one object a line).
	LogFormat string
	// Workers is every service's number of queues and engine workers
	// unless the service sets its own.
	Workers int
	// FailOpen is every service's fail-open setting unless the service
	// sets its own.
	FailOpen bool
	// Secret names the cookie key or the fleet secret; none: a random key.
	Secret Secret
	// Rotate is the key period; zero: one key for the daemon's life.
	Rotate time.Duration
	// CookieProfile is the cookie layout, "linux" (the kernel's, the
	// default) or "full" (cookie.ProfileFull): every node of a fleet must
	// agree, as the fleet's keys are derived with it.
	CookieProfile string
	// Services are the protected services, at least one.
	Services []Service
	// BGP announces the services' addresses while the daemon is ready;
	// nil: no BGP.
	BGP *BGP

	file  string         // the file Load read, for messages
	lines map[string]int // line of each key Parse saw, by path
	flags bool           // made by FromFlags: errors name run's flags
}

// Secret names where the cookie key or the fleet secret is read: a file,
// or a systemd credential ($CREDENTIALS_DIRECTORY/name, which systemd's
// LoadCredential= fills). At most one of the four is set.
type Secret struct {
	KeyFile, KeyCredential                 string
	FleetSecretFile, FleetSecretCredential string
}

// Service is one protected service: the ports the daemon answers SYNs on
// and the backends it splices the proven connections to.
type Service struct {
	// Name tells the services apart in logs, tables and metrics.
	Name string
	// Ports are the protected TCP ports, on every local address (IPv4
	// and IPv6 alike), or on Addresses.
	Ports []int
	// Addresses, when set, limit the protection to these local addresses
	// (IPv4 and IPv6 literals): the ports on other addresses, and in a
	// family none of them is of, are left to the kernel. Empty: every
	// local address.
	Addresses []string
	// Backends are the HOST:PORT the connections are spliced to, in turn
	// (round-robin), the next one when a dial fails.
	Backends []string
	// ProxyProtocol sends a PROXY protocol v2 header to the backend.
	ProxyProtocol bool
	// Driver is the packet I/O driver (nfqueue, afpacket); Interface the
	// interface the afpacket driver receives on.
	Driver, Interface string
	// Workers is the number of queues and engine workers of each port.
	Workers int
	// Queue is the first netfilter queue of the service's first port; a
	// port uses 2 × Workers queues from its first (the second half for
	// graceful restarts), the next port the ones after.
	Queue int
	// FailOpen lets traffic bypass the proxy while the daemon is down.
	FailOpen bool
	// Table is the nft table of the service's first port; the next ports
	// add "_2", "_3"…
	Table string
	// MSS and MSS6 are the MSS advertised to IPv4 and IPv6 clients (-1:
	// no MSS option); WScale the window scale (-1: none); Timestamp and
	// SACK offer those options.
	MSS, MSS6, WScale int
	Timestamp, SACK   bool
	// Limits bound the handed-over connections.
	Limits Limits
	// Policy is the protection policy: lists, limits, mode.
	Policy Policy
}

// Limits are the bounds of run's limit flags (handoff.Limits): zero values
// mean what the flags' zero values mean.
type Limits struct {
	MaxConns, MaxConnsPerSource  int
	SourcePrefix4, SourcePrefix6 int
	IdleTimeout, KeepAlive       time.Duration
	UserTimeout, BackendTimeout  time.Duration
	MaxDials                     int
}

// Defaults are the values of every key the file leaves out, and of run's
// flags.
const (
	DefaultQueue         = 100
	DefaultMSS           = 1460
	DefaultMSS6          = 1440
	DefaultWScale        = 7
	DefaultLogLevel      = "info"
	DefaultLogFormat     = "text"
	DefaultCookieProfile = "linux"
	DefaultDriver        = proxy.AutoDriver
)

// DefaultLimits returns the limits of a service that sets none.
func DefaultLimits() Limits {
	return Limits{SourcePrefix4: handoff.DefaultSourcePrefix4, SourcePrefix6: handoff.DefaultSourcePrefix6,
		KeepAlive: handoff.DefaultKeepAlive, UserTimeout: handoff.DefaultUserTimeout,
		BackendTimeout: handoff.DefaultDialTimeout, MaxDials: handoff.DefaultMaxDials}
}

// DefaultWorkers is the number of workers when neither the file nor a
// flag sets it: one per CPU, at most 256.
func DefaultWorkers() int { return min(runtime.NumCPU(), 256) }

// The file's shape: pointers tell a key left out from a zero.
type fileConfig struct {
	Table                 *string       `toml:"table"`
	Metrics               *string       `toml:"metrics"`
	LogLevel              *string       `toml:"log_level"`
	LogFormat             *string       `toml:"log_format"`
	CookieProfile         *string       `toml:"cookie_profile"`
	Workers               *int          `toml:"workers"`
	FailOpen              *bool         `toml:"fail_open"`
	KeyFile               string        `toml:"key_file"`
	KeyCredential         string        `toml:"key_credential"`
	FleetSecretFile       string        `toml:"fleet_secret_file"`
	FleetSecretCredential string        `toml:"fleet_secret_credential"`
	Rotate                *duration     `toml:"rotate"`
	Services              []fileService `toml:"services"`
	BGP                   *fileBGP      `toml:"bgp"`
}

type fileService struct {
	Name          string     `toml:"name"`
	Ports         []int      `toml:"ports"`
	Addresses     []string   `toml:"addresses"`
	Backends      []string   `toml:"backends"`
	ProxyProtocol bool       `toml:"proxy_protocol"`
	Driver        *string    `toml:"driver"`
	Interface     string     `toml:"interface"`
	Workers       *int       `toml:"workers"`
	Queue         *int       `toml:"queue"`
	FailOpen      *bool      `toml:"fail_open"`
	Table         *string    `toml:"table"`
	MSS           *int       `toml:"mss"`
	MSS6          *int       `toml:"mss6"`
	WScale        *int       `toml:"wscale"`
	Timestamp     *bool      `toml:"timestamp"`
	SACK          *bool      `toml:"sack"`
	Limits        fileLimits `toml:"limits"`
	Policy        filePolicy `toml:"policy"`
}

type fileLimits struct {
	MaxConns          *int      `toml:"max_conns"`
	MaxConnsPerSource *int      `toml:"max_conns_per_source"`
	SourcePrefix4     *int      `toml:"source_prefix4"`
	SourcePrefix6     *int      `toml:"source_prefix6"`
	IdleTimeout       *duration `toml:"idle_timeout"`
	KeepAlive         *duration `toml:"keepalive"`
	UserTimeout       *duration `toml:"user_timeout"`
	BackendTimeout    *duration `toml:"backend_timeout"`
	MaxDials          *int      `toml:"max_dials"`
}

// validKeys lists the keys of each table, for the unknown-key error.
var validKeys = map[string]string{
	"": "table, metrics, log_level, log_format, cookie_profile, workers, fail_open, key_file, key_credential, fleet_secret_file, " +
		"fleet_secret_credential, rotate, [[services]], [bgp]",
	"bgp": bgpKeys,
	"services": "name, ports, addresses, backends, proxy_protocol, driver, interface, workers, queue, fail_open, table, " +
		"mss, mss6, wscale, timestamp, sack, [services.limits], [services.policy]",
	"services.limits": "max_conns, max_conns_per_source, source_prefix4, source_prefix6, idle_timeout, keepalive, " +
		"user_timeout, backend_timeout, max_dials",
	"services.policy": "allow_file, deny_file, allow, deny, syn_rate, syn_burst, reflect_rate, reflect_burst, mode, " +
		"[services.policy.on_demand], [services.policy.proven_clients]",
	"services.policy.on_demand":      "rate, release, hold",
	"services.policy.proven_clients": "enabled, size, timeout",
}

// duration is a TOML string such as "90s" or "5m", parsed once decoded
// (a TextUnmarshaler would take a bare number too, without its line).
type duration = string

// Load reads and parses the file at path (see Parse). Its errors name the
// file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(b, path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes a TOML configuration, fills the defaults and validates it.
// A key the format does not know is an error, and so is every value run
// could not use; the error, an *Error, names the key and its line and says
// what would be valid. Parse neither reads the secrets nor resolves the
// backends' names (see Config.Ring).
func Parse(data []byte) (*Config, error) { return parse(data, "") }

func parse(data []byte, file string) (*Config, error) {
	lines := keyLines(data)
	var fc fileConfig
	d := toml.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&fc); err != nil {
		return nil, decodeError(err, file, lines)
	}
	c := &Config{file: file, lines: lines}
	if err := fc.config(c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeError turns go-toml's errors into *Error.
func decodeError(err error, file string, lines map[string]int) error {
	var se *toml.StrictMissingError
	if errors.As(err, &se) && len(se.Errors) > 0 {
		var errs []error
		for i := range se.Errors {
			e := &se.Errors[i]
			row, _ := e.Position()
			key := lineKey(lines, row, e.Key())
			errs = append(errs, &Error{File: file, Line: row, Key: key, Want: "a known key; valid keys here: " +
				validKeys[tableOf(e.Key())], unknown: true})
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if len(de.Key()) == 0 {
			return &Error{File: file, Line: row, Want: "valid TOML (" + msg + ")"}
		}
		return &Error{File: file, Line: row, Key: lineKey(lines, row, de.Key()), Want: want(de.Key(), msg)}
	}
	return fmt.Errorf("config: %s: %w", orStdin(file), err)
}

// want says what a key takes, for a value of the wrong type.
func want(key toml.Key, msg string) string {
	leaf := key[len(key)-1]
	switch leaf {
	case "rotate", "idle_timeout", "keepalive", "user_timeout", "backend_timeout", "hold", "timeout",
		"hold_time", "graceful_restart", "withdraw_delay":
		if strings.Contains(msg, "duration") {
			return msg
		}
		return "a duration string such as \"90s\" or \"5m\""
	case "ports":
		return "a list of port numbers, e.g. [443]"
	case "backends":
		return "a list of \"HOST:PORT\" strings, e.g. [\"10.0.0.2:8443\"]"
	case "peers":
		return "a list of address or \"ADDR:PORT\" strings, e.g. [\"10.0.0.1\", \"[2001:db8::1]:1179\"]"
	case "announce":
		return "a list of prefix strings, e.g. [\"192.0.2.1/32\", \"2001:db8::1/128\"]"
	case "communities":
		return "a list of \"AS:VALUE\" strings, e.g. [\"65001:100\"]"
	case "asn", "peer_asn":
		return "an integer AS number"
	case "addresses":
		return "a list of IP address strings, e.g. [\"192.0.2.1\", \"2001:db8::1\"]"
	case "allow", "deny":
		return "a list of CIDR or address strings, e.g. [\"10.0.0.0/8\", \"2001:db8::1\"]"
	case "fail_open", "proxy_protocol", "timestamp", "sack", "enabled":
		return "true or false"
	case "workers", "queue", "mss", "mss6", "wscale", "max_conns", "max_conns_per_source",
		"source_prefix4", "source_prefix6", "max_dials", "syn_rate", "syn_burst", "reflect_rate", "reflect_burst",
		"rate", "release", "size":
		return "an integer"
	}
	return "a string (" + msg + ")"
}

// tableOf is the table path (indices left out) holding the key.
func tableOf(key toml.Key) string {
	if len(key) <= 1 {
		return ""
	}
	return strings.Join(key[:len(key)-1], ".")
}

func orStdin(file string) string {
	if file == "" {
		return "<config>"
	}
	return file
}

// config fills c from the file's values and the defaults.
func (fc *fileConfig) config(c *Config) error {
	var errs []error
	str := func(p *string, def string) string {
		if p == nil {
			return def
		}
		return *p
	}
	num := func(p *int, def int) int {
		if p == nil {
			return def
		}
		return *p
	}
	flag := func(p *bool, def bool) bool {
		if p == nil {
			return def
		}
		return *p
	}
	dur := func(key string, p *duration, def time.Duration) time.Duration {
		if p == nil {
			return def
		}
		d, err := time.ParseDuration(*p)
		if err != nil {
			errs = append(errs, &Error{File: c.file, Line: c.line(key), Key: key, Value: strconv.Quote(*p),
				Want: "want a duration such as \"90s\", \"5m\" or \"1h\""})
		}
		return d
	}
	*c = Config{file: c.file, lines: c.lines, Table: str(fc.Table, nft.DefaultTable), Metrics: str(fc.Metrics, ""),
		LogLevel: str(fc.LogLevel, DefaultLogLevel), LogFormat: str(fc.LogFormat, DefaultLogFormat), CookieProfile: str(fc.CookieProfile, DefaultCookieProfile), Workers: num(fc.Workers, DefaultWorkers()),
		FailOpen: flag(fc.FailOpen, false), Rotate: dur("rotate", fc.Rotate, 0),
		Secret: Secret{KeyFile: fc.KeyFile, KeyCredential: fc.KeyCredential,
			FleetSecretFile: fc.FleetSecretFile, FleetSecretCredential: fc.FleetSecretCredential}}
	c.BGP = fc.BGP.bgp(dur)
	dl := DefaultLimits()
	queue := DefaultQueue
	for i, f := range fc.Services {
		k := func(key string) string { return fmt.Sprintf("services[%d].limits.%s", i, key) }
		s := Service{Name: f.Name, Ports: f.Ports, Addresses: f.Addresses, Backends: f.Backends, ProxyProtocol: f.ProxyProtocol,
			Driver: str(f.Driver, DefaultDriver), Interface: f.Interface, Workers: num(f.Workers, c.Workers),
			FailOpen: flag(f.FailOpen, c.FailOpen), MSS: num(f.MSS, DefaultMSS), MSS6: num(f.MSS6, DefaultMSS6),
			WScale: num(f.WScale, DefaultWScale), Timestamp: flag(f.Timestamp, true), SACK: flag(f.SACK, true)}
		if s.Name == "" && len(fc.Services) == 1 {
			s.Name = "default"
		}
		s.Policy = f.Policy.policy(func(key string) string { return fmt.Sprintf("services[%d].policy.%s", i, key) },
			num, dur)
		s.Queue = num(f.Queue, queue)
		queue = s.Queue + s.queues()
		switch {
		case f.Table != nil:
			s.Table = *f.Table
		case len(fc.Services) == 1:
			s.Table = c.Table
		default:
			s.Table = c.Table + "_" + s.Name
		}
		l := f.Limits
		s.Limits = Limits{MaxConns: num(l.MaxConns, dl.MaxConns), MaxConnsPerSource: num(l.MaxConnsPerSource, 0),
			SourcePrefix4: num(l.SourcePrefix4, dl.SourcePrefix4), SourcePrefix6: num(l.SourcePrefix6, dl.SourcePrefix6),
			IdleTimeout: dur(k("idle_timeout"), l.IdleTimeout, 0), KeepAlive: dur(k("keepalive"), l.KeepAlive, dl.KeepAlive),
			UserTimeout:    dur(k("user_timeout"), l.UserTimeout, dl.UserTimeout),
			BackendTimeout: dur(k("backend_timeout"), l.BackendTimeout, dl.BackendTimeout),
			MaxDials:       num(l.MaxDials, dl.MaxDials)}
		c.Services = append(c.Services, s)
	}
	return errors.Join(errs...)
}

// keyLines maps the path of every key of a TOML document ("table",
// "services[1].ports", "services[0].limits.max_conns") to its line, for
// messages. It reads the document's lines, not its grammar: a header
// "[[services]]" starts the next service, "[services.limits]" its limits,
// and "key =" at the start of a line is a key.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	prefix := ""
	n := map[string]int{} // array tables seen, by name
	for i, line := range strings.Split(string(data), "\n") {
		no := i + 1
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "[["):
			name := strings.TrimSpace(strings.Trim(strings.SplitN(t, "]]", 2)[0], "[ "))
			prefix = fmt.Sprintf("%s[%d]", name, n[name])
			n[name]++
			lines[prefix] = no
			prefix += "."
		case strings.HasPrefix(t, "["):
			name := strings.TrimSpace(strings.Trim(strings.SplitN(t, "]", 2)[0], "[ "))
			// A sub-table of the last array table element: services.limits
			// is services[k].limits.
			for arr, k := range n {
				if strings.HasPrefix(name, arr+".") {
					name = fmt.Sprintf("%s[%d]%s", arr, k-1, strings.TrimPrefix(name, arr))
				}
			}
			prefix = name
			lines[prefix] = no
			prefix += "."
		default:
			k, _, ok := strings.Cut(t, "=")
			k = strings.Trim(strings.TrimSpace(k), `"'`)
			if !ok || k == "" || strings.HasPrefix(k, "#") || strings.ContainsAny(k, " \t\"'[{,") {
				continue
			}
			lines[prefix+k] = no
		}
	}
	return lines
}

// lineKey returns the indexed path of the key at row that go-toml calls
// key (without indices), or key joined if no line matches.
func lineKey(lines map[string]int, row int, key toml.Key) string {
	want := strings.Join(key, ".")
	for p, l := range lines {
		if l == row && stripIndices(p) == want {
			return p
		}
	}
	return want
}

func stripIndices(p string) string {
	var b strings.Builder
	skip := false
	for _, r := range p {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// line returns the line of key, or of the nearest table holding it.
func (c *Config) line(key string) int {
	for k := key; k != ""; {
		if l, ok := c.lines[k]; ok {
			return l
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// Error is an invalid configuration: the key (or the flag of run that
// sets it), the value and what would be valid.
type Error struct {
	// File and Line locate the key in a file (Load, Parse); zero without.
	File string
	Line int
	// Key is the key's path, e.g. "services[1].limits.max_conns"; empty
	// for a file that is not TOML.
	Key string
	// Flag is run's flag for the key ("--max-conns"), when the Config
	// came from flags; empty for a file.
	Flag string
	// Value is the value given, as written.
	Value string
	// Want says what would be valid.
	Want string

	unknown bool
}

func (e *Error) Error() string {
	if e.Flag != "" {
		if strings.HasPrefix(e.Want, "--") { // names its flags itself
			return e.Want
		}
		if e.Value != "" {
			return fmt.Sprintf("%s %s: %s", e.Flag, e.Value, e.Want)
		}
		return fmt.Sprintf("%s: %s", e.Flag, e.Want)
	}
	var b strings.Builder
	b.WriteString("config: ")
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	switch {
	case e.unknown:
		fmt.Fprintf(&b, "unknown key %s: want %s", e.Key, e.Want)
	case e.Key == "":
		b.WriteString(e.Want)
	case e.Value != "":
		fmt.Fprintf(&b, "%s = %s: %s", e.Key, e.Value, e.Want)
	default:
		fmt.Fprintf(&b, "%s: %s", e.Key, e.Want)
	}
	return b.String()
}
