package guest

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/fuzz/parity"
)

const ackPort = 8080

// acks probes the ACK direction: for fresh tuples that never sent a SYN it
// mints cookies with package cookie and the kernel's own keys, sends the
// client's handshake ACK and records the kernel's verdict (synproxy
// counters) and whether the server in the guest got the connection.
// Mutated cookies (a flipped bit, a stale or future slot) are sent too.
func (g *guest) acks() error {
	if g.cfg.Acks == 0 {
		return nil
	}
	h, err := g.header()
	if err != nil {
		return err
	}
	k4, err := cookie.ParseKey(h.Key4)
	if err != nil {
		return err
	}
	k6, err := cookie.ParseKey(h.Key6)
	if err != nil && g.v6Mode != "none" {
		return err
	}
	ln, err := g.srv.Listen("tcp", fmt.Sprintf(":%d", ackPort))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	var mu sync.Mutex
	conns := map[netip.AddrPort]bool{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ap := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			mu.Lock()
			conns[ap] = true
			mu.Unlock()
			c.Close()
		}
	}()
	gen := parity.NewGen(g.cfg.Seed+2, spoof4, spoof6, server4, server6)
	r := gen.Rand()
	kinds := []string{"valid", "age1", "flipbit", "stale", "future"}
	var probes []*parity.AckProbe
	for _, v6 := range []bool{false, true} {
		if v6 && g.v6Mode == "none" {
			continue
		}
		key := &k4
		if v6 {
			key = &k6
		}
		for i := 0; i < g.cfg.Acks*len(kinds); i++ {
			kind := kinds[i%len(kinds)]
			spec := gen.Next(v6)
			spec.Dst = netip.AddrPortFrom(spec.Dst.Addr(), ackPort)
			t := cookie.Tuple{Client: spec.Src, Server: spec.Dst}
			jb := g.jiffies()
			now := cookie.KernelSlot(jb, g.cfg.HZ)
			count := now
			switch kind {
			case "age1":
				count = now - 1
			case "stale":
				count = now - 2 - uint32(r.IntN(3))*127 // 2, 129, 256 slots old
			case "future":
				count = now + 1
			}
			mss := spec.MSS
			c, err := key.Encode(t, spec.Seq, mss, count)
			if err != nil {
				return err
			}
			if kind == "flipbit" {
				c ^= 1 << r.IntN(32)
			}
			p := &parity.AckProbe{Client: spec.Src.String(), Server: spec.Dst.String(), SSeq: spec.Seq,
				Cookie: c, MSS: mss, Count: count, Kind: kind, JiffiesBefore: jb}
			var tsval uint32
			if spec.HasTS {
				p.TS = true
				tsval = r.Uint32()
				p.TSecr = cookie.TSval(monoMs(), cookie.TSOptions{
					HasWScale: spec.HasWScale, WScale: min(spec.WScale, 14), SACK: spec.SACKPerm})
			}
			before, err := g.stats()
			if err != nil {
				return err
			}
			ack := parity.BuildACK(nil, spec.Src, spec.Dst, spec.Seq+1, c+1, 502, p.TS, tsval, p.TSecr)
			if err := g.send(ack, v6); err != nil {
				return fmt.Errorf("send ACK: %w", err)
			}
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				after, err := g.stats()
				if err != nil {
					return err
				}
				p.Rejected = after[1] > before[1]
				p.Accepted = after[2] > before[2]
				if p.Accepted || p.Rejected {
					break
				}
				time.Sleep(time.Millisecond)
			}
			p.JiffiesAfter = g.jiffies()
			probes = append(probes, p)
		}
	}
	// Connections complete asynchronously; give them a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		missing := 0
		mu.Lock()
		for _, p := range probes {
			ap := netip.MustParseAddrPort(p.Client)
			p.Connected = conns[ap]
			if p.Accepted && !p.Connected {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range probes {
		if err := g.out.Ack(p); err != nil {
			return err
		}
	}
	g.logf("%d ACK probes done at %.1fs", len(probes), time.Since(g.start).Seconds())
	return nil
}
