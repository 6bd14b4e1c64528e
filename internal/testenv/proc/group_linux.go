package proc

import (
	"os/exec"
	"syscall"
)

// setGroup puts cmd in its own process group, and has the kernel kill it if
// this process dies first.
func setGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
