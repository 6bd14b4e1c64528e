//go:build !race

package soak_test

// raceEnabled says whether the test binary runs under the race detector.
const raceEnabled = false
