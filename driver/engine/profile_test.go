package engine_test

import (
	"context"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/driver"
	"github.com/synproxy-lite/synproxy-lite/driver/engine"
	"github.com/synproxy-lite/synproxy-lite/driver/internal/drivertest"
)

func startProfileEngine(t *testing.T, rec *recorder, p cookie.Profile) (*drivertest.Queue, *cookie.Ring) {
	t.Helper()
	ring, err := cookie.NewRing(&cookie.RingConfig{Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	fd := drivertest.New(1, 16)
	e, err := engine.New(fd, &engine.Config{Port: 8080, Ring: ring, Handoff: rec, Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return fd.Queue(0), ring
}

// noTSSYNOpts are the options of a SYN from a client with timestamps off:
// MSS, NOP, window scale, NOP, NOP, SACK-permitted (Linux's order then).
func noTSSYNOpts(mss uint16, ws uint8) []layers.TCPOption {
	return []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: binary.BigEndian.AppendUint16(nil, mss)},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{ws}},
		{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
	}
}

// TestProfileHandshake: with and without the client's timestamps, each
// profile hands over what its layout keeps. The Linux profile loses window
// scaling and SACK without timestamps; the full profile keeps them.
func TestProfileHandshake(t *testing.T) {
	for _, tc := range []struct {
		profile       cookie.Profile
		ts            bool
		wantWS, wantS bool
	}{
		{cookie.ProfileLinux, true, true, true},
		{cookie.ProfileLinux, false, false, false},
		{cookie.ProfileFull, true, true, true},
		{cookie.ProfileFull, false, true, true},
	} {
		name := tc.profile.String() + map[bool]string{true: "-ts", false: "-nots"}[tc.ts]
		t.Run(name, func(t *testing.T) {
			rec := &recorder{}
			q, _ := startProfileEngine(t, rec, tc.profile)
			cl, sv := netip.MustParseAddrPort("10.99.10.1:40000"), netip.MustParseAddrPort("10.99.10.2:8080")
			const cisn = 5000
			opts := noTSSYNOpts(1452, 7)
			if tc.ts {
				opts = linuxSYNOpts(1452, 7, 0x01020304)
			}
			q.Inject(build(t, seg{src: cl, dst: sv, seq: cisn, syn: true, opts: opts}))
			recv(t, q.Verdicts())
			sa := gopacket.NewPacket(recv(t, q.Sent()), layers.LayerTypeIPv4, gopacket.Default)
			tcp := sa.Layer(layers.LayerTypeTCP).(*layers.TCP)
			var hasWS, hasSACK bool
			var tsval uint32
			for _, o := range tcp.Options {
				switch o.OptionType {
				case layers.TCPOptionKindWindowScale:
					hasWS = true
				case layers.TCPOptionKindSACKPermitted:
					hasSACK = true
				case layers.TCPOptionKindTimestamps:
					tsval = binary.BigEndian.Uint32(o.OptionData)
				}
			}
			if hasWS != tc.wantWS || hasSACK != tc.wantS {
				t.Fatalf("SYN-ACK offers wscale %v sack %v, want %v %v", hasWS, hasSACK, tc.wantWS, tc.wantS)
			}
			ack := seg{src: cl, dst: sv, seq: cisn + 1, ack: tcp.Seq + 1, ack_: true}
			if tc.ts {
				// A TSecr that does not echo the TSval is refused by the
				// full profile (8 more MAC bits), not by the Linux one.
				bad := ack
				bad.opts = tsOpt(7, tsval^0x80)
				q.Inject(build(t, bad))
				want := driver.VerdictDrop
				if tc.profile == cookie.ProfileLinux {
					want = driver.VerdictAccept
				}
				if v := recv(t, q.Verdicts()); v.Verdict != want {
					t.Fatalf("ACK with a wrong TSecr: %v, want %v", v.Verdict, want)
				}
				if tc.profile == cookie.ProfileLinux {
					return
				}
				ack.opts = tsOpt(7, tsval)
			}
			q.Inject(build(t, ack))
			if v := recv(t, q.Verdicts()); v.Verdict != driver.VerdictAccept {
				t.Fatalf("ACK verdict %v", v.Verdict)
			}
			hss := rec.all()
			if len(hss) != 1 {
				t.Fatalf("%d handoffs", len(hss))
			}
			h := hss[0]
			if h.WScaleOK != tc.wantWS || h.SACKOK != tc.wantS || h.Timestamps != tc.ts || h.MSS != 1452 && tc.profile == cookie.ProfileFull {
				t.Errorf("handshake %+v", h)
			}
			if tc.wantWS && (h.ClientWScale != 7 || h.ServerWScale != 7) {
				t.Errorf("shifts %d/%d, want 7/7", h.ClientWScale, h.ServerWScale)
			}
		})
	}
}

func TestProfileUnknown(t *testing.T) {
	ring, _ := cookie.NewRing(nil)
	if _, err := engine.New(drivertest.New(1, 1), &engine.Config{Port: 1, Ring: ring, Handoff: &recorder{}, Profile: 7}); err == nil {
		t.Error("an unknown profile was accepted")
	}
}
