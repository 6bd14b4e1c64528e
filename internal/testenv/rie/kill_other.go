//go:build !linux

package rie

import "errors"

// children is implemented on Linux only.
func children(parent int) ([]int, error) {
	return nil, errors.ErrUnsupported
}

// kill is implemented on Linux only.
func kill(pid int) (existed bool, err error) {
	return false, errors.ErrUnsupported
}

// highWaterMark is implemented on Linux only.
func highWaterMark(pid int) (int64, error) {
	return 0, errors.ErrUnsupported
}
