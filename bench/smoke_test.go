//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSmoke runs the bench in a short form (a small flood, a small bulk
// transfer, the kernel's, the ceiling's and the nfqueue passes) and checks
// what it writes: the rows, their ratios to the ceiling and the kernel, the
// bulk table, the plot, and the known client's table of a pass with proven
// clients first. No figure is asserted: they depend on the
// machine.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon and floods a lab: not with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, nftables, XDP)")
	}
	for _, tool := range []string{"ip", "nft", "trafgen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (trafgen: Debian package netsniff-ng)", tool)
		}
	}
	out := t.TempDir()
	cmd := exec.Command("go", "run", ".", "-out", out, "-n", "5000", "-bulk", "2000000", "-modes", "ceiling,nfqueue", "-known", "nfqueue-proven")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bench: %v\n%s", err, b)
	}
	md, err := os.ReadFile(filepath.Join(out, "bench.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| kernel |", "| ceiling (XDP_TX, ", "| nfqueue |", "vs ceiling", "## Bulk", "daemon CPU s per GB"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("bench.md lacks %q:\n%s", want, md)
		}
	}
	known, err := os.ReadFile(filepath.Join(out, "bench-known.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(known), "| nfqueue, proven clients first |") {
		t.Errorf("bench-known.md lacks the proven clients' row:\n%s", known)
	}
	if fi, err := os.Stat(filepath.Join(out, "img", "bench.png")); err != nil || fi.Size() == 0 {
		t.Errorf("no plot: %v", err)
	}
}
