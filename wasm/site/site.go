// Package site is the browser explainer as a static web site: the page,
// its script and style, Go's wasm_exec.js and the WebAssembly build of the
// explainer (package explain compiled with GOOS=js GOARCH=wasm), embedded in
// the binary. Handler serves it; Export writes it to a directory that any
// static file server can serve.
//
// The WebAssembly binary is generated and committed, so a clean checkout
// builds without running the generator:
//
//	go generate ./wasm/site   # or: make wasm
//
// It is embedded gzip-compressed only; Handler sends those bytes as they are
// to clients that accept gzip and decompresses them once for others. Every
// file goes out with an ETag (a hash of its bytes) and Cache-Control:
// no-cache, so a browser revalidates it on the next visit and gets 304 Not
// Modified, without a body, while it has not changed.
package site

//go:generate go run ../internal/wasmbuild -out static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

//go:embed static/index.html static/app.js static/style.css static/wasm_exec.js static/explain.wasm.gz
var static embed.FS

// WasmName is the WebAssembly file's name in the site.
const WasmName = "explain.wasm"

// files the site consists of (besides the WebAssembly binary).
var files = []string{"index.html", "app.js", "style.css", "wasm_exec.js"}

// contentType is the MIME type of a site file.
func contentType(name string) string {
	switch filepath.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".wasm":
		return "application/wasm"
	}
	return "application/octet-stream"
}

// ContentSecurityPolicy keeps the page to its own origin: no request leaves
// it, and only its own script and WebAssembly run.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// WasmGzip returns the embedded gzip-compressed WebAssembly binary.
func WasmGzip() []byte {
	b, err := static.ReadFile("static/" + WasmName + ".gz")
	if err != nil {
		panic("site: embedded wasm missing: " + err.Error()) // go:embed guarantees it
	}
	return b
}

var raw struct {
	once sync.Once
	b    []byte
	err  error
}

// Wasm returns the WebAssembly binary, decompressed once.
func Wasm() ([]byte, error) {
	raw.once.Do(func() {
		zr, err := gzip.NewReader(bytes.NewReader(WasmGzip()))
		if err != nil {
			raw.err = err
			return
		}
		raw.b, raw.err = io.ReadAll(zr)
	})
	return raw.b, raw.err
}

// Handler serves the site: GET and HEAD only, the WebAssembly binary
// compressed when the client accepts gzip.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" {
		name = "index.html"
	}
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	if name == WasmName {
		h.Set("Content-Type", contentType(name))
		h.Add("Vary", "Accept-Encoding")
		body := WasmGzip()
		// The two encodings are two representations: each has its tag.
		tag := etag(name, body, "")
		gz := acceptsGzip(r)
		if gz {
			tag = etag(name, body, "-gzip")
		}
		h.Set("ETag", tag)
		if notModified(r, tag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if gz {
			h.Set("Content-Encoding", "gzip")
		} else {
			b, err := Wasm()
			if err != nil {
				http.Error(w, "site: "+err.Error(), http.StatusInternalServerError)
				return
			}
			body = b
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodGet {
			w.Write(body)
		}
		return
	}
	known := false
	for _, f := range files {
		known = known || f == name
	}
	if !known {
		http.NotFound(w, r)
		return
	}
	b, err := static.ReadFile("static/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h.Set("Content-Type", contentType(name))
	tag := etag(name, b, "")
	h.Set("ETag", tag)
	if notModified(r, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodGet {
		w.Write(b)
	}
}

// etags caches the entity tag of each embedded file by name (the files
// never change while the process runs).
var etags sync.Map

// etag returns the strong entity tag of the file name whose bytes are b:
// the first 128 bits of their SHA-256 in hex, with suffix (which tells
// representations of the same content apart) before the closing quote.
func etag(name string, b []byte, suffix string) string {
	t, ok := etags.Load(name)
	if !ok {
		sum := sha256.Sum256(b)
		t, _ = etags.LoadOrStore(name, hex.EncodeToString(sum[:16]))
	}
	return `"` + t.(string) + suffix + `"`
}

// notModified reports whether the request's If-None-Match lists tag, or is
// "*": the comparison is weak (RFC 9110, section 13.1.2), so W/"x" matches
// "x".
func notModified(r *http.Request, tag string) bool {
	for _, v := range r.Header.Values("If-None-Match") {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == tag {
				return true
			}
		}
	}
	return false
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (and does not give it q=0).
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(enc) != "*" {
				continue
			}
			params = strings.ReplaceAll(params, " ", "")
			if q, ok := strings.CutPrefix(params, "q="); ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					return false
				}
			}
			return true
		}
	}
	return false
}

// Export writes the site into dir (created if needed): the page, its
// assets, explain.wasm and explain.wasm.gz. Any static file server can
// serve the result; it should send explain.wasm as application/wasm (the
// page falls back to a slower load when it does not).
func Export(dir string) error {
	if dir == "" {
		return errors.New("site: export directory not set")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		b, err := fs.ReadFile(static, "static/"+f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return err
		}
	}
	b, err := Wasm()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, WasmName), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, WasmName+".gz"), WasmGzip(), 0o644)
}
