package site_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/synproxy-lite/synproxy-lite/wasm/internal/stamp"
	"github.com/synproxy-lite/synproxy-lite/wasm/site"
)

var wasmMagic = []byte("\x00asm")

func get(t *testing.T, h http.Handler, method, path, acceptEncoding string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandlerServesWasm(t *testing.T) {
	h := site.Handler()
	raw, err := site.Wasm()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, wasmMagic) {
		t.Fatalf("embedded wasm does not start with the wasm magic: % x", raw[:4])
	}
	for _, c := range []struct {
		accept string
		gz     bool
	}{{"gzip", true}, {"br, gzip;q=0.8", true}, {"", false}, {"identity", false}, {"gzip;q=0", false}, {"*", true}} {
		resp := get(t, h, http.MethodGet, "/explain.wasm", c.accept)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/wasm" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: %d %v", c.accept, resp.StatusCode, resp.Header)
		}
		if c.gz {
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Errorf("Accept-Encoding %q: not compressed", c.accept)
				continue
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			body, err = io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
		} else if resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("Accept-Encoding %q: compressed anyway", c.accept)
		}
		if !bytes.Equal(body, raw) {
			t.Errorf("Accept-Encoding %q: body differs from the wasm (%d bytes)", c.accept, len(body))
		}
	}
	if resp := get(t, h, http.MethodHead, "/explain.wasm", "gzip"); resp.StatusCode != 200 || resp.ContentLength != int64(len(site.WasmGzip())) {
		t.Errorf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
}

func TestHandlerPages(t *testing.T) {
	h := site.Handler()
	for path, ctype := range map[string]string{
		"/": "text/html; charset=utf-8", "/index.html": "text/html; charset=utf-8",
		"/app.js": "text/javascript; charset=utf-8", "/wasm_exec.js": "text/javascript; charset=utf-8",
		"/style.css": "text/css; charset=utf-8",
	} {
		resp := get(t, h, http.MethodGet, path, "")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ctype || len(body) == 0 {
			t.Errorf("%s: %d %q %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s: no CSP", path)
		}
	}
	for _, path := range []string{"/explain.wasm.gz", "/explain.wasm.stamp", "/../site.go", "/static/index.html", "/nope"} {
		if resp := get(t, h, http.MethodGet, path, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	if resp := get(t, h, http.MethodPost, "/", ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	// The page refers to nothing outside its own files.
	resp := get(t, h, http.MethodGet, "/", "")
	html, _ := io.ReadAll(resp.Body)
	for _, bad := range []string{"http://", "https://", "//cdn", "<style", "style=\"", "onclick"} {
		if bytes.Contains(html, []byte(bad)) {
			t.Errorf("index.html contains %q", bad)
		}
	}
}

func TestExport(t *testing.T) {
	dir := t.TempDir()
	if err := site.Export(dir); err != nil {
		t.Fatal(err)
	}
	raw, _ := site.Wasm()
	for _, f := range []string{"index.html", "app.js", "style.css", "wasm_exec.js", "explain.wasm", "explain.wasm.gz"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v", f, err)
		}
		if f == "explain.wasm" && !bytes.Equal(b, raw) {
			t.Error("exported wasm differs")
		}
	}
	if err := site.Export(""); err == nil {
		t.Error("empty directory accepted")
	}
}

// committed reads a file of the committed static directory.
func committed(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("static", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWasmNotStale fails when a source file the WebAssembly binary is built
// from changed after the committed binary was generated, or when the
// committed files do not match their stamp. Fix: go generate ./wasm/site.
func TestWasmNotStale(t *testing.T) {
	st, err := stamp.Parse(committed(t, "explain.wasm.stamp"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := stamp.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := stamp.Sources(root)
	if err != nil {
		t.Fatal(err)
	}
	if src != st.Sources {
		t.Errorf("wasm/site/static/explain.wasm is stale: its sources changed since it was built; run `go generate ./wasm/site` (or `make wasm`) and commit the result")
	}
	if stamp.Sum(committed(t, "explain.wasm")) != st.Wasm {
		t.Error("static/explain.wasm does not match its stamp; run `go generate ./wasm/site`")
	}
	if stamp.Sum(committed(t, "explain.wasm.gz")) != st.Gzip || stamp.Sum(site.WasmGzip()) != st.Gzip {
		t.Error("static/explain.wasm.gz (or the embedded copy) does not match its stamp")
	}
	raw, err := site.Wasm()
	if err != nil || stamp.Sum(raw) != st.Wasm {
		t.Errorf("the embedded gzip does not decompress to the stamped wasm (%v)", err)
	}
	// wasm_exec.js must come from the Go release the binary was built with.
	ver, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(ver)) != st.Go {
		t.Skipf("SKIPPING wasm_exec.js comparison: toolchain %s, binary built with %s", strings.TrimSpace(string(ver)), st.Go)
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed(t, "wasm_exec.js"), want) {
		t.Error("static/wasm_exec.js differs from the Go installation's; run `go generate ./wasm/site`")
	}
}

// TestWasmReproducible rebuilds the binary into a temporary directory and
// compares it byte for byte with the committed one: the build is
// reproducible (-trimpath, a fixed toolchain, and a gzip stream with no name or time in its
// header), so any difference means the committed binary is not what the
// sources make.
func TestWasmReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPING wasm rebuild in -short mode")
	}
	st, err := stamp.Parse(committed(t, "explain.wasm.stamp"))
	if err != nil {
		t.Fatal(err)
	}
	ver, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(string(ver)); v != st.Go {
		t.Skipf("SKIPPING wasm rebuild: toolchain %s, committed binary built with %s (bytes would differ)", v, st.Go)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "../internal/wasmbuild", "-out", dir)
	cmd.Stderr = os.Stderr
	if out, err := cmd.Output(); err != nil {
		t.Fatalf("wasmbuild: %v\n%s", err, out)
	}
	for _, f := range []string{"explain.wasm", "explain.wasm.gz", "explain.wasm.stamp", "wasm_exec.js"} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, committed(t, f)) {
			t.Errorf("rebuilt %s differs from the committed one: run `go generate ./wasm/site` and commit", f)
		}
	}
}

// TestExplainUnderNode runs package explain's own tests compiled with
// GOOS=js GOARCH=wasm under Node.js, so the spec vectors, the check traces
// and the forging and flood results are checked in the build the page runs;
// and the glue's tests (package wasm), which check its conversion tables
// against the types and encoding/json.
func TestExplainUnderNode(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPING js/wasm test run in -short mode")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("SKIPPING js/wasm tests of packages explain and wasm: node not found (Debian package nodejs)")
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	execWasm := filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "go_js_wasm_exec")
	cmd := exec.Command("go", "test", "-count=1", "-exec="+execWasm, "../explain", "..")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("GOOS=js go test ./wasm/explain ./wasm: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}
