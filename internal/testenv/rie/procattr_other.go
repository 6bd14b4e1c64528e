//go:build !unix

package rie

import (
	"errors"
	"os"
	"os/exec"
)

// setProcessGroup does nothing where process groups do not exist.
func setProcessGroup(cmd *exec.Cmd) {}

// killProcessGroup kills the emulator process.
func killProcessGroup(cmd *exec.Cmd) error {
	return cmd.Process.Kill()
}

// processGone reports whether a kill failed only because the process had
// exited.
func processGone(err error) bool {
	return errors.Is(err, os.ErrProcessDone)
}
