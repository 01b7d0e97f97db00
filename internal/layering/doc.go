// Package layering holds the tests that keep the project's dependencies
// pointing one way: cookie and packet import nothing of ours, driver imports
// them, cmd wires everything; the driver contract (package driver) imports
// only the standard library and x/sys, and only driver/metrics and cmd
// import the Prometheus client; cookie and packet stay free of os, fmt and
// log/slog where they build for js/wasm; internal/config and
// internal/inspect serve the command only. It has no code of its own.
package layering
