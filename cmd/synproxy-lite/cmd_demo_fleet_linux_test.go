package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/internal/demo"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

// TestDemoFleet runs "demo --fleet" for a few seconds: every node serves
// pages before node 3 is killed, the router withdraws it, and no page
// comes from it after the withdrawal.
func TestDemoFleet(t *testing.T) {
	netlabtest.Need(t)
	bird := needBird(t)
	daemon := func(ctx context.Context, args []string) (*exec.Cmd, error) {
		if len(args) == 0 || args[0] != "run" {
			t.Fatalf("demo runs %q, want the run subcommand", args)
		}
		cmd := exec.CommandContext(ctx, os.Args[0])
		cmd.Env = append(os.Environ(), daemonEnv+"="+strings.Join(args[1:], " "))
		return cmd, nil
	}
	var out syncBuf
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := demo.RunFleet(ctx, &demo.FleetOptions{Duration: 6 * time.Second, Bird: bird, Daemon: daemon}, &out)
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo --fleet: %v\nnode logs: %q", err, res.DaemonLogs)
	}
	for i, n := range res.PagesBefore {
		if n == 0 {
			t.Errorf("node %d served no page before the kill", i+1)
		}
	}
	if res.Withdrawn == 0 || strings.Join(res.RouteAfter, " ") != "n1 n2" {
		t.Errorf("route after the kill %v (withdrawn after %v), want n1 n2", res.RouteAfter, res.Withdrawn)
	}
	if res.PagesAfterWithdrawal[2] != 0 || res.PagesAfterWithdrawal[0]+res.PagesAfterWithdrawal[1] == 0 {
		t.Errorf("pages after the withdrawal by node: %v", res.PagesAfterWithdrawal)
	}
	for _, want := range []string{"route", "node 3 killed", "withdrew node 3's route", "pages by node"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
