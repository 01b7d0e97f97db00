//go:build linux

package main

import (
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The known client: a client that connected once before a saturating flood
// (the warm-up request of each pass) keeps connecting during it. With
// proven clients first (--proven-clients) the daemon serves its source
// before the flood's; the kernel's synproxy and a daemon without the option
// serve it with the flood. The flood comes from the 256 addresses of
// 10.99.41.0/24, so that it fills every queue and ring the responder hashes
// sources over (a flood from one address fills one queue of several and
// leaves the client's alone when its hash differs).

// knownPass is a known-client pass by its name in -known.
var knownPass = map[string]pass{
	"kernel":          {mode: "kernel", name: "kernel", spread: true},
	"nfqueue":         {mode: "nfqueue", name: "nfqueue", spread: true},
	"nfqueue-proven":  {mode: "nfqueue", name: "nfqueue, proven clients first", args: []string{"--proven-clients"}, spread: true},
	"afpacket":        {mode: "afpacket", name: "afpacket", spread: true},
	"afpacket-proven": {mode: "afpacket", name: "afpacket, proven clients first", args: []string{"--proven-clients"}, spread: true},
	"afxdp":           {mode: "afxdp", name: "afxdp", spread: true},
	"afxdp-proven":    {mode: "afxdp", name: "afxdp, proven clients first", args: []string{"--proven-clients"}, spread: true},
}

// spreadFlood is trafgen's configuration of a flood of SYNs to the proxy's
// port from a random address of 10.99.41.0/24 each (trafgen recomputes the
// checksums of a header's dynamic fields).
func spreadFlood(mac net.HardwareAddr) string {
	const lo = 10<<24 | 99<<16 | 41<<8
	return fmt.Sprintf("{ eth(da=%s), ipv4(saddr=10.99.41.0, saddr=drnd(%d, %d), daddr=%s, ttl=64), tcp(sp=drnd(), dp=8080, seq=drnd(), syn, window=1024), }\n",
		mac, lo, lo+255, prxIP)
}

// knownPasses runs the known-client passes runs times each and writes
// bench-known.md. A pass that cannot run (a driver the binary or the
// machine lacks) is logged and left out.
func knownPasses(bin, out string, names []string, n, runs int) {
	var results [][]row
	for _, name := range names {
		p, ok := knownPass[name]
		if !ok {
			log.Fatalf("bench: -known: no pass %q (have kernel, nfqueue, nfqueue-proven, afpacket, afpacket-proven, afxdp, afxdp-proven)", name)
		}
		if (p.mode == "afxdp") && !supports(bin, "afxdp") {
			log.Printf("bench: known client: %s: the daemon has no afxdp driver; left out", p.name)
			continue
		}
		var rs []row
		for run := 1; run <= runs; run++ {
			r, err := measure(p, bin, n, 0)
			if err != nil {
				log.Printf("bench: known client: %s: %v; left out", p.name, err)
				rs = nil
				break
			}
			log.Printf("run %d/%d: known client, %-32s %d/%d requests, p50 %v p99 %v; flood: %d SYN-ACKs of %d SYNs",
				run, runs, r.name, r.legitOK, r.legitN, pct(r.lat, 50), pct(r.lat, 99), r.synacks, r.sent)
			rs = append(rs, r)
		}
		if len(rs) > 0 {
			results = append(results, rs)
		}
	}
	if len(results) == 0 {
		return
	}
	if err := writeKnown(out, results, n, runs); err != nil {
		log.Fatal(err)
	}
}

// pct returns the p-th percentile of sorted durations (0 when empty).
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, len(d)*p/100)]
}

// knownTarget is what proven clients first promises the known client
// during a saturating flood.
const (
	knownOK  = 0.99
	knownP99 = 100 * time.Millisecond
)

func writeKnown(dir string, results [][]row, n, runs int) error {
	commit, _ := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	var u unix.Utsname
	unix.Uname(&u)
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmark results: a known client under a saturating flood\n\n"+
		"Written by `make bench` (cd bench && go run .) at commit `%s`, %s, on %d CPUs, Linux %s.\n\n",
		strings.TrimSpace(string(commit)), time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), unix.ByteSliceToString(u.Release[:]))
	fmt.Fprintf(&b, "Each pass answers a flood of %d SYNs from trafgen (one process, no rate limit), each from a random address of %s "+
		"(so that the flood fills every queue and ring, whichever the responder hashes a source to). "+
		"Before the flood the known client makes one request through the responder (its source is proven from then on); "+
		"during the flood it makes one request after another, 20 ms apart, each on a new connection (curl-like: HTTP/1.1 GET, no keep-alive, "+
		"3 s to connect, 5 s in all). A request lost to the flood costs the client a SYN retransmission (1 s), so p99 shows "+
		"whether more than 1%% of them lost a packet. Every pass ran %d time(s); the requests of all runs are pooled. "+
		"The daemon's passes answer every SYN (`--reflect-rate 0`, like the kernel's synproxy). "+
		"Target of proven clients first: at least %.0f%% of the requests succeed, p99 under %v.\n\n",
		n, spoofed, runs, knownOK*100, knownP99)
	b.WriteString("| responder | known client's requests | succeeded | p50 | p99 | slowest | flood SYN-ACKs (median) | target met |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, rs := range results {
		var lat []time.Duration
		ok, all := 0, 0
		var synacks []float64
		for _, r := range rs {
			lat = append(lat, r.lat...)
			ok += r.legitOK
			all += r.legitN
			synacks = append(synacks, float64(r.synacks))
		}
		slices.Sort(lat)
		slices.Sort(synacks)
		share := float64(ok) / float64(max(all, 1))
		met := "no"
		if share >= knownOK && pct(lat, 99) < knownP99 {
			met = "yes"
		}
		if !strings.Contains(rs[0].name, "proven") {
			met = "(no promise)"
		}
		slowest := time.Duration(0)
		if len(lat) > 0 {
			slowest = lat[len(lat)-1]
		}
		fmt.Fprintf(&b, "| %s | %d | %d (%.1f%%) | %.1f ms | %.1f ms | %.1f ms | %.0f of %d | %s |\n",
			rs[0].name, all, ok, 100*share, ms(pct(lat, 50)), ms(pct(lat, 99)), ms(slowest), synacks[len(synacks)/2], rs[0].sent, met)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench-known.md"), []byte(b.String()), 0o644)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
