//go:build !linux

package awstest

import "syscall"

// sysProcAttr puts the server in its own process group so cleanup can signal
// the group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
