package harness

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/fuzz/parity"
)

// FamilyCounts are per-family sample figures.
type FamilyCounts struct {
	Samples, Matches, Mismatches int
	Ambiguous                    int // exchanges that straddled a slot boundary
	Slots                        map[uint32]int
	Partial, Full                int // TCP checksum forms seen
}

// AckCounts are ACK-probe figures per kind.
type AckCounts struct {
	Probes, Agree, Disagree, Accepted, Rejected, Connected int
}

// Report is the verified outcome of a run.
type Report struct {
	Run      *Run
	Env      *parity.Env
	V4, V6   FamilyCounts
	Acks     map[string]*AckCounts
	Failures []string // first mismatches, with inputs
	Summary  *parity.Summary
}

// OK reports whether every sample and ACK probe agreed.
func (r *Report) OK() bool {
	if r.V4.Mismatches+r.V6.Mismatches > 0 {
		return false
	}
	for _, a := range r.Acks {
		if a.Disagree > 0 {
			return false
		}
	}
	return true
}

// Check boots one kernel and verifies everything it answered.
func Check(ctx context.Context, o Options) (*Report, error) {
	run, err := Boot(ctx, o)
	if err != nil {
		return nil, err
	}
	rep, err := Verify(run.Stream)
	if rep != nil {
		rep.Run = run
	}
	if err != nil {
		return rep, err
	}
	if !rep.OK() {
		return rep, fmt.Errorf("harness: %s: mismatches: %s", run.Kernel.Package, strings.Join(rep.Failures, "\n"))
	}
	return rep, nil
}

// Verify checks a stream (live or a corpus).
func Verify(st *parity.Stream) (*Report, error) {
	env, err := st.Header.Env()
	if err != nil {
		return nil, err
	}
	rep := &Report{Env: env, Acks: map[string]*AckCounts{}, Summary: st.Summary}
	rep.V4.Slots, rep.V6.Slots = map[uint32]int{}, map[uint32]int{}
	for i := range st.Samples {
		res := parity.Verify(&st.Samples[i], env)
		fc := &rep.V4
		if res.V6 {
			fc = &rep.V6
		}
		fc.Samples++
		if !res.OK {
			fc.Mismatches++
			if len(rep.Failures) < 20 {
				rep.Failures = append(rep.Failures, res.String())
			}
			continue
		}
		fc.Matches++
		fc.Slots[res.Count]++
		if res.Ambiguous {
			fc.Ambiguous++
		}
		switch res.Checksum {
		case parity.ChecksumPartial:
			fc.Partial++
		case parity.ChecksumFull:
			fc.Full++
		}
	}
	for _, a := range st.Acks {
		c := rep.Acks[a.Kind]
		if c == nil {
			c = &AckCounts{}
			rep.Acks[a.Kind] = c
		}
		c.Probes++
		if a.Accepted {
			c.Accepted++
		}
		if a.Rejected {
			c.Rejected++
		}
		if a.Connected {
			c.Connected++
		}
		if msg := checkAck(&a, env); msg != "" {
			c.Disagree++
			if len(rep.Failures) < 40 {
				rep.Failures = append(rep.Failures, msg)
			}
		} else {
			c.Agree++
		}
	}
	return rep, nil
}

// checkAck compares the kernel's verdict on a probe with cookie.Check at the
// slot(s) the kernel may have used.
func checkAck(a *parity.AckProbe, env *parity.Env) string {
	cl, err1 := netip.ParseAddrPort(a.Client)
	sv, err2 := netip.ParseAddrPort(a.Server)
	if err1 != nil || err2 != nil {
		return fmt.Sprintf("probe %+v: bad address", a)
	}
	t := cookie.Tuple{Client: cl, Server: sv}
	key := &env.Key4
	if cl.Addr().Is6() {
		key = &env.Key6
	}
	c0, c1 := cookie.KernelSlot(a.JiffiesBefore, env.HZ), cookie.KernelSlot(a.JiffiesAfter, env.HZ)
	if a.Accepted == a.Rejected {
		return fmt.Sprintf("probe %s %v: kernel counted accepted=%v rejected=%v", a.Kind, t, a.Accepted, a.Rejected)
	}
	for c := c0; ; c++ {
		v, err := key.Check(t, a.SSeq, a.Cookie, c)
		if err != nil {
			return fmt.Sprintf("probe %s %v: %v", a.Kind, t, err)
		}
		if v.Valid == a.Accepted && (!v.Valid || a.Connected) {
			if v.Valid && a.ServerMSS != 0 && a.ServerMSS > int(v.MSS) {
				return fmt.Sprintf("probe %s %v: server MSS %d above decoded %d", a.Kind, t, a.ServerMSS, v.MSS)
			}
			return ""
		}
		if c == c1 {
			return fmt.Sprintf("probe %s %v sseq %d cookie %08x minted for slot %d: kernel accepted=%v connected=%v, cookie.Check at slot %d: %+v",
				a.Kind, t, a.SSeq, a.Cookie, a.Count, a.Accepted, a.Connected, c, v)
		}
	}
}

// Print writes a human summary.
func (r *Report) Print(w io.Writer) {
	h := &r.Run.Stream.Header
	fmt.Fprintf(w, "kernel %s (%s %s), HZ %d, qemu run %.1fs\n", h.Kernel, h.Package, h.Version, h.HZ, r.Run.BootTime.Seconds())
	for _, f := range []struct {
		name string
		c    *FamilyCounts
	}{{"IPv4", &r.V4}, {"IPv6", &r.V6}} {
		slots := make([]string, 0, len(f.c.Slots))
		for s, n := range f.c.Slots {
			slots = append(slots, fmt.Sprintf("%d:%d", s, n))
		}
		sort.Strings(slots)
		fmt.Fprintf(w, "  %s: %d samples, %d bit-exact, %d mismatches; slots %s; %d straddled a boundary; tcp checksum partial %d full %d\n",
			f.name, f.c.Samples, f.c.Matches, f.c.Mismatches, strings.Join(slots, " "), f.c.Ambiguous, f.c.Partial, f.c.Full)
	}
	kinds := make([]string, 0, len(r.Acks))
	for k := range r.Acks {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		a := r.Acks[k]
		fmt.Fprintf(w, "  ACK %-8s %4d probes: kernel accepted %d rejected %d, connections %d; agrees with cookie.Check %d, disagrees %d\n",
			k, a.Probes, a.Accepted, a.Rejected, a.Connected, a.Agree, a.Disagree)
	}
	if r.Summary != nil {
		fmt.Fprintf(w, "  guest: sent %d, answered %d, unanswered %d, %.1fs; notes %v\n",
			r.Summary.Sent, r.Summary.Answered, r.Summary.Unanswered, r.Summary.Seconds, r.Summary.Notes)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  MISMATCH %s\n", f)
	}
}

// WriteCorpus writes the header, up to keep samples (both families, both
// slots), every ACK probe and the summary as a gzipped stream named after
// the kernel version, and returns its path.
func (r *Report) WriteCorpus(dir string, keep int) (string, error) {
	st := r.Run.Stream
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := strings.NewReplacer("~", "_", "+", "_", "/", "_").Replace(st.Header.Version)
	path := filepath.Join(dir, "linux-"+name+".stream.gz")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	w := parity.NewWriter(zw)
	if err := w.Header(&st.Header); err != nil {
		return "", err
	}
	// Every step-th sample of each family, so both families and both
	// slots are kept.
	var per [2]int
	for i := range st.Samples {
		if st.Samples[i].SYN[0]>>4 == 6 {
			per[1]++
		} else {
			per[0]++
		}
	}
	var seen [2]int
	for i := range st.Samples {
		f := 0
		if st.Samples[i].SYN[0]>>4 == 6 {
			f = 1
		}
		step := 1
		if keep > 0 && per[f] > keep/2 {
			step = (per[f] + keep/2 - 1) / (keep / 2)
		}
		seen[f]++
		if (seen[f]-1)%step != 0 {
			continue
		}
		if err := w.Sample(&st.Samples[i]); err != nil {
			return "", err
		}
	}
	for i := range st.Acks {
		if err := w.Ack(&st.Acks[i]); err != nil {
			return "", err
		}
	}
	if st.Summary != nil {
		if err := w.Summary(st.Summary); err != nil {
			return "", err
		}
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return path, f.Close()
}
