package rie

import (
	"errors"
	"fmt"
)

// ErrNoFunction is returned by KillFunction when no function process runs:
// the emulator starts the bootstrap on the first invocation, and again on the
// invocation after one that killed it.
var ErrNoFunction = errors.New("rie: no function process is running (the emulator starts it on an invocation)")

// KillFunction sends SIGKILL to the function's process (the bootstrap, a
// child of the emulator), as when Lambda's runtime crashes or runs out of
// memory. An invocation in progress is answered with a *FunctionError of type
// Runtime.ExitError, and the emulator starts a new bootstrap for the next
// invocation, as Lambda does. It returns the pids killed, or ErrNoFunction.
// It is implemented on Linux only (it reads /proc).
func (e *Emulator) KillFunction() ([]int, error) {
	pids, err := children(e.proc.Pid())
	if err != nil {
		return nil, fmt.Errorf("rie: find the function process: %w", err)
	}
	if len(pids) == 0 {
		return nil, ErrNoFunction
	}
	var killed []int
	for _, pid := range pids {
		existed, err := kill(pid)
		if err != nil {
			return killed, fmt.Errorf("rie: kill the function process %d: %w", pid, err)
		}
		if existed {
			killed = append(killed, pid)
		}
	}
	if len(killed) == 0 {
		return nil, ErrNoFunction
	}
	return killed, nil
}

// FunctionPeakRSS returns the peak resident set size, in bytes, of the
// function's live process (VmHWM: its high-water mark since it started), or
// ErrNoFunction. Linux only.
func (e *Emulator) FunctionPeakRSS() (int64, error) {
	pids, err := children(e.proc.Pid())
	if err != nil {
		return 0, fmt.Errorf("rie: find the function process: %w", err)
	}
	if len(pids) == 0 {
		return 0, ErrNoFunction
	}
	var peak int64
	for _, pid := range pids {
		n, err := highWaterMark(pid)
		if err != nil {
			return 0, fmt.Errorf("rie: peak RSS of the function process %d: %w", pid, err)
		}
		peak = max(peak, n)
	}
	return peak, nil
}
