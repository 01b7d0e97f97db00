package fuzz

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synproxy-lite/synproxy-lite/fuzz/internal/harness"
)

// Kernels the live harness boots: the two Debian offers (6.1 and 6.12).
var liveKernels = []string{"linux-image-amd64", "linux-image-6.12-amd64"}

// TestKernelParityQemu boots each Debian kernel under qemu and requires at
// least SPL_PARITY_SAMPLES (default 100,000) fresh SYN-ACKs across IPv4 and
// IPv6, every one bit-exact with package cookie, samples on both sides of a
// time-slot boundary, and every ACK-probe verdict equal to cookie.Key.Check
// (the kernel accepting and connecting every cookie package cookie minted).
func TestKernelParityQemu(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: live kernel parity harness (qemu) skipped in -short mode")
	}
	if err := harness.Available(); err != nil {
		t.Skipf("SKIP: LIVE KERNEL PARITY HARNESS NOT RUN: %v (only the committed corpora were replayed)", err)
	}
	samples := 100000
	if v := os.Getenv("SPL_PARITY_SAMPLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("SPL_PARITY_SAMPLES=%q: %v", v, err)
		}
		samples = n
	}
	for _, pkg := range liveKernels {
		t.Run(pkg, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
			defer cancel()
			rep, err := harness.Check(ctx, harness.Options{
				Package: pkg, Samples: samples, WorkDir: t.TempDir(),
				Log: func(f string, a ...any) { t.Logf(f, a...) },
			})
			if rep != nil {
				var b strings.Builder
				rep.Print(&b)
				t.Log("\n" + b.String())
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := rep.V4.Matches + rep.V6.Matches; got < samples*99/100 {
				t.Errorf("%d bit-exact samples, want at least %d", got, samples*99/100)
			}
			if rep.Summary.Unanswered != 0 {
				t.Errorf("%d SYNs unanswered", rep.Summary.Unanswered)
			}
			for name, fc := range map[string]*harness.FamilyCounts{"IPv4": &rep.V4, "IPv6": &rep.V6} {
				if fc.Samples < samples/3 {
					t.Errorf("%s: only %d samples", name, fc.Samples)
				}
				if len(fc.Slots) < 2 {
					t.Errorf("%s: samples from %d time slot(s); the run must cross a slot boundary", name, len(fc.Slots))
				}
			}
			// Both kernels answer IPv6 SYNs that carry a complete checksum and
			// SYNs marked for checksum offload (docs/parity.md). If a kernel
			// changes its mind, this fails.
			for _, k := range []string{"ipv4_full", "ipv4_vnet", "ipv6_full", "ipv6_vnet"} {
				if n := rep.Summary.Notes[k]; !strings.HasPrefix(n, "answered") {
					t.Errorf("probe %s: %s", k, n)
				}
			}
			if a := rep.Acks["valid"]; a == nil || a.Accepted != a.Probes || a.Connected != a.Probes {
				t.Errorf("minted cookies: %+v", a)
			}
		})
	}
}
