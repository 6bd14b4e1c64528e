//go:build !unix

package proc

import (
	"errors"
	"os"
	"os/exec"
)

// setGroup does nothing where process groups do not exist.
func setGroup(cmd *exec.Cmd) {}

// terminateGroup is unsupported without process groups: Stop kills at once.
func terminateGroup(pgid int) error { return errors.ErrUnsupported }

// killGroup kills cmd's process.
func killGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }

// gone reports whether a kill failed only because the process had exited.
func gone(err error) bool { return errors.Is(err, os.ErrProcessDone) }

// Alive reports whether a process with this pid exists.
func Alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}
