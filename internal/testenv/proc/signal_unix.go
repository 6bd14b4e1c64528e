//go:build unix

package proc

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// terminateGroup sends SIGTERM to the process group pgid.
func terminateGroup(pgid int) error { return syscall.Kill(-pgid, syscall.SIGTERM) }

// killGroup sends SIGKILL to cmd's process group.
func killGroup(cmd *exec.Cmd) error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

// gone reports whether a signal failed only because nothing was left to
// signal.
func gone(err error) bool { return errors.Is(err, syscall.ESRCH) || errors.Is(err, os.ErrProcessDone) }

// Alive reports whether a process with this pid exists.
func Alive(pid int) bool { return syscall.Kill(pid, 0) == nil }
