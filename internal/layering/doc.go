// Package layering holds the tests that keep the project's dependencies
// pointing one way: cookie and packet import nothing of ours, driver imports
// them, cmd wires everything; the driver contract (package driver) imports
// only the standard library and x/sys, and only driver/metrics and cmd
// import the Prometheus client. It has no code of its own.
package layering
