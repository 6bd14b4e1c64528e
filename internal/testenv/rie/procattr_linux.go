package rie

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup puts the emulator in its own process group, so Close can
// signal it together with the bootstrap it started, and has the kernel kill
// the emulator if this process dies first.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killProcessGroup sends SIGKILL to the emulator's process group.
func killProcessGroup(cmd *exec.Cmd) error {
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// processGone reports whether a kill failed only because nothing was left to
// kill.
func processGone(err error) bool {
	return errors.Is(err, syscall.ESRCH) || errors.Is(err, os.ErrProcessDone)
}
