package version

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"testing"
)

func settings(kv ...string) []debug.BuildSetting {
	var s []debug.BuildSetting
	for i := 0; i+1 < len(kv); i += 2 {
		s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
	}
	return s
}

const rev = "abc123def4567890abc123def4567890abc123de"

func TestFromBuildInfo(t *testing.T) {
	for _, c := range []struct {
		name string
		bi   *debug.BuildInfo
		want Info
		line string
	}{
		{"nil", nil, Info{Version: Devel}, "(devel)"},
		{"go install at a tag", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"},
			Settings: settings("GOOS", "linux", "GOARCH", "amd64")},
			Info{Version: "v1.2.3", GoVersion: "go1.26.0", Platform: "linux/amd64"},
			"v1.2.3 go1.26.0 linux/amd64"},
		{"checkout with changes", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"},
			Settings: settings("-trimpath", "true", "GOOS", "linux", "GOARCH", "amd64",
				"vcs", "git", "vcs.revision", rev, "vcs.time", "2026-12-03T10:00:00Z", "vcs.modified", "true")},
			Info{Version: "v1.2.3", Revision: rev, Time: "2026-12-03T10:00:00Z", Modified: true,
				GoVersion: "go1.26.8", Platform: "linux/amd64"},
			"v1.2.3 (rev abc123def456, 2026-12-03T10:00:00Z, modified) go1.26.8 linux/amd64"},
		{"clean checkout, no module version", &debug.BuildInfo{GoVersion: "go1.26.0",
			Settings: settings("GOOS", "linux", "GOARCH", "arm64",
				"vcs.revision", rev, "vcs.time", "2026-12-03T10:00:00Z", "vcs.modified", "false")},
			Info{Version: Devel, Revision: rev, Time: "2026-12-03T10:00:00Z", GoVersion: "go1.26.0", Platform: "linux/arm64"},
			"(devel) (rev abc123def456, 2026-12-03T10:00:00Z) go1.26.0 linux/arm64"},
		{"short revision, no time", &debug.BuildInfo{Main: debug.Module{Version: Devel},
			Settings: settings("vcs.revision", "abc", "GOOS", "js")},
			Info{Version: Devel, Revision: "abc"},
			"(devel) (rev abc)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := FromBuildInfo(c.bi)
			if got != c.want {
				t.Errorf("FromBuildInfo = %+v, want %+v", got, c.want)
			}
			if s := got.String(); s != c.line {
				t.Errorf("String = %q, want %q", s, c.line)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	b, err := json.Marshal(Info{Version: "v1.2.3", Revision: rev, Time: "2026-12-03T10:00:00Z", Modified: true,
		GoVersion: "go1.26.8", Platform: "linux/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"v1.2.3","revision":"` + rev + `","time":"2026-12-03T10:00:00Z","modified":true,"go_version":"go1.26.8","platform":"linux/amd64"}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
}

// TestRead: the test binary's own build information always names a Go
// version and a platform, those of the runtime.
func TestRead(t *testing.T) {
	i := Read()
	if i.Version == "" {
		t.Error("empty version")
	}
	if i.GoVersion != runtime.Version() {
		t.Errorf("GoVersion = %q, want %q", i.GoVersion, runtime.Version())
	}
	if want := runtime.GOOS + "/" + runtime.GOARCH; i.Platform != want {
		t.Errorf("Platform = %q, want %q", i.Platform, want)
	}
}
