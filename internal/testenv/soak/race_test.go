//go:build race

package soak_test

// raceEnabled says whether the test binary runs under the race detector; the
// export binary of the kill test is then built with -race as well (it reuses
// the race-instrumented build cache and checks the binary for races too).
const raceEnabled = true
