//go:build unix && !linux

package proc

import (
	"os/exec"
	"syscall"
)

// setGroup puts cmd in its own process group.
func setGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
