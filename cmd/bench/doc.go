// Command bench is `make bench`: it measures dsync-export against the
// in-process WorkOS fake (internal/testenv/workostest, on a loopback listener) and
// prints one Markdown report that users can reproduce on their own machine:
//
//  1. ratelimited: wall time against the lower bound that WorkOS's rate limits
//     impose (4 req/s per directory on /directory_users, 6,000 req/min per
//     key) with 50 ms latency, on three dataset shapes; requests, 429s, retries.
//  2. throughput: rows/s and CPU time per 1,000 users on one core (a child
//     process with GOMAXPROCS=1), the whole pipeline against a fetch-and-decode
//     baseline of the same pages.
//  3. memory: peak RSS of the functions/export binary, one child process per
//     size, for 10k, 100k and 1M users in one directory.
//  4. output: Parquet bytes written against JSON bytes received, per table.
//  5. peer: the official WorkOS Node SDK with auto-pagination (bench/peer)
//     against the same rate-limited fake; skipped with a message without Node.
//
// Usage, from the repository root:
//
//	go run ./cmd/bench                          # everything, about 6 minutes on 2 cores
//	go run ./cmd/bench --quick                  # small datasets, under a minute
//	go run ./cmd/bench --only ratelimited,peer  # some sections
//	go run ./cmd/bench --out bench.md           # also write the report to a file
//
// Benchmarks print figures; they assert nothing about timings.
package main
