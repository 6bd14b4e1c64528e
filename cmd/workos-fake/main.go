// Command workos-fake serves a fake WorkOS Directory Sync API on a local port,
// for the demo (make run) and for developing without a WorkOS account.
//
//	go run ./cmd/workos-fake --directories 3 --users 1000 --groups 10
//
// It prints its base URL (http://127.0.0.1:4100/ by default) on a line of its
// own and serves until interrupted. --days N simulates N days of directory
// changes (--churn F of the users a day, default 0.01) before serving, which
// GET /events then lists; POST /_fake/advance?days=N&hours=H&churn=F moves
// the fake's clock on while it runs. --hostile makes GET /events misbehave
// (swapped pages, repeated cursors, early created_at, undecodable data,
// silent changes, double emission); GET /_fake/hostile reports what it did.
// Point any WorkOS SDK or the exporter at
// that URL with the API key sk_test_default (or --api-key). Run with --help
// for the flags; see package workostest for the data and the API behaviour.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
