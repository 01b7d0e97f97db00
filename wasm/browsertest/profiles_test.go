//go:build !js

package browsertest

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/wasm/explain"
	"github.com/synproxy-lite/synproxy-lite/wasm/site"
)

// texts returns the text of every element the selector matches.
func (b *browser) texts(sel string) []string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll(`+fmt.Sprintf("%q", sel)+`)].map((e) => e.textContent)`))
	if err != nil {
		b.t.Fatalf("texts of %s: %v", sel, err)
	}
	return s
}

// layoutsMatch compares the two layout cards with the native scenario s and
// the cookie package: the ISNs, the 32 bits field by field, the forgery
// odds and the check of the client's ACK.
func layoutsMatch(t *testing.T, b *browser, s *explain.Scenario) {
	t.Helper()
	in := s.Input
	k, err := cookie.ParseKey(in.Key)
	if err != nil {
		t.Fatal(err)
	}
	tup := cookie.Tuple{Client: netip.MustParseAddrPort(in.Client), Server: netip.MustParseAddrPort(in.Server)}
	h0, _, err := k.Hashes(tup, in.Count)
	if err != nil {
		t.Fatal(err)
	}
	linISN, err := k.Encode(tup, in.ClientISN, in.MSS, in.Count)
	if err != nil {
		t.Fatal(err)
	}
	fullISN, _, err := k.EncodeFull(tup, in.ClientISN, cookie.FullOptions{MSS: in.MSS, WScale: in.WScale, HasWScale: in.HasWScale, SACK: in.SACK, ECN: in.ECN}, in.Count, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantBits := map[string]uint32{
		"linux": linISN - h0 - in.ClientISN,
		"full":  fullISN>>cookie.FullFieldBits<<cookie.FullFieldBits | uint32(cookie.FullFields(fullISN)),
	}
	wantISN := map[string]uint32{"linux": linISN, "full": fullISN}
	for _, l := range s.Layouts {
		card := "#layout-" + l.Profile
		if got, want := b.texts(card+" .lisn"), fmt.Sprintf("ISN %d (0x%08x)", wantISN[l.Profile], wantISN[l.Profile]); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q, want %q", card, got, want)
		}
		spans := b.texts(card + " .lbits .lf")
		if got, want := strings.Join(spans, ""), fmt.Sprintf("%032b", wantBits[l.Profile]); got != want {
			t.Errorf("%s: bits %s, want %s", card, got, want)
		}
		items := b.texts(card + " .lfields li")
		if len(items) != len(l.Fields) || len(spans) != len(l.Fields) {
			t.Fatalf("%s: %d fields and %d spans shown, want %d", card, len(items), len(spans), len(l.Fields))
		}
		for i, f := range l.Fields {
			bits := fmt.Sprintf("bit %d", f.Hi)
			if f.Hi != f.Lo {
				bits = fmt.Sprintf("bits %d..%d", f.Hi, f.Lo)
			}
			if want := fmt.Sprintf("%s (%s) = %d: %s", f.Name, bits, f.Value, f.Text); items[i] != want {
				t.Errorf("%s field %d: %q, want %q", card, i, items[i], want)
			}
			if want := fmt.Sprintf("%0*b", int(f.Hi-f.Lo+1), f.Value); spans[i] != want {
				t.Errorf("%s field %s: bits %q, want %q", card, f.Name, spans[i], want)
			}
		}
		var odds []string
		for _, o := range l.Odds {
			odds = append(odds, fmt.Sprintf("%s: 2^−%d", o.Case, o.Exp))
		}
		if got := b.texts(card + " .odds li"); fmt.Sprint(got) != fmt.Sprint(odds) {
			t.Errorf("%s: odds %q, want %q", card, got, odds)
		}
		if got := b.texts(card + " .lcheck"); len(got) != 1 || got[0] != "The client's ACK: "+l.Check {
			t.Errorf("%s: %q, want the check %q", card, got, l.Check)
		}
	}
}

// keptRows is the table of what each profile hands the connection, as the
// page shows it for the native kept options.
func keptRows(lin, full explain.Kept) []string {
	ws := func(k explain.Kept) string {
		if k.HasWScale {
			return fmt.Sprintf("shift %d", k.WScale)
		}
		return "none"
	}
	yes := map[bool]string{true: "yes", false: "no"}
	return []string{
		fmt.Sprintf("MSS|%d|%d", lin.MSS, full.MSS),
		"window scale|" + ws(lin) + "|" + ws(full),
		"SACK|" + yes[lin.SACK] + "|" + yes[full.SACK],
		fmt.Sprintf("largest window|%d bytes|%d bytes", lin.Window, full.Window),
		fmt.Sprintf("at 40 ms|≈ %d Mbit/s|≈ %d Mbit/s", lin.Mbps, full.Mbps),
	}
}

func (b *browser) keptTable() []string {
	b.t.Helper()
	rows, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#keep-body tr")].map((r) => [...r.children].map((c) => c.textContent).join("|"))`))
	if err != nil {
		b.t.Fatal(err)
	}
	return rows
}

// TestBrowserProfiles compares the two cookie layouts of the bit view with
// the native cookie package, and shows a client without timestamps losing
// window scaling and SACK under the Linux layout and keeping them under the
// full one.
func TestBrowserProfiles(t *testing.T) {
	srv := httptest.NewServer(site.Handler())
	defer srv.Close()
	b := newBrowser(t, 1200, 900)
	b.load(srv.URL)

	in := explain.Default()
	s, err := explain.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	layoutsMatch(t, b, s)
	// The forgery odds are docs/cookie.md's.
	if got := b.texts("#layout-linux .odds b"); fmt.Sprint(got) != "[2^−29 2^−28]" {
		t.Errorf("Linux odds %q", got)
	}
	if got := b.texts("#layout-full .odds b"); fmt.Sprint(got) != "[2^−22 2^−21 2^−30]" {
		t.Errorf("full odds %q", got)
	}
	if got, want := b.keptTable(), keptRows(s.Layouts[0].Kept, s.Layouts[1].Kept); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("with timestamps: %q, want %q", got, want)
	}
	b.screenshot("#profiles", "profiles.png")

	// A client without timestamps.
	b.do(chromedp.Click(chromedp.ID("no-ts")))
	in.TS = false
	s, err = explain.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	layoutsMatch(t, b, s)
	// Independently of package explain: what each profile's check hands
	// back for the client's own ACK.
	k, _ := cookie.ParseKey(in.Key)
	tup := cookie.Tuple{Client: netip.MustParseAddrPort(in.Client), Server: netip.MustParseAddrPort(in.Server)}
	isn, _ := k.Encode(tup, in.ClientISN, in.MSS, in.Count)
	lv, _ := k.Check(tup, in.ClientISN, isn, in.Count)
	fisn, _, _ := k.EncodeFull(tup, in.ClientISN, cookie.FullOptions{MSS: in.MSS, WScale: in.WScale, HasWScale: in.HasWScale, SACK: in.SACK}, in.Count, 0)
	fv, _ := k.CheckFull(tup, in.ClientISN, fisn, in.Count, 0, false)
	if !lv.Valid || !fv.Valid || !fv.Options.HasWScale || fv.Options.WScale != in.WScale || !fv.Options.SACK {
		t.Fatalf("native checks: Linux %+v, full %+v", lv, fv)
	}
	want := keptRows(explain.Kept{MSS: lv.MSS, Window: 65535, Mbps: 13},
		explain.Kept{MSS: fv.Options.MSS, WScale: fv.Options.WScale, HasWScale: true, SACK: true, Window: 65535 << fv.Options.WScale, Mbps: 1677})
	if got := b.keptTable(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("without timestamps: %q, want %q", got, want)
	}
	if got := b.texts("#keep-body tr.differs th"); fmt.Sprint(got) != "[window scale SACK largest window at 40 ms]" {
		t.Errorf("rows marked as differing: %q", got)
	}
	if got := b.texts("#layout-linux .lts"); len(got) != 1 || !strings.Contains(got[0], "none") {
		t.Errorf("Linux timestamp line %q", got)
	}
	b.screenshot("#tsless", "tsless.png")

	// Replayed after the window: stale under one, a failed MAC under the other.
	b.do(chromedp.Click(chromedp.ID("replay-late")))
	in.AckDelay = s.Lifetime
	if s, err = explain.Build(in); err != nil {
		t.Fatal(err)
	}
	if s.Layouts[0].Check != "stale" || s.Layouts[1].Check != "mac" {
		t.Fatalf("native late ACK: %q %q", s.Layouts[0].Check, s.Layouts[1].Check)
	}
	layoutsMatch(t, b, s)
	if e := b.text("error"); e != "" {
		t.Errorf("page error %q", e)
	}
	b.checkClean(srv.URL)
}
