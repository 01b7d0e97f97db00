//go:build !js

package browsertest

import (
	"fmt"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/synproxy-lite/synproxy-lite/wasm/explain"
	"github.com/synproxy-lite/synproxy-lite/wasm/site"
)

// stepsMatch walks the diagram from its first step and compares every
// packet the page shows with the native scenario.
func stepsMatch(t *testing.T, b *browser, want *explain.Scenario, shots map[string]string) {
	t.Helper()
	b.do(chromedp.Click(chromedp.ID("first")))
	for i, st := range want.Steps {
		p := st.Packet
		got := map[string]string{
			"step-title": b.text("step-title"), "pkt-flags": b.text("pkt-flags"),
			"pkt-seq": b.text("pkt-seq"), "pkt-ack": b.text("pkt-ack"), "pkt-window": b.text("pkt-window"),
			"pkt-route": b.text("pkt-route"), "step-text": b.text("step-text"),
		}
		exp := map[string]string{
			"step-title": fmt.Sprintf("%d. %s", i+1, st.Title), "pkt-flags": p.Flags,
			"pkt-seq": fmt.Sprintf("%d  (0x%08x)", p.Seq, p.Seq), "pkt-ack": fmt.Sprintf("%d  (0x%08x)", p.Ack, p.Ack),
			"pkt-window": strconv.Itoa(int(p.Window)),
			"pkt-route":  fmt.Sprintf("%s → %s  (%s → %s)", p.From, p.To, p.Src, p.Dst),
			"step-text":  st.Text,
		}
		for k, v := range exp {
			if got[k] != v {
				t.Errorf("%s step %d (%s): #%s = %q, want %q", want.Input.Handshake, i+1, st.ID, k, got[k], v)
			}
		}
		if name, ok := shots[st.ID]; ok {
			b.screenshot("#handshake", name)
		}
		if i < len(want.Steps)-1 {
			b.do(chromedp.Click(chromedp.ID("next")))
		}
	}
}

// TestBrowserHandshakeSwitch switches the diagram between the kernel's
// synproxy and synproxy-lite and compares every packet with the native
// package: window 0 against 65535, the SYN replayed to the server against
// the client's socket made through TCP_REPAIR and a separate backend
// connection.
func TestBrowserHandshakeSwitch(t *testing.T) {
	srv := httptest.NewServer(site.Handler())
	defer srv.Close()
	b := newBrowser(t, 1200, 900)
	b.load(srv.URL)

	kernelIn := explain.Default()
	kernel, err := explain.Build(kernelIn)
	if err != nil {
		t.Fatal(err)
	}
	liteIn := explain.Default()
	liteIn.Handshake = explain.HandshakeLite
	lite, err := explain.Build(liteIn)
	if err != nil {
		t.Fatal(err)
	}
	if kernel.Steps[1].Packet.Window != 0 || lite.Steps[1].Packet.Window != explain.LiteSYNACKWindow {
		t.Fatalf("native SYN-ACK windows: kernel %d, synproxy-lite %d", kernel.Steps[1].Packet.Window, lite.Steps[1].Packet.Window)
	}

	if got := b.text("hs-summary"); got != kernel.Summary {
		t.Errorf("summary %q, want %q", got, kernel.Summary)
	}
	stepsMatch(t, b, kernel, nil)

	b.do(chromedp.Click(chromedp.ID("hs-lite")))
	if got := b.text("hs-summary"); got != lite.Summary {
		t.Errorf("synproxy-lite summary %q, want %q", got, lite.Summary)
	}
	lanes, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#seq-svg .lane-name")].map((e) => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(lanes) != "[attacker client synproxy-lite backend]" {
		t.Errorf("synproxy-lite lanes %q", lanes)
	}
	stepsMatch(t, b, lite, map[string]string{"synack": "handshake-lite.png", "handoff": "handoff-lite.png"})

	// The other views keep computing the kernel's claims, and the switch
	// goes back.
	if e := b.text("error"); e != "" {
		t.Errorf("page error %q", e)
	}
	b.do(chromedp.Click(chromedp.ID("hs-kernel")))
	stepsMatch(t, b, kernel, nil)
	b.checkClean(srv.URL)
}
