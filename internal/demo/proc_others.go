//go:build !linux

package demo

import "os/exec"

// dieWithParent does nothing: only Linux has a parent-death signal (and
// the lab).
func dieWithParent(cmd *exec.Cmd) {}
