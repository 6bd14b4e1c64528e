// Package soak holds the fault soak of dsync-export. It has no code of its
// own: its tests run whole exports against the WorkOS fake (internal/testenv/workostest)
// with injected faults, into a real S3 server (versitygw, internal/testenv/awstest), and
// check every snapshot with pkg/verify and row by row against the fake's
// dataset.
//
// TestSoak has three parts, all sharing one versitygw:
//
//   - seeds: one export per seed, each with its own dataset (1-5 directories,
//     50 to -users users and 2-12 groups per directory, legacy groups arrays
//     on some), membership mode (auto, by_group, by_user, legacy in turn),
//     concurrency, list order and part size, under 10% 5xx with HTML bodies,
//     5% 429 with Retry-After, 1% connection resets and 1% truncated bodies.
//     Every export must complete, verify must pass, and the exported rows must
//     equal the dataset exactly.
//   - killed: the functions/export binary is SIGKILLed while fetching, then
//     while committing; a third run must leave a valid snapshot whose objects
//     are exactly the manifest's.
//   - deadline: an export whose deadline expires returns export.ErrDeadline
//     and writes no manifest; a re-run removes what it left.
//
// The short form (3 seeds) runs in `make test`; `make soak` runs 50 or more:
//
//	go test -race -run TestSoak -count=1 ./internal/testenv/soak
//	go test -race -v -run TestSoak -count=1 -timeout 30m ./internal/testenv/soak -args -seeds=50
//	go test -race -v -run 'TestSoak/seeds/seed=17$' ./internal/testenv/soak -args -first-seed=17 -seeds=1
//
// The last line of the output is a summary: seeds run, faults injected by
// kind, retries, 429s and rows compared.
package soak
