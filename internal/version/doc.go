// Package version says which build of synproxy-lite is running, from the
// build information the Go toolchain embeds in every binary
// (runtime/debug.ReadBuildInfo): the main module's version, the VCS
// revision, its commit time and whether the tree had uncommitted changes,
// the Go version and the target platform.
//
// FromBuildInfo is a pure function over a *debug.BuildInfo, so its tests
// pass a fake one; Read applies it to the running binary's.
//
// What each way of building records:
//
//	go install <module>/cmd/synproxy-lite@v1.2.3   version v1.2.3, no VCS settings
//	go build or make build in a git checkout      a pseudo-version or (devel), vcs.revision, vcs.time, vcs.modified
//	go run, go test                               (devel), no VCS settings
package version
