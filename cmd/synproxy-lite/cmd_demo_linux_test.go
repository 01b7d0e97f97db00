package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

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
	res, err := demo(ctx, &demoOptions{duration: secs * time.Second, floodRate: rate, workers: 2}, &out)
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo: %v\ndaemon output:\n%s", err, res.daemonLog)
	}
	if res.clientOK == 0 || res.clientFail != 0 {
		t.Errorf("client: %d pages, %d failures (first: %s)", res.clientOK, res.clientFail, res.firstFailure)
	}
	// The flood starts after one second and runs for the rest.
	if res.floodSent < rate*(secs-1)/2 {
		t.Errorf("only %d flood SYNs sent", res.floodSent)
	}
	// Every SYN the daemon saw was answered: the flood's and the client's.
	if res.synackOut < res.floodSent || res.synIn < res.floodSent {
		t.Errorf("flood %d SYNs, daemon saw %d and sent %d SYN-ACKs", res.floodSent, res.synIn, res.synackOut)
	}
	if res.handedOver < res.clientOK || res.ackValid != res.handedOver || res.handoffFailed != 0 {
		t.Errorf("handed over %d, valid ACKs %d, failed handoffs %d, client pages %d",
			res.handedOver, res.ackValid, res.handoffFailed, res.clientOK)
	}
	if res.rows < secs {
		t.Errorf("%d table rows, want at least %d", res.rows, secs)
	}
	for _, want := range []string{"SYNs-in", "SYN-ACKs", "client-ok", "p99", "pages fetched"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The lab is gone.
	if ents, _ := os.ReadDir(nslabDir); len(ents) > 0 {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "spld-") && strings.Contains(e.Name(), demoLabID(out.String())) {
				t.Errorf("namespace %s left behind", e.Name())
			}
		}
	}
}

const nslabDir = "/run/netns"

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
