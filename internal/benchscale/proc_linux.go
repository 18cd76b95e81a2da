package benchscale

import (
	"os/exec"
	"syscall"
)

// dieWithParent has cmd's process killed when the benchmark dies before
// its deferred stops (SIGKILL, a panic): a worker left behind would load
// the machine of every later run. (The signal follows the OS thread that
// started the process; nothing here locks a goroutine to a thread, so
// that thread lives as long as the benchmark.)
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
