//go:build !unix

package main

import (
	"os"
	"time"
)

// cpuTime is not measured on this platform.
func cpuTime() (user, sys time.Duration, ok bool) { return 0, 0, false }

// peakRSS is not measured on this platform.
func peakRSS(*os.ProcessState) (int64, bool) { return 0, false }
