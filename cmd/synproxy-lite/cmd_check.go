package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/proxy"
	"github.com/synproxy-lite/synproxy-lite/internal/config"
)

func init() {
	register("check", "validate a configuration file and print the nft ruleset it installs", runCheck)
}

const checkUsage = `usage: synproxy-lite check --config FILE

Validates everything "run --config FILE" would use, without changing the
host (like nft -c or haproxy -c): every key and value, the services apart
(ports, queues, tables), the key or fleet secret file (its mode and owner;
a systemd credential only where $CREDENTIALS_DIRECTORY is set), the
backends' names, the afpacket driver's interface, and the nft ruleset,
which it prints. Exit status 0: the
configuration is valid; 1: it is not (the error names the key and its
line); 2: bad flags.

flags:
`

func runCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", checkUsage, stdout)
	file := fs.String("config", "", "configuration `file` to check (required)")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "synproxy-lite check: %v\n", err)
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "synproxy-lite check: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	case *file == "":
		fmt.Fprintln(stderr, "synproxy-lite check: --config: required: the file to check")
		return exitUsage
	}
	text, summary, err := check(*file, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite check: %v\n", err)
		return exitFailure
	}
	fmt.Fprint(stdout, text)
	fmt.Fprintf(stderr, "%s: valid: %s\n", *file, summary)
	return exitOK
}

// check loads and validates the file, reads its secrets and renders the
// rulesets of its servers.
func check(file string, notes io.Writer) (rules, summary string, err error) {
	c, err := config.Load(file)
	if err != nil {
		return "", "", err
	}
	if os.Getenv(config.CredentialsDirEnv) == "" {
		s := &c.Secret
		for _, cred := range []*string{&s.KeyCredential, &s.FleetSecretCredential} {
			if *cred != "" {
				fmt.Fprintf(notes, "%s: credential %q not checked: $%s is not set here (systemd sets it for LoadCredential=)\n",
					file, *cred, config.CredentialsDirEnv)
				*cred = ""
			}
		}
	}
	for i, s := range c.Services {
		if d, _ := proxy.LookupDriver(s.Driver); d.NeedsInterface || s.Interface != "" {
			if _, err := net.InterfaceByName(s.Interface); err != nil {
				return "", "", fmt.Errorf("config: %s: services[%d].interface = %q: no such interface on this host", file, i, s.Interface)
			}
		}
	}
	chooseDrivers(c, slog.New(slog.DiscardHandler), false)
	srvs, err := servers(c, slog.New(slog.DiscardHandler), true)
	if err != nil {
		return "", "", err
	}
	if rules, err = rulesets(srvs); err != nil {
		return "", "", err
	}
	seen := map[string]bool{}
	for _, sv := range srvs {
		if !seen[sv.name] {
			seen[sv.name] = true
			fmt.Fprintf(notes, "%s: service %s: %s\n", file, sv.name, policySummary(sv.cfg))
		}
	}
	fmt.Fprintf(notes, "%s: %s\n", file, c.BGP.Summary())
	ports := 0
	for _, s := range c.Services {
		ports += len(s.Ports)
	}
	return rules, fmt.Sprintf("%d service(s), %d port(s)", len(c.Services), ports), nil
}

// policySummary says in one line what the engine of a server does beyond
// the nft rules: its mode, per-source SYN limit, reflection budget, lists
// and proven clients.
func policySummary(c *proxy.ServerConfig) string {
	p := c.Policy
	if p == nil {
		p = &engine.Policy{}
	}
	var b strings.Builder
	b.WriteString("mode " + p.Mode.String())
	if p.Mode == engine.ModeOnDemand {
		release, hold := p.ReleaseRate, p.Hold
		if release == 0 {
			release = p.EngageRate / 2
		}
		if hold == 0 {
			hold = engine.DefaultHold
		}
		fmt.Fprintf(&b, " (cookies from %d SYN/s to the port, off below %d SYN/s for %s)", p.EngageRate, release, hold)
	}
	prefixes := fmt.Sprintf("per /%d and /%d source", cmp.Or(p.Prefix4, 32), cmp.Or(p.Prefix6, 64))
	if p.SYNRate > 0 {
		fmt.Fprintf(&b, "; SYN limit %d/s burst %d %s", p.SYNRate, cmp.Or(p.SYNBurst, p.SYNRate), prefixes)
	} else {
		b.WriteString("; no SYN limit")
	}
	if p.ReflectRate > 0 {
		fmt.Fprintf(&b, "; reflection budget %d SYN-ACK/s burst %d %s", p.ReflectRate, cmp.Or(p.ReflectBurst, p.ReflectRate), prefixes)
	} else {
		b.WriteString("; no reflection budget")
	}
	if l := c.Lists; l != nil {
		fmt.Fprintf(&b, "; allow %d, deny %d prefixes", len(l.Allow), len(l.Deny))
	} else {
		b.WriteString("; no allow or deny lists")
	}
	if pc := c.ProvenClients; pc != nil {
		fmt.Fprintf(&b, "; proven clients first (%d sources a family, for %s)", pc.Size, pc.Timeout)
	}
	return b.String()
}
