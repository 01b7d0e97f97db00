package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/synproxy-lite/synproxy-lite/driver/metrics"
	"github.com/synproxy-lite/synproxy-lite/internal/version"
)

func init() {
	register("version", "print the version, VCS revision and Go version of this build", runVersion)
}

const versionUsage = `usage: synproxy-lite version [--json]
       synproxy-lite --version

Prints the build of this binary, from the information the Go toolchain
embeds in it: the module version (or (devel)), the VCS revision, its time
and whether the tree was modified, the Go version and the platform.
`

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", versionUsage, stdout)
	asJSON := fs.Bool("json", false, "print the build as one JSON object")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "synproxy-lite version: %v\n", err)
		return exitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "synproxy-lite version: unexpected argument %q (version takes only --json)\n", fs.Arg(0))
		return exitUsage
	}
	return printVersion(version.Read(), *asJSON, stdout, stderr)
}

func printVersion(v version.Info, asJSON bool, stdout, stderr io.Writer) int {
	if !asJSON {
		fmt.Fprintln(stdout, "synproxy-lite", v)
		return exitOK
	}
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(stderr, "synproxy-lite version: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return exitOK
}

// buildInfo is the build as the metrics label it (synproxy_lite_build_info).
func buildInfo() metrics.BuildInfo {
	v := version.Read()
	return metrics.BuildInfo{Version: v.Version, Revision: v.Revision, GoVersion: v.GoVersion}
}
