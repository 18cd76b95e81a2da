//go:build !linux

package benchscale

import "os/exec"

// dieWithParent does nothing where there is no parent-death signal: the
// benchmark's deferred stops are all that end its processes.
func dieWithParent(*exec.Cmd) {}
