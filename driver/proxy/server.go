package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"sync"
	"sync/atomic"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/driver/nft"
	"github.com/synproxy-lite/synproxy-lite/packet"
)

// ServerConfig configures a Server. Port is required; every other field's
// zero value means its default.
type ServerConfig struct {
	// Port is the protected TCP port.
	Port uint16

	// Addrs, when set, limit the protection to these local addresses
	// (IPv4 and IPv6; nft.Config.Addrs): the port on any other address,
	// and on a family none of them is of, is left to the kernel. Empty
	// means every local address. A driver that taps packets (afpacket)
	// sees the port on every address, so it does not take Addrs.
	Addrs []netip.Addr

	// Backend, when valid, makes the Server a proxy: every proven
	// connection is spliced to Backend (handoff.Proxy), and the Server
	// supports graceful restart. When not valid, the Server hands the
	// connections to a Listener (handoff.Listener) for the process to
	// serve itself; proxy.Listen works that way.
	Backend netip.AddrPort

	// Backends are further backends: each connection dials the next of
	// Backend and Backends in turn (round-robin) and, when that dial
	// fails, the one after it (handoff.Proxy.Backends). Fail-open sends
	// the bypassed SYNs to Backend only. They need a Backend.
	Backends []netip.AddrPort

	// ProxyProtocol sends a PROXY protocol v2 header to the Backend first.
	ProxyProtocol bool

	// Limits bound the connections spliced to the Backend: how many may
	// be open (in all and per source prefix), the backend dials in flight
	// and their timeout, the idle timeout and keepalive (see
	// handoff.Limits). A handshake over a limit is refused: no socket,
	// the ACK dropped and counted, the client's retransmission tries
	// again. Nil means handoff.Limits' defaults (open connections bounded
	// by the descriptor limit). Without a Backend they do not apply.
	Limits *handoff.Limits

	// Addr is the address the Listener reports as its own (no Backend).
	// The zero Addr means the unspecified IPv6 address. The rules protect
	// Port on every local address whatever Addr says.
	Addr netip.Addr

	// Backlog is how many proven connections wait for the Listener's
	// Accept (no Backend); a handshake that finds it full is lost (the
	// client's retransmission tries again). Zero means 128.
	Backlog int

	// Driver names the packet I/O driver (see Drivers). Empty means
	// "nfqueue".
	Driver string

	// Interface is the interface the clients' packets arrive on, for a
	// driver that receives on one interface (afpacket).
	Interface string

	// Workers is the number of queues and engine workers. Zero means 1.
	Workers int

	// Queue is the first netfilter queue number (zero is queue 0);
	// Workers queues from it are used.
	Queue uint16

	// Table is the name of the nft table (inet family) the Server owns.
	// Empty means nft.DefaultTable. Two Servers in one network namespace
	// need a Table and Queue each.
	Table string

	// FailOpen lets packets bypass the queues while nothing listens on
	// them (the process died, or is overloaded): they then reach the
	// Backend directly (by destination NAT), or whatever the kernel has on
	// the port. Only a driver whose Driver.FailOpen is set supports it.
	FailOpen bool

	// Ring makes and checks the cookies. Nil means a ring with a random
	// key of the Server's own, which a graceful restart passes on, so
	// that handshakes in flight complete in the new process. A Ring made
	// from a key file or a fleet secret is made again by the new process.
	Ring *cookie.Ring

	// Rule is the synproxy rule for IPv4 clients: the MSS advertised,
	// window scaling, timestamps, SACK and the SYN-ACK's TTL, taken as
	// written (HasMSS false sends no MSS option). Nil means Engine's
	// Rule4, or engine.DefaultRule (MSS 1460, window scale 7, timestamps,
	// SACK, TTL 64).
	Rule *packet.Rule

	// Rule6 is the synproxy rule for IPv6 clients. Nil means Engine's
	// Rule6, or engine.DefaultRule (MSS 1440, the rest as for IPv4).
	Rule6 *packet.Rule

	// Engine, if set, supplies the engine's other options (SYN-ACK
	// retries, pending slots). Its Port, Ring, Handoff and Logger are the
	// Server's; Rule and Rule6, when set, replace its rules.
	Engine *engine.Config

	// Lists, when not nil, are the allow and deny lists (CIDRs, IPv4 and
	// IPv6): an allowed source bypasses the proxy to the Backend (by
	// destination NAT) or to what the kernel has on the port, a denied
	// one is dropped before the engine. They live in nft sets of the
	// Server's table, so the kernel applies them; SetLists replaces them
	// in one transaction. Nil installs no sets. See nft.Lists.
	Lists *nft.Lists

	// Policy is the engine's protection policy: per-source SYN limits,
	// the reflection budget, monitor and on-demand modes (see
	// engine.Policy). Monitor and on-demand need a Backend. Nil means
	// protect without limits.
	Policy *engine.Policy

	// ProvenClients, when not nil, serves proven clients first (a
	// queueing driver only): the kernel remembers the sources of the
	// connections handed over (nft.Proven: Size and Timeout; its Queue is
	// the Server's) and queues their packets to a queue and worker of
	// their own, after the Workers queues, which a flood from other
	// sources does not fill.
	ProvenClients *nft.Proven

	// Logger receives start/stop and error summaries. Nil means
	// slog.Default().
	Logger *slog.Logger

	// OnEngine, if set, is called each time an engine starts serving: at
	// start, and again when a graceful restart failed and a new engine
	// took over. It is the place to export the engine's counters (a
	// metrics collector and its listener). The Server calls release when
	// that engine stops, before a graceful restart hands over, so that a
	// listener frees its address for the new process. An error at start
	// stops the Server.
	OnEngine func(e *engine.Engine) (release func(), err error)

	// RestartCommand returns the command a graceful restart starts as the
	// new process. Nil means this program's executable with the same
	// arguments.
	RestartCommand func() (*exec.Cmd, error)

	// RestartCheck, if set, is called by Restart before anything else:
	// it checks the settings the new process will start with (its flags,
	// configuration and secret files, read again now). An error refuses
	// the restart before any process starts or any rule moves: Restart
	// returns it and the Server carries on untouched.
	RestartCheck func() error

	// OnHandOver, if set, is called with the new process's pid once a
	// graceful restart has committed (that process serves from then on),
	// before this Server drains and stops: the place to tell a service
	// manager that its main process changed (sd_notify's MAINPID=).
	OnHandOver func(pid int)
}

// Server runs the SYN proxy on a port of this host: it opens the packet
// I/O driver, runs the engine, installs the nft rules (a stale table of an
// earlier run removed first) and hands each proven connection, a kernel
// socket made with TCP_REPAIR, to a Backend or to a Listener. Close, or
// the end of Run's context, stops everything and removes the rules.
type Server struct {
	cfg  ServerConfig // defaults applied
	drv  Driver
	log  *slog.Logger
	ring *cookie.Ring
	key  *cookie.Key // the Server's own key, passed on by a graceful restart
	ln   *handoff.Listener
	px   *handoff.Proxy

	mu         sync.Mutex
	started    bool
	handedOver bool // a graceful restart moved the connections away
	eng        *engine.Engine
	run        *engineRun
	release    func()
	rules      remover
	in         *inheritance
	watch      tableWatch // the nft table's watch (Linux)
	rs         restartState
	notReady   atomic.Bool // Ready's last answer was no
	pol        policyState

	died      chan error    // an engine that stopped on its own
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
}

// engineRun is one engine's Run.
type engineRun struct {
	stop func()
	done chan struct{}
	err  error
}

// remover is the installed ruleset (*nft.Rules).
type remover interface{ Remove() error }

// NewServer checks cfg and returns a Server that has opened nothing yet:
// Start or Run starts it.
func NewServer(cfg *ServerConfig) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := *cfg
	if c.Driver == "" {
		c.Driver = "nfqueue"
	}
	d, _ := LookupDriver(c.Driver)
	c.Workers = max(c.Workers, 1)
	if c.Backlog == 0 {
		c.Backlog = 128
	}
	if !c.Addr.IsValid() {
		c.Addr = netip.IPv6Unspecified()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return &Server{cfg: c, drv: d, log: c.Logger, ring: c.Ring,
		died: make(chan error, 1), done: make(chan struct{})}, nil
}

// Engine returns the engine serving now (nil before Start), e.g. for its
// counters. A failed graceful restart replaces it; OnEngine follows that.
func (s *Server) Engine() *engine.Engine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eng
}

// Listener returns the Listener whose Accept returns the proven
// connections (nil with a Backend, or before Start).
func (s *Server) Listener() *handoff.Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ln
}

func (c *ServerConfig) validate() error {
	bad := func(format string, a ...any) error {
		return errors.Join(ErrConfig, fmt.Errorf("proxy: "+format, a...))
	}
	switch {
	case c == nil || c.Port == 0:
		return bad("Port is required")
	case c.Workers < 0 || c.Workers > 1024:
		return bad("Workers must be 0-1024")
	case int(c.Queue)+max(c.Workers, 1) > 65536:
		return bad("Queue+Workers exceeds the queue numbers")
	case c.Backlog < 0:
		return bad("Backlog must not be negative")
	case c.ProxyProtocol && !c.Backend.IsValid():
		return bad("ProxyProtocol needs a Backend")
	case len(c.Backends) > 0 && !c.Backend.IsValid():
		return bad("Backends need a Backend")
	}
	name := c.Driver
	if name == "" {
		name = "nfqueue"
	}
	d, ok := LookupDriver(name)
	switch {
	case !ok:
		return bad("unknown Driver %q", name)
	case d.NeedsInterface && c.Interface == "":
		return bad("Driver %s needs an Interface", name)
	case c.FailOpen && !d.FailOpen:
		return bad("Driver %s cannot fail open", name)
	case len(c.Addrs) > 0 && d.Drop:
		return bad("Driver %s sees the port on every address: it takes no Addrs", name)
	}
	if err := c.validateBackend(); err != nil {
		return err
	}
	if err := c.validateRules(); err != nil {
		return err
	}
	return c.validatePolicy()
}
