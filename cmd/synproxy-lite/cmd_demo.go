package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/synproxy-lite/synproxy-lite/internal/demo"
)

func init() {
	register("demo", "a self-contained lab: SYN flood against the proxy while a client keeps fetching pages", runDemo)
}

const demoUsage = `usage: synproxy-lite demo [flags]

Builds a lab of four network namespaces (client, attacker, proxy, backend),
runs "synproxy-lite run" in the proxy namespace in front of a small HTTP
server in the backend namespace, floods the proxy with spoofed SYNs from
the attacker while the client keeps fetching pages, and prints a table of
the daemon's counters and the client's results once a second. Everything
is removed at the end, also on Ctrl-C. Needs root; needs no other program.

flags:
`

// demoDaemonCommand returns the command that runs the daemon ("run" and
// its flags): this binary. Tests replace it: their binary is not
// synproxy-lite.
var demoDaemonCommand = func(ctx context.Context, args []string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, exe, args...), nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o := &demo.Options{Daemon: demoDaemonCommand}
	fs := newFlagSet("demo", demoUsage, stdout)
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "how long the demo runs (at least 1s)")
	fs.IntVar(&o.FloodRate, "flood-rate", 5000, "spoofed SYNs per second from the attacker (0-1000000)")
	fs.IntVar(&o.FloodCount, "flood-count", 0, "stop the flood after this many SYNs (0: rate × duration)")
	fs.IntVar(&o.Workers, "workers", 2, "the daemon's --workers (1-64)")
	fleet := fs.Bool("fleet", false, "instead: three nodes behind BIRD over eBGP, which node answered what, node 3 killed halfway (needs bird2)")
	err := parseFlags(fs, args)
	if err == nil {
		err = checkDemoFlags(fs, o)
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite demo: %v\n", err)
		return exitUsage
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "synproxy-lite demo: needs root (it creates network namespaces, nft rules and netfilter queues)")
		return exitFailure
	}
	if *fleet {
		return runDemoFleet(ctx, o.Duration, stdout, stderr)
	}
	res, err := demo.Run(ctx, o, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite demo: %v\n", err)
		if res != nil && res.DaemonLog != "" {
			fmt.Fprintf(stderr, "daemon output:\n%s", res.DaemonLog)
		}
		return exitFailure
	}
	if res.ClientFail > 0 {
		return exitFailure
	}
	return exitOK
}

// checkDemoFlags says which flag of demo is out of range, and what range.
func checkDemoFlags(fs *flag.FlagSet, o *demo.Options) error {
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q (demo takes flags only)", fs.Arg(0))
	case o.Duration < time.Second:
		return errFlag("duration", "%v is too short (at least 1s)", o.Duration)
	case o.FloodRate < 0 || o.FloodRate > 1_000_000:
		return errFlag("flood-rate", "%d is not 0-1000000 SYNs a second", o.FloodRate)
	case o.FloodCount < 0:
		return errFlag("flood-count", "%d is negative (0: rate × duration)", o.FloodCount)
	case o.Workers < 1 || o.Workers > 64:
		return errFlag("workers", "%d is not 1-64", o.Workers)
	}
	return nil
}

// runDemoFleet is "demo --fleet".
func runDemoFleet(ctx context.Context, d time.Duration, stdout, stderr io.Writer) int {
	bird, err := exec.LookPath("bird")
	if err != nil {
		fmt.Fprintln(stderr, "synproxy-lite demo --fleet: needs BIRD 2 (Debian: apt install bird2) as the router")
		return exitFailure
	}
	res, err := demo.RunFleet(ctx, &demo.FleetOptions{Duration: d, Bird: bird, Daemon: demoDaemonCommand}, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite demo --fleet: %v\n", err)
		for i, l := range res.DaemonLogs {
			if l != "" {
				fmt.Fprintf(stderr, "node %d output:\n%s", i+1, l)
			}
		}
		return exitFailure
	}
	return exitOK
}
