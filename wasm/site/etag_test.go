package site_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/wasm/site"
)

// TestHandlerETag: every file carries an ETag and Cache-Control: no-cache,
// and a request whose If-None-Match lists it (or "*", or its weak form)
// gets 304 without a body; the gzip and the identity representations of the
// WebAssembly binary have different tags.
func TestHandlerETag(t *testing.T) {
	h := site.Handler()
	req := func(method, path, accept, inm string) *http.Response {
		r := httptest.NewRequest(method, path, nil)
		if accept != "" {
			r.Header.Set("Accept-Encoding", accept)
		}
		if inm != "" {
			r.Header.Set("If-None-Match", inm)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Result()
	}
	tags := map[string]string{}
	for _, c := range []struct{ path, accept string }{
		{"/explain.wasm", "gzip"}, {"/explain.wasm", ""}, {"/", ""}, {"/index.html", ""}, {"/app.js", ""},
		{"/style.css", ""}, {"/wasm_exec.js", ""},
	} {
		first := req(http.MethodGet, c.path, c.accept, "")
		tag := first.Header.Get("ETag")
		if first.StatusCode != 200 || len(tag) < 34 || !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) {
			t.Errorf("GET %s (%q): %d, ETag %q", c.path, c.accept, first.StatusCode, tag)
			continue
		}
		if cc := first.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", c.path, cc)
		}
		if again := req(http.MethodGet, c.path, c.accept, "").Header.Get("ETag"); again != tag {
			t.Errorf("GET %s: ETag %q then %q", c.path, tag, again)
		}
		tags[c.path+" "+c.accept] = tag
		for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
			for _, m := range []string{http.MethodGet, http.MethodHead} {
				resp := req(m, c.path, c.accept, inm)
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != tag {
					t.Errorf("%s %s If-None-Match %s: %d, %d bytes, ETag %q", m, c.path, inm, resp.StatusCode, len(body), resp.Header.Get("ETag"))
				}
			}
		}
		resp := req(http.MethodGet, c.path, c.accept, `"not-the-tag"`)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(body) == 0 {
			t.Errorf("GET %s with a stale tag: %d, %d bytes", c.path, resp.StatusCode, len(body))
		}
	}
	if tags["/explain.wasm gzip"] == tags["/explain.wasm "] {
		t.Errorf("gzip and identity representations share the ETag %s", tags["/explain.wasm gzip"])
	}
	if tags["/ "] != tags["/index.html "] {
		t.Errorf("/ and /index.html: ETags %s and %s", tags["/ "], tags["/index.html "])
	}
	// The identity tag does not answer a gzip request.
	if resp := req(http.MethodGet, "/explain.wasm", "gzip", tags["/explain.wasm "]); resp.StatusCode != 200 {
		t.Errorf("gzip request with the identity ETag: %d", resp.StatusCode)
	}
}
