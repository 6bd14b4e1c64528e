package export_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
)

func TestRunReportsProgress(t *testing.T) {
	_, client := startFake(t, workostest.Config{Seed: 7, Directories: 3, UsersPerDirectory: 300, GroupsPerDirectory: 4, Latency: 2 * time.Millisecond}, nil)
	dst, err := objstore.Open(context.Background(), t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []export.Status
	var logs bytes.Buffer
	cfg := testConfig()
	cfg.ProgressEvery = 20 * time.Millisecond
	cfg.PerDirectoryRate, cfg.GlobalRate = 4, 100 // the ETA's bound (the client is not paced)
	ex := &export.Exporter{Client: client, Store: dst, Config: cfg,
		Log:        slog.New(slog.NewJSONHandler(&syncWriter{w: &logs}, nil)),
		WatchEvery: 5 * time.Millisecond,
		Watch: func(s export.Status) {
			mu.Lock()
			seen = append(seen, s)
			mu.Unlock()
		}}
	res, err := ex.Run(context.Background(), export.Target{Date: "2026-11-28", Time: snapTime})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	last := seen[len(seen)-1]
	if len(seen) < 3 || !last.Final || last.DirectoriesDone != 3 || last.DirectoriesTotal != 3 || last.UsersExpected != 900 {
		t.Fatalf("progress %d calls, last %+v: want several, the last final with 3 of 3 directories and 900 users expected", len(seen), last)
	}
	if last.Rows[schema.TableDirectoryUsers] != res.Manifest.Tables[schema.TableDirectoryUsers].Rows || last.Requests == 0 {
		t.Errorf("final progress rows %v requests %d, manifest %d users", last.Rows, last.Requests, res.Manifest.Tables[schema.TableDirectoryUsers].Rows)
	}
	if first := seen[0]; first.DirectoriesDone != 0 || first.ETA <= 0 {
		t.Errorf("first progress %+v: want nothing done and a positive ETA from the counts", first)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].DirectoriesDone < seen[i-1].DirectoriesDone || seen[i].RowsTotal() < seen[i-1].RowsTotal() {
			t.Fatalf("progress went backwards: %+v then %+v", seen[i-1], seen[i])
		}
	}
	if !strings.Contains(logs.String(), `"msg":"export progress"`) || !strings.Contains(logs.String(), `"eta"`) || !strings.Contains(logs.String(), `"rate_limited"`) {
		t.Errorf("no progress log line with eta and rate_limited:\n%s", logs.String())
	}
}
