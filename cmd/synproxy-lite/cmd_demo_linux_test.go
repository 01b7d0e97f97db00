package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/internal/demo"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

// TestDemo runs the demo for a few seconds: the lab, the daemon (this test
// binary re-executed as "run", see TestMain), the flood and the client.
func TestDemo(t *testing.T) {
	netlabtest.Need(t)
	orig := demoDaemonCommand
	t.Cleanup(func() { demoDaemonCommand = orig })
	demoDaemonCommand = func(ctx context.Context, args []string) (*exec.Cmd, error) {
		if len(args) == 0 || args[0] != "run" {
			t.Fatalf("demo runs %q, want the run subcommand", args)
		}
		cmd := exec.CommandContext(ctx, os.Args[0])
		cmd.Env = append(os.Environ(), daemonEnv+"="+strings.Join(args[1:], " "))
		return cmd, nil
	}
	var out syncBuf
	const rate, secs = 2000, 4
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := demo.Run(ctx, &demo.Options{Duration: secs * time.Second, FloodRate: rate, Workers: 2, Daemon: demoDaemonCommand}, &out)
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo: %v\ndaemon output:\n%s", err, res.DaemonLog)
	}
	if res.ClientOK == 0 || res.ClientFail != 0 {
		t.Errorf("client: %d pages, %d failures (first: %s)", res.ClientOK, res.ClientFail, res.FirstFailure)
	}
	// The flood starts after one second and runs for the rest.
	if res.FloodSent < rate*(secs-1)/2 {
		t.Errorf("only %d flood SYNs sent", res.FloodSent)
	}
	// Every SYN the daemon saw was answered: the flood's and the client's.
	if res.SYNACKOut < res.FloodSent || res.SYNIn < res.FloodSent {
		t.Errorf("flood %d SYNs, daemon saw %d and sent %d SYN-ACKs", res.FloodSent, res.SYNIn, res.SYNACKOut)
	}
	if res.HandedOver < res.ClientOK || res.ACKValid != res.HandedOver || res.HandoffFailed != 0 {
		t.Errorf("handed over %d, valid ACKs %d, failed handoffs %d, client pages %d",
			res.HandedOver, res.ACKValid, res.HandoffFailed, res.ClientOK)
	}
	if res.Rows < secs {
		t.Errorf("%d table rows, want at least %d", res.Rows, secs)
	}
	for _, want := range []string{"SYNs-in", "SYN-ACKs", "client-ok", "p99", "pages fetched"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The lab is gone.
	if ents, _ := os.ReadDir(netlab.NetnsDir); len(ents) > 0 {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), demo.Prefix+"-") && strings.Contains(e.Name(), demoLabID(out.String())) {
				t.Errorf("namespace %s left behind", e.Name())
			}
		}
	}
}

// demoLabID is the lab id the demo printed ("lab spld-...: ...").
func demoLabID(out string) string {
	i := strings.Index(out, "lab ")
	if i < 0 {
		return "\x00"
	}
	f := strings.Fields(out[i+4:])
	if len(f) == 0 {
		return "\x00"
	}
	return strings.TrimSuffix(f[0], ":")
}
