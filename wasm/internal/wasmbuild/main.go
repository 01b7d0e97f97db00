// Command wasmbuild builds the explainer's WebAssembly binary into
// wasm/site/static: explain.wasm (GOOS=js GOARCH=wasm, -trimpath, symbols
// stripped, package explain without inlining), explain.wasm.gz (gzip -9, no name or time, so the bytes are
// reproducible), wasm_exec.js copied from the Go installation, and
// explain.wasm.stamp recording the Go version and a hash of the sources.
//
// Usage (from anywhere in the module; go generate ./wasm/... runs it):
//
//	go run ./wasm/internal/wasmbuild [-out DIR]
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/synproxy-lite/synproxy-lite/wasm/internal/stamp"
)

func main() {
	out := flag.String("out", "", "output directory (default: wasm/site/static of the module)")
	flag.Parse()
	if err := build(*out); err != nil {
		fmt.Fprintln(os.Stderr, "wasmbuild:", err)
		os.Exit(1)
	}
}

func build(out string) error {
	root, err := stamp.ModuleRoot()
	if err != nil {
		return err
	}
	if out == "" {
		out = filepath.Join(root, "wasm", "site", "static")
	}
	out, err = filepath.Abs(out)
	if err != nil {
		return err
	}
	st, err := Build(root, out)
	if err != nil {
		return err
	}
	fmt.Printf("wasmbuild: %s: explain.wasm %d bytes, explain.wasm.gz %d bytes (%s)\n", out, st.raw, st.gz, runtime.Version())
	return nil
}

type sizes struct{ raw, gz int }

// NoInline is the package compiled without inlining: package explain's
// code is long straight-line text building, and Go's WebAssembly backend
// makes every call a point where the goroutine can be suspended, so each
// inlined body costs its call sites over again (about 32 KB in all). The
// hot loops (the forger, the search) spend their time in package cookie,
// which keeps inlining; the page computes no slower.
const NoInline = stamp.Pkg + "/explain"

// Build writes the four files into out.
func Build(root, out string) (sizes, error) {
	wasmPath := filepath.Join(out, "explain.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-gcflags="+NoInline+"=-l", "-o", wasmPath, stamp.Pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return sizes{}, fmt.Errorf("go build: %w", err)
	}
	if err := os.Chmod(wasmPath, 0o644); err != nil {
		return sizes{}, err
	}
	raw, err := os.ReadFile(wasmPath)
	if err != nil {
		return sizes{}, err
	}
	gz, err := Gzip(raw)
	if err != nil {
		return sizes{}, err
	}
	if err := os.WriteFile(wasmPath+".gz", gz, 0o644); err != nil {
		return sizes{}, err
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return sizes{}, err
	}
	execJS, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		return sizes{}, err
	}
	if err := os.WriteFile(filepath.Join(out, "wasm_exec.js"), execJS, 0o644); err != nil {
		return sizes{}, err
	}
	src, err := stamp.Sources(root)
	if err != nil {
		return sizes{}, err
	}
	ver, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return sizes{}, err
	}
	s := stamp.Stamp{Go: strings.TrimSpace(string(ver)), Sources: src, Wasm: stamp.Sum(raw), Gzip: stamp.Sum(gz)}
	if err := os.WriteFile(filepath.Join(out, "explain.wasm.stamp"), s.Marshal(), 0o644); err != nil {
		return sizes{}, err
	}
	return sizes{len(raw), len(gz)}, nil
}

// Gzip compresses b at the best level with an empty header (no name, no
// time), so the output depends on b alone.
func Gzip(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
