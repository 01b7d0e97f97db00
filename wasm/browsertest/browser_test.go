//go:build !js

package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/synproxy-lite/synproxy-lite/cookie"
	"github.com/synproxy-lite/synproxy-lite/wasm/explain"
	"github.com/synproxy-lite/synproxy-lite/wasm/site"
)

// chromiumPath is Debian's chromium, which scripts/test-deps.sh installs.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is where the screenshots of the main views go: the
// directory named by EXPLAINER_SCREENSHOTS (docs/img to refresh the
// documentation's copies), else the test's artifact directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("EXPLAINER_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

// browser is one headless chromium tab with everything it reports recorded.
type browser struct {
	ctx context.Context
	t   *testing.T

	mu       sync.Mutex
	problems []string // console errors and warnings, exceptions, log errors
	requests []string // every URL the page requested
}

func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = chromiumPath
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("SKIPPING BROWSER TEST: chromium not found at %s (%v); install Debian's chromium (scripts/test-deps.sh) or set CHROMIUM", path, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("font-render-hinting", "none"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 150*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	b := &browser{ctx: ctx, t: t}
	if err := chromedp.Listen(ctx, b.record); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	b.selfTest()
	enable := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{})
		return err
	})
	if err := chromedp.Do(ctx, enable); err != nil {
		t.Fatalf("network.enable: %v", err)
	}
	return b
}

// selfTest makes the page log a warning and waits until the recorder has
// it, so a broken recorder cannot make "no console errors" pass vacuously.
func (b *browser) selfTest() {
	b.t.Helper()
	const marker = "explainer-recorder-selftest"
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](`console.warn("`+marker+`")`)); err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		b.mu.Lock()
		for j, p := range b.problems {
			if strings.Contains(p, marker) {
				b.problems = append(b.problems[:j], b.problems[j+1:]...)
				b.mu.Unlock()
				return
			}
		}
		b.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatal("the console recorder did not see console.warn")
}

func (b *browser) record(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range ev.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			b.problems = append(b.problems, "console."+string(ev.Type)+": "+strings.Join(parts, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.problems = append(b.problems, "exception: "+msg)
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
			b.problems = append(b.problems, "log "+string(ev.Entry.Level)+": "+ev.Entry.Text+" "+ev.Entry.URL)
		}
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	}
}

// checkClean fails the test for any console error, exception, or request
// that left the page's own origin.
func (b *browser) checkClean(origin string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("page reported: %s", p)
	}
	if len(b.requests) == 0 {
		b.t.Error("no network request recorded at all: the recorder does not work")
	}
	for _, r := range b.requests {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme+"://"+u.Host != origin && u.Scheme != "data") {
			b.t.Errorf("request outside the page's origin %s: %s", origin, r)
		}
	}
}

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) text(id string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById(`+strconv.Quote(id)+`).textContent`))
	if err != nil {
		b.t.Fatalf("text of #%s: %v", id, err)
	}
	return s
}

// typeInto replaces the value of an input the way a person does: it
// empties it and types the new value key by key.
func (b *browser) typeInto(id, value string) {
	b.t.Helper()
	b.do(
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[chromedp.Void](`document.getElementById(`+strconv.Quote(id)+`).value = ""`)(ctx, tg)
			return err
		}),
		chromedp.SendKeys(chromedp.ID(id), value),
	)
}

func (b *browser) screenshot(sel, name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("screenshot of %s: %v", sel, err)
	}
	path := filepath.Join(screenshotDir(b.t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s (%d bytes)", path, len(png))
}

func (b *browser) load(u string) {
	b.t.Helper()
	b.do(chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS("body.ready")))
}

// TestBrowserExplainer loads the page from the explain handler in headless
// chromium, steps through the handshake, types inputs into the controls and
// compares what the page shows with the native cookie package.
func TestBrowserExplainer(t *testing.T) {
	srv := httptest.NewServer(site.Handler())
	defer srv.Close()
	b := newBrowser(t, 1200, 900)
	b.load(srv.URL)

	// The handshake, packet by packet, as the native build computes it.
	want, err := explain.Build(explain.Default())
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Steps) < 8 {
		t.Fatalf("native scenario has only %d steps", len(want.Steps))
	}
	for i, st := range want.Steps {
		p := st.Packet
		got := map[string]string{
			"step-title": b.text("step-title"), "pkt-flags": b.text("pkt-flags"),
			"pkt-seq": b.text("pkt-seq"), "pkt-ack": b.text("pkt-ack"), "pkt-window": b.text("pkt-window"),
			"pkt-route": b.text("pkt-route"),
		}
		exp := map[string]string{
			"step-title": fmt.Sprintf("%d. %s", i+1, st.Title), "pkt-flags": p.Flags,
			"pkt-seq": fmt.Sprintf("%d  (0x%08x)", p.Seq, p.Seq), "pkt-ack": fmt.Sprintf("%d  (0x%08x)", p.Ack, p.Ack),
			"pkt-window": strconv.Itoa(int(p.Window)),
			"pkt-route":  fmt.Sprintf("%s → %s  (%s → %s)", p.From, p.To, p.Src, p.Dst),
		}
		for k, v := range exp {
			if got[k] != v {
				t.Errorf("step %d (%s): #%s = %q, want %q", i+1, st.ID, k, got[k], v)
			}
		}
		if st.ID == "synack" {
			b.screenshot("#handshake", "handshake.png")
			b.screenshot("#cookie-calc", "cookie.png")
		}
		if st.ID == "ack" {
			if v := b.text("calc-verdict"); v != "Valid: MSS 1460 (index 3), made 0 slot(s) ago" {
				t.Errorf("ACK step verdict %q", v)
			}
			b.screenshot("#cookie-calc", "check.png")
		}
		if i < len(want.Steps)-1 {
			b.do(chromedp.Click(chromedp.ID("next")))
		}
	}
	// The handshake's well-known values (spec §6, example 1).
	if s := want.Steps[1].Packet; s.Seq != 4185536808 || s.Window != 0 || s.Ack != 1001 {
		t.Errorf("native SYN-ACK %+v", s)
	}
	// Keyboard: the diagram steps back with the left arrow key.
	b.do(chromedp.Focus(chromedp.ID("diagram")), chromedp.KeyEvent(kb.ArrowLeft))
	if got, w := b.text("step-title"), fmt.Sprintf("%d. %s", len(want.Steps)-1, want.Steps[len(want.Steps)-2].Title); got != w {
		t.Errorf("after ArrowLeft: %q, want %q", got, w)
	}
	b.do(chromedp.Click(chromedp.ID("first")))
	if got := b.text("step-title"); got != "1. "+want.Steps[0].Title {
		t.Errorf("after first: %q", got)
	}

	// The API object checks its arguments and reports errors as values.
	errs, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`(() => {
		const a = newExplainer();
		const d = a.defaults();
		const r = [a.scenario(5), a.scenario({client: 5}), a.scenario({bogus: 1}),
			a.scenario(Object.assign({}, d, {clientISN: 1.5})), a.scenario(Object.assign({}, d, {mss: 70000})),
			a.forge(d, -1, true, 1), a.forge(d), a.scenario(Object.assign({}, d, {key: "zz"}))].map((x) => String(x.error));
		a.release();
		r.push(typeof a.scenario, typeof a.release);
		return r;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []string{"argument 1 must be of type object, not number", "input client: must be a string", "unknown input bogus",
		"clientISN: must be a whole number", "mss: out of range", "tries must be a non-negative integer", "want 4 arguments, got 1",
		"explain: key: ", "undefined", "undefined"} {
		if i >= len(errs) || !strings.Contains(errs[i], w) {
			t.Errorf("API error %d: %q, want it to contain %q", i, errs, w)
		}
	}

	// Parity: inputs typed into the controls; the page's ISN and check
	// against the native cookie package.
	randomKey, err := cookie.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	rk := randomKey.Bytes()
	cases := []struct {
		client, server, key  string
		isn, mss, count, sec uint32
		delay                uint32
		seqDelta             int32
	}{
		{"192.0.2.1:12345", "198.51.100.7:80", explain.ExampleKey, 1000, 0, 5, 0, 0, 0},
		{"10.0.0.1:40000", "10.0.0.2:443", explain.ExampleKey, 4294967295, 1300, 4294967295, 30, 60, 0},
		{"203.0.113.9:65535", "192.0.2.80:8080", fmt.Sprintf("%x", rk[:]), 305419896, 1452, 286330, 10, 90, 0},
		{"[2001:db8::1]:40000", "[2001:db8::2]:443", explain.ExampleKey, 123456789, 9000, 71600, 59, 60, 0},
		{"[fe80::1]:1", "[fe80::2]:65535", fmt.Sprintf("%x", rk[:]), 0, 1219, 255, 0, 120, 0},
		{"198.18.0.1:5555", "198.18.0.2:22", explain.ExampleKey, 77777, 1460, 1000, 20, 30, 1},
		{"198.18.0.1:5555", "198.18.0.2:22", explain.ExampleKey, 77777, 1460, 1000, 20, 30, -1},
	}
	outcomes := map[string]bool{}
	for i, c := range cases {
		b.typeInto("client", c.client)
		b.typeInto("server", c.server)
		b.typeInto("key", c.key)
		b.typeInto("clientISN", strconv.FormatUint(uint64(c.isn), 10))
		b.typeInto("mss", strconv.Itoa(int(c.mss)))
		b.typeInto("count", strconv.FormatUint(uint64(c.count), 10))
		b.typeInto("synSecond", strconv.Itoa(int(c.sec)))
		b.typeInto("ackDelay", strconv.FormatUint(uint64(c.delay), 10))
		b.typeInto("ackSeqDelta", strconv.Itoa(int(c.seqDelta)))
		if e := b.text("error"); e != "" {
			t.Fatalf("case %d: page error %q", i, e)
		}

		key, err := cookie.ParseKey(c.key)
		if err != nil {
			t.Fatal(err)
		}
		tuple := cookie.Tuple{Client: netip.MustParseAddrPort(c.client), Server: netip.MustParseAddrPort(c.server)}
		isn, err := key.Encode(tuple, c.isn, uint16(c.mss), c.count)
		if err != nil {
			t.Fatal(err)
		}
		ackSlot := uint32((uint64(c.count)*60 + uint64(c.sec) + uint64(c.delay)) / 60)
		v, err := key.Check(tuple, c.isn+uint32(c.seqDelta), isn, ackSlot)
		if err != nil {
			t.Fatal(err)
		}
		if got, w := b.text("summary-isn"), fmt.Sprintf("%d (0x%08x)", isn, isn); got != w {
			t.Errorf("case %d: page ISN %q, native %q", i, got, w)
		}
		wantCheck := "rejected: " + map[cookie.Reason]string{cookie.ReasonStale: "stale", cookie.ReasonMSSIndex: "MSS index"}[v.Reason]
		if v.Valid {
			wantCheck = fmt.Sprintf("valid, MSS %d", v.MSS)
		}
		wantCheck += fmt.Sprintf(" (ACK %d s after the SYN, slot %d)", c.delay, ackSlot)
		if got := b.text("summary-check"); got != wantCheck {
			t.Errorf("case %d: page check %q, native %q", i, got, wantCheck)
		}
		t.Logf("case %d: isn %d, check %s", i, isn, wantCheck)
		outcome, _, _ := strings.Cut(wantCheck, " (")
		outcome, _, _ = strings.Cut(outcome, ",")
		outcomes[outcome] = true
	}
	// The cases must cover every outcome, or the comparison proves little.
	for _, r := range []string{"valid", "rejected: stale", "rejected: MSS index"} {
		if !outcomes[r] {
			t.Errorf("no parity case ended %q", r)
		}
	}

	// Replay after the validity window: the button moves the clock and the ACK fails.
	b.do(chromedp.Click(chromedp.ID("reset")), chromedp.Click(chromedp.ID("replay-late")))
	if got := b.text("summary-check"); !strings.HasPrefix(got, "rejected: stale") {
		t.Errorf("replay after the window: %q", got)
	}
	if got := b.text("step-title"); !strings.Contains(got, "ACK: the cookie comes back") {
		t.Errorf("replay shows step %q", got)
	}
	b.screenshot("#controls", "controls.png")
	b.do(chromedp.Click(chromedp.ID("reset")))

	// Random key (crypto/rand in the browser) and the wall clock: the page
	// still agrees with the native package for the values it now shows.
	b.do(chromedp.Click(chromedp.ID("random-key")), chromedp.Click(chromedp.ID("now")))
	keyHex, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.ID("key")))
	if err != nil {
		t.Fatal(err)
	}
	slotText, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.ID("count")))
	if err != nil {
		t.Fatal(err)
	}
	if keyHex == explain.ExampleKey || len(keyHex) != 64 {
		t.Errorf("random key %q", keyHex)
	}
	slot, err := strconv.ParseUint(slotText, 10, 32)
	if now := cookie.WallSlot(time.Now()); err != nil || (uint32(slot) != now && uint32(slot) != now-1) {
		t.Errorf("Now set slot %q, wall slot %d", slotText, now)
	}
	key, err := cookie.ParseKey(keyHex)
	if err != nil {
		t.Fatal(err)
	}
	isn, _ := key.Encode(cookie.Tuple{Client: netip.MustParseAddrPort("192.0.2.1:12345"), Server: netip.MustParseAddrPort("198.51.100.7:80")}, 1000, 1460, uint32(slot))
	if got, w := b.text("summary-isn"), fmt.Sprintf("%d (0x%08x)", isn, isn); got != w {
		t.Errorf("random key: page ISN %q, native %q", got, w)
	}
	b.do(chromedp.Click(chromedp.ID("reset")))

	// Play advances the diagram by itself; pressing it again pauses.
	b.do(chromedp.Click(chromedp.ID("first")), chromedp.Click(chromedp.ID("play")))
	b.waitText("step-count", "Packet 3 of")
	b.do(chromedp.Click(chromedp.ID("play")))
	if p, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById("play").getAttribute("aria-pressed")`)); p != "false" {
		t.Errorf("play did not pause: aria-pressed %q", p)
	}
	b.do(chromedp.Click(chromedp.ID("first")))

	// Forging: the page's first run with the right top byte uses seed 1;
	// the native build must count the same acceptances.
	b.do(chromedp.SetValue(chromedp.ID("forge-tries"), "16777216"), chromedp.Click(chromedp.ID("forge-top")))
	b.waitText("status", "Forged ")
	t.Logf("page: %s", b.text("status"))
	nf, err := explain.Forge(explain.Default(), 1<<24, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(b.textSel("#forge-row-top .a")); got != strconv.FormatUint(nf.Accepted, 10) {
		t.Errorf("page accepted %s forged ACKs, native %d", got, nf.Accepted)
	}
	b.do(chromedp.Click(chromedp.ID("forge-search")))
	b.waitText("forge-search-result", "exactly")
	if got := b.text("forge-search-result"); !strings.Contains(got, "exactly 8 pass") || !strings.Contains(got, "2^-29") {
		t.Errorf("search result %q", got)
	}
	b.screenshot("#forge", "forge.png")

	// Flood: the page's totals equal the native simulation's.
	nfl, err := explain.Flood(explain.DefaultFlood())
	if err != nil {
		t.Fatal(err)
	}
	wantTotals := fmt.Sprintf("Whole run: without cookies %d clients served, %d refused; with cookies %d served, %d refused, %d cookies computed, %d ACKs checked (%d forged, %d passed).",
		nfl.Served, nfl.Refused, nfl.CookieServed, nfl.CookieRefused, nfl.Cookies, nfl.Checks, nfl.ForgedTried, nfl.ForgedPassed)
	if got := b.text("flood-totals"); got != wantTotals {
		t.Errorf("flood totals:\n page   %q\n native %q", got, wantTotals)
	}
	if nfl.Refused == 0 || nfl.CookieRefused != 0 {
		t.Errorf("flood simulation does not show the effect: %d refused without cookies, %d with", nfl.Refused, nfl.CookieRefused)
	}
	b.screenshot("#flood", "flood.png")
	// Its animation moves the second slider.
	b.do(chromedp.Click(chromedp.ID("flood-play")))
	b.waitText("flood-tick-out", "50")
	b.do(chromedp.Click(chromedp.ID("flood-play")))

	// Claims: every claim of the native build, with the same demonstration.
	claims, err := explain.Claims(explain.Default())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claims {
		got := b.textSel("#claim-" + c.ID + " .demo")
		if got != strings.Join(c.Demo, "") {
			t.Errorf("claim %s: page demo %q, native %q", c.ID, got, strings.Join(c.Demo, ""))
		}
		if !c.Shown {
			t.Errorf("claim %s is not demonstrated for the default input", c.ID)
		}
	}
	b.screenshot("#claims", "claims.png")
	b.checkClean(srv.URL)
}

func (b *browser) textSel(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector(`+strconv.Quote(sel)+`).textContent`))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *browser) waitText(id, substr string) {
	b.t.Helper()
	expr := `document.getElementById(` + strconv.Quote(id) + `).textContent.includes(` + strconv.Quote(substr) + `)`
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		b.t.Fatalf("waiting for %q in #%s: %v (it reads %q)", substr, id, err, b.text(id))
	}
}

// TestBrowserPhoneAndExport loads an exported copy from a plain file server
// at phone width: it must work without the explain handler, and the page
// must not be wider than the screen.
func TestBrowserPhoneAndExport(t *testing.T) {
	dir := t.TempDir()
	if err := site.Export(dir); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	b := newBrowser(t, 375, 812)
	b.do(chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile))
	b.load(srv.URL + "/index.html")
	if got, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || got > 375 {
		t.Errorf("page is %d px wide at a 375 px viewport (err %v)", got, err)
	}
	if got := b.text("summary-isn"); got != "4185536808 (0xf97a3928)" {
		t.Errorf("exported page ISN %q", got)
	}
	b.do(chromedp.Click(chromedp.ID("next")))
	b.screenshot("#handshake", "phone-handshake.png")
	b.screenshot("#cookie-calc", "phone-cookie.png")
	// The other views at phone width, for review; docs/ does not show them.
	for _, v := range []string{"controls", "profiles", "tsless", "forge", "flood", "claims"} {
		png, err := chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.CSS("#"+v)))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "phone-"+v+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.checkClean(srv.URL)
}
