package site_test

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The explainer's size budget: the WebAssembly binary must stay within
// maxWasm bytes, or within maxWasmGzip bytes once compressed with gzip -9.
// A minimal syscall/js program is about 1.92 MB (571 KB compressed); the
// explainer stays near it by keeping package time, fmt, reflection and the
// standard library's crypto out of its build (docs/performance.md).
const (
	maxWasm     = 2_500_000
	maxWasmGzip = 700_000
)

// withinBudget reports whether a binary of raw bytes, gz compressed, fits.
func withinBudget(raw, gz int) bool { return raw <= maxWasm || gz <= maxWasmGzip }

// gzip9 compresses b as gzip -9 does (compress/gzip at its best level, a
// few hundred bytes from the gzip command's output).
func gzip9(t *testing.T, b []byte) int {
	t.Helper()
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Len()
}

// TestWasmBudget checks the committed binary and a fresh build of the
// current sources against the budget.
func TestWasmBudget(t *testing.T) {
	raw := committed(t, "explain.wasm")
	gz := gzip9(t, raw)
	t.Logf("committed explain.wasm: %d bytes, %d gzip -9 (budget %d raw or %d gzip)", len(raw), gz, maxWasm, maxWasmGzip)
	if !withinBudget(len(raw), gz) {
		t.Errorf("committed explain.wasm is %d bytes (%d gzip): over the budget of %d bytes or %d gzip", len(raw), gz, maxWasm, maxWasmGzip)
	}
	if testing.Short() {
		t.Skip("SIZE BUDGET OF A FRESH BUILD NOT CHECKED in -short mode")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("SIZE BUDGET OF A FRESH BUILD NOT CHECKED: no go command on PATH")
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "../internal/wasmbuild", "-out", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wasmbuild: %v\n%s", err, out)
	}
	fresh, err := os.ReadFile(filepath.Join(dir, "explain.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	fgz := gzip9(t, fresh)
	t.Logf("fresh explain.wasm: %d bytes, %d gzip -9", len(fresh), fgz)
	if !withinBudget(len(fresh), fgz) {
		t.Errorf("explain.wasm built from the sources is %d bytes (%d gzip): over the budget of %d bytes or %d gzip; see docs/performance.md for what keeps it small", len(fresh), fgz, maxWasm, maxWasmGzip)
	}
}

// TestWasmDeps keeps out of the explainer's build the packages that made it
// large: package time (its initialisation alone is about 230 KB), fmt,
// os and the standard library's crypto (crypto/rand links math/big and
// fmt), and reflection in the explainer's own packages.
func TestWasmDeps(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("WASM DEPENDENCIES NOT CHECKED: no go command on PATH")
	}
	list := func(format string, pkgs ...string) []string {
		t.Helper()
		cmd := exec.Command("go", append([]string{"list", "-f", format}, pkgs...)...)
		cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	banned := map[string]bool{}
	for _, p := range []string{"time", "fmt", "os", "io/fs", "log/slog", "encoding/json", "encoding/hex", "net/http",
		"math/big", "crypto/rand", "crypto/sha256", "crypto/hkdf", "crypto/hmac"} {
		banned[p] = true
	}
	for _, dep := range list(`{{join .Deps "\n"}}`, "..") {
		if banned[dep] {
			t.Errorf("the js/wasm build of the explainer links %s", dep)
		}
	}
	// encoding/binary imports reflect, which the linker then mostly drops;
	// the explainer itself must not use it.
	for _, imp := range list(`{{join .Imports "\n"}}`, "..", "../explain") {
		if imp == "reflect" {
			t.Error("the explainer's js/wasm build imports reflect (convert_js.go converts through tables)")
		}
	}
}
