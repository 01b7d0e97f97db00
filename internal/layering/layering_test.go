package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/synproxy-lite/synproxy-lite"

// netlabModules are the modules the lab needs: google/nftables (for the
// synproxy ruleset) with its own dependencies, and x/sys.
var netlabModules = []string{"github.com/google/nftables", "github.com/mdlayher", "golang.org/x/net",
	"golang.org/x/sync", "golang.org/x/sys"}

// rules lists, per package pattern, which of our packages it may import and
// which third-party modules it may import (standard library always allowed).
var rules = []struct {
	pkg        string
	goos       string
	ours       []string // allowed prefixes of our own packages (besides itself)
	thirdParty []string // allowed module prefixes; "*" allows any
}{
	{"./cookie", "", nil, []string{"github.com/dchest/siphash"}},
	{"./cookie", "js", nil, []string{"github.com/dchest/siphash"}},
	{"./packet", "", nil, nil},
	{"./packet", "js", nil, nil},
	{"./driver/...", "", []string{"cookie", "packet", "driver"}, []string{"*"}},
	// The driver contract: the standard library (and x/sys) only, so a
	// driver depends on neither the engine nor its metrics.
	{"./driver", "", nil, []string{"golang.org/x/sys"}},
	{"./driver", "js", nil, []string{"golang.org/x/sys"}},
	{"./wasm/...", "", []string{"cookie", "packet", "wasm"}, []string{"*"}},
	{"./wasm/...", "js", []string{"cookie", "packet", "wasm"}, []string{"github.com/dchest/siphash"}},
	{"./fuzz/...", "", []string{"cookie", "packet", "driver", "fuzz", "internal/netlab"}, []string{"*"}},
	{"./internal/netlab/...", "", []string{"packet"}, netlabModules},
	{"./internal/flood", "", []string{"packet"}, []string{"golang.org/x/sys"}},
	{"./bgp", "", nil, nil},
	{"./internal/promtext", "", nil, nil},
	{"./internal/sdnotify", "", nil, nil},
	{"./internal/demo", "", []string{"packet", "internal/netlab", "internal/flood", "internal/promtext"}, netlabModules},
}

func TestLayering(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("LAYERING NOT CHECKED: no go command on PATH")
	}
	for _, r := range rules {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", r.pkg)
		cmd.Dir = "../.."
		if r.goos != "" {
			cmd.Env = append(cmd.Environ(), "GOOS="+r.goos, "GOARCH=wasm")
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", r.pkg, err, out)
		}
		self := module + strings.TrimSuffix(strings.TrimPrefix(r.pkg, "."), "/...")
		tree := strings.HasSuffix(r.pkg, "/...")
		for _, dep := range strings.Fields(string(out)) {
			if dep == self || tree && strings.HasPrefix(dep, self+"/") {
				continue
			}
			if allowed(dep, r.ours, r.thirdParty) {
				continue
			}
			t.Errorf("%s (GOOS=%s) imports %s, which the layering does not allow", r.pkg, r.goos, dep)
		}
	}
}

// forbidden lists, per package pattern, module prefixes it must not depend
// on, directly or not.
var forbidden = []struct {
	pkg  string
	deps []string
}{
	// Prometheus is the business of driver/metrics and cmd: the engine,
	// the drivers and the library package driver/proxy compile without
	// client_golang and protobuf.
	{"./driver", []string{"github.com/prometheus/", "google.golang.org/protobuf"}},
	{"./driver/engine", []string{"github.com/prometheus/", "google.golang.org/protobuf"}},
	{"./driver/nfqueue", []string{"github.com/prometheus/", "google.golang.org/protobuf"}},
	{"./driver/afpacket", []string{"github.com/prometheus/", "google.golang.org/protobuf"}},
	{"./driver/afxdp", []string{"github.com/prometheus/", "google.golang.org/protobuf"}},
	{"./driver/handoff", []string{"github.com/prometheus/", "google.golang.org/protobuf"}},
	{"./driver/proxy", []string{"github.com/prometheus/", "google.golang.org/protobuf"}},
}

func TestForbidden(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("LAYERING NOT CHECKED: no go command on PATH")
	}
	for _, r := range forbidden {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", r.pkg)
		cmd.Dir = "../.."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", r.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range r.deps {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s imports %s, which the layering forbids", r.pkg, dep)
				}
			}
		}
	}
}

func allowed(dep string, ours, third []string) bool {
	if strings.HasPrefix(dep, module) {
		for _, o := range ours {
			if strings.HasPrefix(dep, module+"/"+o) {
				return true
			}
		}
		return false
	}
	for _, p := range third {
		if p == "*" || dep == p || strings.HasPrefix(dep, p+"/") {
			return true
		}
	}
	return false
}

// stdRules lists standard-library packages a package must not import, for
// the packages that build for js/wasm: there each of them adds to the
// explainer's binary, and key files and logging belong to the daemon. direct
// forbids them among the package's own imports, deps among everything it
// links (cookie reaches fmt and os through crypto/rand and math/big, which
// the linker mostly drops; it must not reach them itself).
var stdRules = []struct {
	pkg    string
	goos   string
	direct []string
	deps   []string
}{
	{"./cookie", "js", []string{"os", "io/fs", "fmt", "log/slog", "encoding/hex", "encoding/json"}, []string{"log/slog", "encoding/json", "encoding/hex"}},
	{"./cookie", "", []string{"os", "io/fs", "fmt", "encoding/hex", "encoding/json"}, nil},
	{"./packet", "js", nil, []string{"os", "io/fs", "fmt", "log/slog", "encoding/json"}},
	{"./packet", "", nil, []string{"os", "io/fs", "fmt", "log/slog", "encoding/json"}},
}

func TestStandardLibrary(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("LAYERING NOT CHECKED: no go command on PATH")
	}
	for _, r := range stdRules {
		for _, which := range []struct {
			name, format string
			banned       []string
		}{
			{"imports", "{{join .Imports \"\\n\"}}", r.direct},
			{"links", "{{join .Deps \"\\n\"}}", r.deps},
		} {
			if len(which.banned) == 0 {
				continue
			}
			cmd := exec.Command("go", "list", "-f", which.format, r.pkg)
			cmd.Dir = "../.."
			if r.goos != "" {
				cmd.Env = append(cmd.Environ(), "GOOS="+r.goos, "GOARCH=wasm")
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go list %s: %v\n%s", r.pkg, err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				for _, b := range which.banned {
					if dep == b {
						t.Errorf("%s (GOOS=%s) %s %s, which the layering does not allow", r.pkg, r.goos, which.name, dep)
					}
				}
			}
		}
	}
}

// importers lists packages of ours that only some of ours may import:
// the daemon's configuration and the capture report serve the command
// (and packaging's tests, which parse the guide's configuration snippets).
var importers = []struct {
	pkg     string   // below the module
	allowed []string // prefixes below the module, besides pkg itself
}{
	{"internal/config", []string{"cmd/", "packaging"}},
	{"internal/inspect", []string{"cmd/"}},
	{"internal/sdnotify", []string{"cmd/"}},
}

func TestImporters(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("LAYERING NOT CHECKED: no go command on PATH")
	}
	cmd := exec.Command("go", "list", "-test", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		// Test variants read "pkg [pkg.test]"; the test main is "pkg.test".
		from := strings.TrimPrefix(f[0], module+"/")
		for _, imp := range f[1:] {
			for _, r := range importers {
				if imp != module+"/"+r.pkg {
					continue
				}
				ok := from == r.pkg || strings.HasPrefix(from, r.pkg+"_test") || strings.HasPrefix(from, r.pkg+".test")
				for _, a := range r.allowed {
					ok = ok || strings.HasPrefix(from, a)
				}
				if !ok {
					t.Errorf("%s imports %s, which only %v may import", f[0], r.pkg, r.allowed)
				}
			}
		}
	}
}
