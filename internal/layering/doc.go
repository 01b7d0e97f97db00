// Package layering holds the test that keeps the project's dependencies
// pointing one way: cookie and packet import nothing of ours, driver imports
// them, cmd wires everything. It has no code of its own.
package layering
