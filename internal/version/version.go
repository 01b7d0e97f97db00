package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Devel is the version of a main module built from a working tree without
// a version of its own (go run, go test, go build without a VCS tag).
const Devel = "(devel)"

// ShortRevisionLen is how many characters of the VCS revision the one-line
// form shows.
const ShortRevisionLen = 12

// Info describes one build. The JSON names are those of `synproxy-lite
// version --json`.
type Info struct {
	// Version is the main module's version (v1.2.3, a pseudo-version) or
	// Devel.
	Version string `json:"version"`
	// Revision is the VCS revision (a full commit hash), empty when the
	// build recorded none.
	Revision string `json:"revision"`
	// Time is the revision's commit time, RFC 3339, empty when unknown.
	Time string `json:"time"`
	// Modified reports that the working tree had uncommitted changes.
	Modified bool `json:"modified"`
	// GoVersion is the toolchain that built the binary (go1.26.0).
	GoVersion string `json:"go_version"`
	// Platform is GOOS/GOARCH of the binary (linux/amd64).
	Platform string `json:"platform"`
}

// FromBuildInfo returns the Info that bi records. A nil bi (a binary built
// without module support) gives Devel and nothing else; so does an empty
// main module version. The platform comes from the GOOS and GOARCH build
// settings, empty when bi has none.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	i := Info{Version: Devel}
	if bi == nil {
		return i
	}
	if bi.Main.Version != "" {
		i.Version = bi.Main.Version
	}
	i.GoVersion = bi.GoVersion
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		i.Platform = goos + "/" + goarch
	}
	return i
}

// Read returns the running binary's Info. What the build information lacks
// (the Go version and platform of a binary built without it) is taken from
// the runtime.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	i := FromBuildInfo(bi)
	if i.GoVersion == "" {
		i.GoVersion = runtime.Version()
	}
	if i.Platform == "" {
		i.Platform = runtime.GOOS + "/" + runtime.GOARCH
	}
	return i
}

// ShortRevision is the revision cut to ShortRevisionLen characters.
func (i Info) ShortRevision() string {
	if len(i.Revision) > ShortRevisionLen {
		return i.Revision[:ShortRevisionLen]
	}
	return i.Revision
}

// String is the one-line form, without the program's name:
//
//	v1.2.3 (rev abc123def456, 2026-12-03T10:00:00Z, modified) go1.26.0 linux/amd64
//
// The parenthesis lists only what the build recorded and is left out when
// it recorded none of it.
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	var vcs []string
	if i.Revision != "" {
		vcs = append(vcs, "rev "+i.ShortRevision())
	}
	if i.Time != "" {
		vcs = append(vcs, i.Time)
	}
	if i.Modified {
		vcs = append(vcs, "modified")
	}
	if len(vcs) > 0 {
		b.WriteString(" (" + strings.Join(vcs, ", ") + ")")
	}
	for _, s := range []string{i.GoVersion, i.Platform} {
		if s != "" {
			b.WriteString(" " + s)
		}
	}
	return b.String()
}
