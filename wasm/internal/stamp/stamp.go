// Package stamp records what the committed WebAssembly binary was built from:
// the Go version and a hash of every module source file it compiles, so a
// test can tell when the binary is stale.
package stamp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Pkg is the package compiled to WebAssembly.
const Pkg = "github.com/synproxy-lite/synproxy-lite/wasm"

// Stamp is the content of explain.wasm.stamp.
type Stamp struct {
	Go      string // go version, e.g. go1.26.8
	Sources string // sha256 over the module's source files the binary compiles, and go.mod/go.sum
	Wasm    string // sha256 of explain.wasm
	Gzip    string // sha256 of explain.wasm.gz
}

// Marshal renders s as "key value" lines.
func (s Stamp) Marshal() []byte {
	return []byte("go " + s.Go + "\nsources " + s.Sources + "\nwasm " + s.Wasm + "\ngzip " + s.Gzip + "\n")
}

// Parse reads what Marshal wrote.
func Parse(b []byte) (Stamp, error) {
	var s Stamp
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			return s, errors.New("stamp: bad line " + line)
		}
		switch k {
		case "go":
			s.Go = v
		case "sources":
			s.Sources = v
		case "wasm":
			s.Wasm = v
		case "gzip":
			s.Gzip = v
		default:
			return s, errors.New("stamp: unknown key " + k)
		}
	}
	if s.Go == "" || s.Sources == "" || s.Wasm == "" || s.Gzip == "" {
		return s, errors.New("stamp: incomplete")
	}
	return s, nil
}

// Sum returns the hex sha256 of b.
func Sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ModuleRoot returns the directory of go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("stamp: not inside the module")
	}
	return filepath.Dir(mod), nil
}

// Sources hashes, in a fixed order, the path and content of every Go file of
// this module that the js/wasm build of Pkg compiles, plus go.mod and go.sum.
func Sources(root string) (string, error) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}{{end}}", Pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", errors.New("stamp: go list: " + err.Error() + ": " + stderr.String())
	}
	var files []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		for _, name := range f[1:] {
			files = append(files, filepath.Join(f[0], name))
		}
	}
	files = append(files, filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum"))
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, err := filepath.Rel(root, f)
		if err != nil {
			return "", err
		}
		h.Write([]byte(filepath.ToSlash(rel) + "\x00"))
		h.Write([]byte(Sum(b) + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
