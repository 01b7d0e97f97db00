//go:build !js

package browsertest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/synproxy-lite/synproxy-lite/wasm/site"
)

// TestBrowserFileNotice opens an exported copy from file://, where browsers
// do not let the page fetch its WebAssembly module: the page must say so at
// its top, with how to serve it, and raise no exception.
func TestBrowserFileNotice(t *testing.T) {
	dir := t.TempDir()
	if err := site.Export(dir); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, 1200, 900)
	b.do(chromedp.Navigate("file://"+dir+"/index.html"), chromedp.WaitVisible(chromedp.ID("notice")))
	notice := b.text("notice")
	for _, want := range []string{"file://", "synproxy-lite explain", "http://127.0.0.1:8088/", "--export", "python3 -m http.server"} {
		if !strings.Contains(notice, want) {
			t.Errorf("notice %q does not mention %q", notice, want)
		}
	}
	top, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](`document.getElementById("notice").getBoundingClientRect().top`))
	if err != nil {
		t.Fatal(err)
	}
	if top > 300 {
		t.Errorf("the notice is %.0f px down the page, not at its top", top)
	}
	if s := b.text("status"); strings.Contains(s, "Loading") {
		t.Errorf("status still reads %q", s)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("page reported: %s", p)
	}
}

// wasmLog records the status of every response to /explain.wasm and
// whether its request carried If-None-Match.
type wasmLog struct {
	mu      sync.Mutex
	entries []string // "200" or "304", "+inm" when If-None-Match was sent
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (l *wasmLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+site.WasmName {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		e := http.StatusText(sw.status)
		if r.Header.Get("If-None-Match") != "" {
			e += " +inm"
		}
		l.mu.Lock()
		l.entries = append(l.entries, e)
		l.mu.Unlock()
	})
}

func (l *wasmLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.entries...)
}

// TestBrowserWasmRevalidated visits the page twice: the second visit must
// revalidate the WebAssembly binary with its ETag and get 304 Not Modified,
// not download it again, and the page must still start.
func TestBrowserWasmRevalidated(t *testing.T) {
	var log wasmLog
	srv := httptest.NewServer(log.wrap(site.Handler()))
	defer srv.Close()
	b := newBrowser(t, 1200, 900)
	b.load(srv.URL)
	if got := log.get(); len(got) != 1 || got[0] != "OK" {
		t.Fatalf("first visit: explain.wasm responses %q, want one 200 without If-None-Match", got)
	}
	b.do(chromedp.Navigate("about:blank"))
	b.load(srv.URL)
	got := log.get()
	if len(got) != 2 || got[1] != "Not Modified +inm" {
		t.Errorf("second visit: explain.wasm responses %q, want a 304 to a request with If-None-Match", got)
	}
	if s := b.text("summary-isn"); s != "4185536808 (0xf97a3928)" {
		t.Errorf("after the second visit the page shows ISN %q", s)
	}
	b.checkClean(srv.URL)
}
