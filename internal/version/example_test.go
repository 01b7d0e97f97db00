package version_test

import (
	"fmt"
	"runtime/debug"

	"github.com/synproxy-lite/synproxy-lite/internal/version"
)

// A binary reads its own with version.Read(); FromBuildInfo takes any.
func ExampleFromBuildInfo() {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"},
			{Key: "vcs.revision", Value: "abc123def4567890abc123def4567890abc123de"},
			{Key: "vcs.time", Value: "2026-12-03T10:00:00Z"}, {Key: "vcs.modified", Value: "false"},
		}}
	fmt.Println("synproxy-lite", version.FromBuildInfo(bi))
	// Output:
	// synproxy-lite v1.2.3 (rev abc123def456, 2026-12-03T10:00:00Z) go1.26.0 linux/amd64
}
