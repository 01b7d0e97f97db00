package guest

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/fuzz/parity"
)

type tupleKey struct {
	client netip.AddrPort
	sport  uint16
}

type pend struct {
	syn []byte
	v6  bool
}

// stats reads /proc/net/stat/synproxy of the server namespace, summed over
// CPUs: syn_received, cookie_invalid, cookie_valid, cookie_retrans,
// conn_reopened.
func (g *guest) stats() (out [5]uint64, err error) {
	err = g.srv.Do(func() error {
		out, err = readStats()
		return err
	})
	return out, err
}

func readStats() ([5]uint64, error) {
	var out [5]uint64
	f, err := os.Open("/proc/thread-self/net/stat/synproxy")
	if err != nil {
		return out, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 6 {
			continue
		}
		for i := 0; i < 5; i++ {
			v, err := strconv.ParseUint(fl[i+1], 16, 64)
			if err != nil {
				return out, fmt.Errorf("synproxy stat %q: %w", sc.Text(), err)
			}
			out[i] += v
		}
	}
	return out, sc.Err()
}

// exchange sends the SYNs and collects their SYN-ACKs (flow control: one
// batch in flight).
func (g *guest) exchange(syns []parity.SYNSpec, emit func(*parity.Sample)) (answered int, err error) {
	pending := make(map[tupleKey]*pend, len(syns))
	jb, msb := g.jiffies(), monoMs()
	for i := range syns {
		s := &syns[i]
		v6 := s.Src.Addr().Is6()
		p := &pend{syn: parity.BuildSYN(nil, s), v6: v6}
		pending[tupleKey{s.Src, s.Dst.Port()}] = p
		if err := g.send(append([]byte(nil), p.syn...), v6); err != nil {
			return 0, fmt.Errorf("send SYN: %w", err)
		}
	}
	type got struct {
		p  *pend
		sa []byte
	}
	var answers []got
	buf := make([]byte, 2048)
	deadline := time.Now().Add(time.Duration(g.cfg.WaitMs) * time.Millisecond)
	for len(pending) > 0 && time.Now().Before(deadline) {
		n, err := g.rx.Recv(buf, 50*time.Millisecond)
		if err != nil {
			return 0, fmt.Errorf("capture: %w", err)
		}
		if n < 14+40 {
			continue
		}
		seg, err := parity.ParseSegment(buf[14:n])
		if err != nil || seg.Flags&(parity.FlagSYN|parity.FlagACK) != parity.FlagSYN|parity.FlagACK {
			continue
		}
		k := tupleKey{seg.Dst, seg.Src.Port()}
		p := pending[k]
		if p == nil {
			continue
		}
		delete(pending, k)
		answers = append(answers, got{p, append([]byte(nil), buf[14:n]...)})
	}
	ja, msa := g.jiffies(), monoMs()
	for _, a := range answers {
		emit(&parity.Sample{JiffiesBefore: jb, JiffiesAfter: ja, MsBefore: msb, MsAfter: msa, SYN: a.p.syn, SYNACK: a.sa})
	}
	return len(answers), nil
}

// probe sends one SYN of each family both ways (complete checksum, and
// marked for checksum offload through a virtio-net header) and records
// which the kernel answers and whether synproxy counted the SYN.
func (g *guest) probe(gen *parity.Gen) {
	for _, v6 := range []bool{false, true} {
		fam := "ipv4"
		if v6 {
			fam = "ipv6"
		}
		for _, mode := range []string{"full", "vnet"} {
			saved := g.v6Mode
			spec := gen.Next(v6)
			before, serr := g.stats()
			if serr != nil {
				g.logf("synproxy stats: %v", serr)
			}
			var ok bool
			ip := parity.BuildSYN(nil, &spec)
			f := g.frame(nil, ip)
			var err error
			if mode == "vnet" {
				l4 := parity.PartialChecksum(f[14:])
				err = g.txv.SendPartial(f, 14+l4)
			} else {
				err = g.tx.Send(f)
			}
			if err == nil {
				buf := make([]byte, 2048)
				deadline := time.Now().Add(2 * time.Second)
				for !ok && time.Now().Before(deadline) {
					n, _ := g.rx.Recv(buf, 100*time.Millisecond)
					if n > 14 {
						if seg, err := parity.ParseSegment(buf[14:n]); err == nil && seg.Dst == spec.Src {
							ok = seg.Flags&(parity.FlagSYN|parity.FlagACK) == parity.FlagSYN|parity.FlagACK
							if !ok {
								g.logf("probe %s %s: answer with flags %#x", fam, mode, seg.Flags)
							}
						}
					}
				}
			}
			after, _ := g.stats()
			g.v6Mode = saved
			res := "answered"
			if err != nil {
				res = "send error: " + err.Error()
			} else if !ok {
				res = "unanswered"
			}
			g.notes[fam+"_"+mode] = fmt.Sprintf("%s (synproxy syn_received +%d)", res, after[0]-before[0])
			if v6 && ok && g.v6Mode == "" {
				g.v6Mode = mode
			}
		}
	}
	if g.v6Mode == "" {
		g.v6Mode = "none"
	}
	g.notes["ipv6_mode"] = g.v6Mode
	g.logf("probes: %v", g.notes)
}

func (g *guest) synStream(sum *parity.Summary) error {
	gen := parity.NewGen(g.cfg.Seed, spoof4, spoof6, server4, server6)
	g.probe(parity.NewGen(g.cfg.Seed+1, spoof4, spoof6, server4, server6))
	fams := []bool{}
	for _, f := range g.cfg.Families {
		if f == 6 && g.v6Mode == "none" {
			continue
		}
		fams = append(fams, f == 6)
	}
	if len(fams) == 0 {
		return fmt.Errorf("no family answers SYNs")
	}
	startSlot := cookie.KernelSlot(g.jiffies(), g.cfg.HZ)
	headerDone := false
	emit := func(s *parity.Sample) {
		if err := g.out.Sample(s); err != nil {
			panic(err)
		}
	}
	batch := make([]parity.SYNSpec, 0, g.cfg.Batch)
	seen := map[tupleKey]bool{}
	waited := false
	for sum.Sent < g.cfg.Samples {
		if !waited && sum.Sent >= g.cfg.Samples/2 && g.cfg.CrossSlot {
			waited = true
			if err := g.acks(); err != nil {
				return err
			}
			for cookie.KernelSlot(g.jiffies(), g.cfg.HZ) == startSlot {
				time.Sleep(100 * time.Millisecond)
			}
			g.logf("slot %d -> %d at %.1fs, %d SYNs sent", startSlot, startSlot+1, time.Since(g.start).Seconds(), sum.Sent)
		}
		batch = batch[:0]
		for len(batch) < g.cfg.Batch && sum.Sent+len(batch) < g.cfg.Samples {
			s := gen.Next(fams[(sum.Sent+len(batch))%len(fams)])
			k := tupleKey{s.Src, s.Dst.Port()}
			if seen[k] {
				continue
			}
			seen[k] = true
			batch = append(batch, s)
		}
		n, err := g.exchange(batch, emit)
		if err != nil {
			return err
		}
		sum.Sent += len(batch)
		sum.Answered += n
		sum.Unanswered += len(batch) - n
		if !headerDone && n > 0 {
			h, err := g.header()
			if err != nil {
				return err
			}
			h.HZ = g.cfg.HZ
			if err := g.out.Header(h); err != nil {
				return err
			}
			headerDone = true
		}
		if sum.Sent%20000 < g.cfg.Batch {
			g.logf("%d SYNs sent, %d answered, %.1fs", sum.Sent, sum.Answered, time.Since(g.start).Seconds())
		}
	}
	if !waited {
		return g.acks()
	}
	return nil
}
