package main

import (
	"log/slog"
	"os"

	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
	"github.com/synproxy-lite/synproxy-lite/internal/config"
)

// chosenDriverEnv carries the driver that --driver auto chose to the new
// process of a graceful restart: while the old process still holds the
// interface, the new one's probe would find its XDP program attached and
// choose another driver, and the two would not agree on the rules.
const chosenDriverEnv = "SYNPROXY_LITE_CHOSEN_DRIVER"

// chooseDrivers replaces every service's driver auto in c with a driver:
// with probe, as proxy.ChooseDriver finds on the host (it attaches the XDP
// program to the interface and detaches it at once); without, from the
// settings alone (check and --dry-run touch nothing), naming the first
// driver auto would try. A service limited to some addresses gets nfqueue,
// the one driver that can tell addresses apart; one with proven clients
// the chosen driver if it serves them (every driver of the table does
// today), else nfqueue.
func chooseDrivers(c *config.Config, log *slog.Logger, probe bool) {
	inherited := os.Getenv(chosenDriverEnv)
	for i := range c.Services {
		s := &c.Services[i]
		if s.Driver != proxy.AutoDriver {
			continue
		}
		var ch proxy.Choice
		switch {
		case len(s.Addresses) > 0:
			ch = proxy.Choice{Name: "nfqueue", Reason: "addresses: only nfqueue limits a port to some local addresses"}
		case s.FailOpen:
			ch = proxy.Choice{Name: "nfqueue", Reason: "fail-open: only nfqueue lets packets bypass a daemon that is gone"}
		case inherited != "" && len(c.Services) == 1 && (!probe || os.Getenv("SYNPROXY_LITE_INHERIT") != ""):
			ch = proxy.Choice{Name: inherited, Reason: "graceful restart: the driver the previous process chose"}
		case probe:
			ch = proxy.ChooseDriver(s.Interface, s.FailOpen)
		case s.Interface == "":
			ch = proxy.Choice{Name: "nfqueue", Reason: "no interface given: afxdp and afpacket need one"}
		default:
			then := ", else afpacket, else nfqueue"
			if d, _ := proxy.LookupDriver("afpacket"); s.Policy.ProvenClients.Enabled && !d.Proven {
				then = ", else nfqueue (proven clients)"
			}
			ch = proxy.Choice{Name: "afxdp", Reason: "decided at the start: afxdp if its XDP program attaches to " +
				s.Interface + then + " (the ruleset shown is afxdp's)"}
		}
		if d, ok := proxy.LookupDriver(ch.Name); ok && s.Policy.ProvenClients.Enabled && !d.Proven {
			ch = proxy.Choice{Name: "nfqueue", Reason: "proven clients: " + ch.Name + " has no ring of their own (" +
				ch.Reason + "); nfqueue gives them a queue of their own"}
		}
		log.Info("driver chosen", "service", s.Name, "driver", ch.Name, "why", ch.Reason)
		s.Driver = ch.Name
		if probe && len(c.Services) == 1 {
			os.Setenv(chosenDriverEnv, ch.Name)
		}
	}
}
