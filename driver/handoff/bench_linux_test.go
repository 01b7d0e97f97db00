package handoff_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/driver/handoff"
	"github.com/synproxy-lite/synproxy-lite/internal/netlab/netlabtest"
)

// BenchmarkMaterialise measures the cost of one handoff: the TCP_REPAIR
// sequence, FileConn and (unless off) the window update, then Close. The
// client end is the client namespace's kernel, which answers the window
// update with a reset.
func BenchmarkMaterialise(b *testing.B) {
	netlabtest.Need(b)
	p := netlabtest.NewPair(b, "splh", net4, net6)
	for _, tc := range []struct {
		name string
		cfg  *handoff.Config
	}{
		{"ipv4", &handoff.Config{Mark: mark}},
		{"ipv4-no-window-update", &handoff.Config{Mark: mark, NoWindowUpdate: true}},
		{"ipv6", &handoff.Config{Mark: mark}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cli, srv := p.A4, p.B4
			if tc.name == "ipv6" {
				cli, srv = p.A6, p.B6
			}
			h := handoff.Handshake{MSS: 1460, WScaleOK: true, ClientWScale: 7, ServerWScale: 7, SACKOK: true,
				Timestamps: true, TSval: 1, TSecr: 2, Window: 502}
			h.Tuple.Server = netip.AddrPortFrom(srv, port)
			cport := 1024
			b.ReportAllocs()
			err := p.B.Do(func() error {
				for b.Loop() {
					cport++
					if cport > 65535 {
						cport = 1025
					}
					h.Tuple.Client = netip.AddrPortFrom(cli, uint16(cport))
					h.ClientISN, h.ServerISN = rand.Uint32(), rand.Uint32()
					c, err := handoff.Materialise(&h, tc.cfg)
					if err != nil {
						return err
					}
					c.SetLinger(0)
					c.Close()
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
