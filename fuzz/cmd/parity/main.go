// Command parity runs the kernel parity harness: it boots Debian kernels
// under qemu, lets their nftables synproxy answer a random stream of SYNs,
// verifies every SYN-ACK against package cookie with the kernel's own secret,
// checks that the kernel accepts cookies minted by package cookie, prints a
// summary and (with -corpus) writes a corpus for the replay tests.
//
//	go run ./fuzz/cmd/parity -samples 100000 -kernels linux-image-amd64,linux-image-6.12-amd64
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/synproxy-lite/synproxy-lite/fuzz/internal/harness"
)

func main() {
	fs := flag.NewFlagSet("parity", flag.ExitOnError)
	samples := fs.Int("samples", 100000, "SYNs per kernel (IPv4 and IPv6 alternate)")
	acks := fs.Int("acks", 100, "ACK probes per family and kind")
	kernels := fs.String("kernels", "linux-image-amd64,linux-image-6.12-amd64", "comma-separated Debian kernel packages")
	corpus := fs.String("corpus", "", "directory to write corpora into (e.g. fuzz/testdata/parity)")
	keep := fs.Int("keep", 3000, "samples kept per corpus")
	seed := fs.Int64("seed", 0, "random seed (0: time)")
	noCross := fs.Bool("nocross", false, "do not wait for a time-slot boundary (quick check)")
	work := fs.String("work", "", "work directory (default: temporary)")
	fs.Parse(os.Args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	failed := false
	for _, pkg := range strings.Split(*kernels, ",") {
		t0 := time.Now()
		rep, err := harness.Check(ctx, harness.Options{
			Package: pkg, Samples: *samples, Acks: *acks, Seed: *seed, WorkDir: *work, NoCross: *noCross,
			Log: func(f string, a ...any) { fmt.Fprintf(os.Stderr, pkg+": "+f+"\n", a...) },
		})
		if rep != nil {
			rep.Print(os.Stdout)
			if *corpus != "" && err == nil {
				path, werr := rep.WriteCorpus(*corpus, *keep)
				if werr != nil {
					fmt.Fprintln(os.Stderr, werr)
					failed = true
				} else {
					fmt.Printf("corpus: %s\n", path)
				}
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: FAIL: %v\n", pkg, err)
			failed = true
		}
		fmt.Printf("%s: %.1fs\n", pkg, time.Since(t0).Seconds())
	}
	if failed {
		os.Exit(1)
	}
}
