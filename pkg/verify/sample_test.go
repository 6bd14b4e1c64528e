package verify

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// workosEnv is the fake WorkOS server behind an httptest server whose
// responses for single objects a test can rewrite.
type workosEnv struct {
	fake   *workostest.Server
	client *workos.Client

	mu      sync.Mutex
	rewrite map[string]func(map[string]any) // path -> edit of the JSON object
	status  int                             // when set, every request gets it
}

func startWorkOS(t *testing.T) *workosEnv {
	t.Helper()
	fake, err := workostest.New(workostest.Config{Seed: 7, Directories: 2, UsersPerDirectory: 40, GroupsPerDirectory: 4})
	if err != nil {
		t.Fatal(err)
	}
	env := &workosEnv{fake: fake, rewrite: map[string]func(map[string]any){}}
	srv := httptest.NewServer(http.HandlerFunc(env.serve))
	t.Cleanup(srv.Close)
	env.client, err = workos.NewClient(workostest.DefaultAPIKey, workos.WithBaseURL(srv.URL+"/"),
		workos.WithRateLimits(workos.RateLimits{}), workos.WithMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func (e *workosEnv) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	edit, status := e.rewrite[r.URL.Path], e.status
	e.mu.Unlock()
	if status != 0 {
		http.Error(w, `{"message":"injected"}`, status)
		return
	}
	if edit == nil {
		e.fake.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	e.fake.ServeHTTP(rec, r)
	var obj map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &obj); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	edit(obj)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(obj)
}

// snapshotOf writes the fake's dataset as a snapshot, mapped exactly as the
// export maps it.
func (e *workosEnv) snapshotOf(t *testing.T, s objstore.Store) *fixture {
	t.Helper()
	fx := &fixture{}
	for _, d := range e.fake.Directories() {
		fx.dirs = append(fx.dirs, schema.FromDirectory(&d, exportedAt))
		for u := range e.fake.Users(d.ID) {
			fx.users = append(fx.users, schema.FromDirectoryUser(&u, exportedAt))
		}
		for g := range e.fake.Groups(d.ID) {
			fx.groups = append(fx.groups, schema.FromDirectoryGroup(&g, exportedAt))
		}
		for g, u := range e.fake.Memberships(d.ID) {
			fx.members = append(fx.members, schema.DirectoryGroupMembership{
				DirectoryID: d.ID, OrganizationID: d.OrganizationID, GroupID: g, UserID: u, ExportedAt: exportedAt,
			})
		}
	}
	fx.write(t, s)
	return fx
}

func sampleOpts(e *workosEnv, n int) Options {
	return Options{Sample: n, WorkOS: e.client, Rand: rand.New(rand.NewPCG(3, 4))}
}

func TestSampleMatches(t *testing.T) {
	t.Parallel()
	e := startWorkOS(t)
	s, _ := localSink(t)
	fx := e.snapshotOf(t, s)
	r := mustVerify(t, s, sampleOpts(e, 5))
	if !r.Valid {
		t.Fatalf("invalid:\n%s", r.JSONLines())
	}
	c, ok := r.Check(CheckSample)
	// 2 directories (all of them), 5 users, 5 groups.
	if !ok || !c.OK || !strings.Contains(c.Detail, "12 records re-fetched from WorkOS (up to 5 per table): 12 match") {
		t.Errorf("sample = %+v", c)
	}
	if len(fx.users) != 80 {
		t.Errorf("fixture has %d users", len(fx.users))
	}
}

func TestSampleDeletedIsAWarning(t *testing.T) {
	t.Parallel()
	e := startWorkOS(t)
	s, _ := localSink(t)
	e.snapshotOf(t, s)
	gone := e.fake.Directories()[0].ID
	if !e.fake.DeleteDirectory(gone) {
		t.Fatal("delete failed")
	}
	r := mustVerify(t, s, sampleOpts(e, 1000)) // every row
	c, _ := r.Check(CheckSample)
	if !r.Valid || !c.OK {
		t.Fatalf("deleted records failed the snapshot:\n%s", r.JSONLines())
	}
	// The directory, its 40 users and 4 groups.
	if c.WarningCount != 45 || !strings.Contains(c.Warnings[0], gone+" (directories/dt=2026-11-28/"+testRun+"-part-00000.parquet row 0) was deleted at WorkOS since the snapshot") {
		t.Errorf("warnings = %d %q", c.WarningCount, c.Warnings)
	}
}

// TestSampleAllMissingFails samples a snapshot none of whose records exist at
// WorkOS (every directory deleted, as with a key for another environment):
// that is not churn, and the sample check must fail.
func TestSampleAllMissingFails(t *testing.T) {
	t.Parallel()
	e := startWorkOS(t)
	s, _ := localSink(t)
	e.snapshotOf(t, s)
	for _, d := range e.fake.Directories() {
		e.fake.DeleteDirectory(d.ID)
	}
	r := mustVerify(t, s, sampleOpts(e, 5))
	c, _ := r.Check(CheckSample)
	if r.Valid || c.OK || len(c.Errors) == 0 || !strings.Contains(c.Errors[0], "none of the 12 sampled records exists at WorkOS") {
		t.Fatalf("sample check %+v, want a failure", c)
	}
}

func TestSampleMismatch(t *testing.T) {
	t.Parallel()
	e := startWorkOS(t)
	s, _ := localSink(t)
	fx := e.snapshotOf(t, s)
	same, changed, newer := fx.users[3], fx.users[4], fx.groups[1]
	e.rewrite["/directory_users/"+same.ID] = func(o map[string]any) { o["email"] = "someone.else@example.com" }
	e.rewrite["/directory_users/"+changed.ID] = func(o map[string]any) {
		o["state"] = "inactive"
		o["updated_at"] = changed.UpdatedAt.Add(time.Hour).Format(time.RFC3339Nano)
	}
	e.rewrite["/directory_groups/"+newer.ID] = func(o map[string]any) {
		o["updated_at"] = newer.UpdatedAt.Add(-time.Hour).Format(time.RFC3339Nano)
	}
	r := mustVerify(t, s, sampleOpts(e, 1000))
	wantFailure(t, r, CheckSample, same.ID, "differs from WorkOS although updated_at is unchanged", `email is "`+*same.Email+`" in the snapshot, "someone.else@example.com" at WorkOS`)
	wantFailure(t, r, CheckSample, newer.ID, "later than WorkOS's")
	c, _ := r.Check(CheckSample)
	if c.ErrorCount != 2 || c.WarningCount != 1 || !strings.Contains(c.Warnings[0], changed.ID+" changed at WorkOS since the snapshot") ||
		!strings.Contains(c.Warnings[0], `state is "active" in the snapshot, "inactive" at WorkOS`) {
		t.Errorf("sample = %+v", c)
	}
	wantOnlyFailures(t, r, CheckSample)
}

func TestSampleWorkOSErrorIsAnError(t *testing.T) {
	t.Parallel()
	e := startWorkOS(t)
	s, _ := localSink(t)
	e.snapshotOf(t, s)
	e.status = http.StatusUnauthorized
	r, err := Verify(context.Background(), s, testDate, sampleOpts(e, 2))
	if r != nil || !workos.IsUnauthorized(err) || !strings.HasPrefix(err.Error(), "verify: sampling directories directory_") {
		t.Errorf("Verify = %v, %v; want a WorkOS 401 error", r, err)
	}
}

func TestPickRows(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 1))
	if got := pickRows(r, 3, 10); len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Errorf("pickRows(3, 10) = %v", got)
	}
	got := pickRows(r, 1_000_000, 50)
	if len(got) != 50 {
		t.Fatalf("got %d rows", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] || got[i] >= 1_000_000 {
			t.Fatalf("rows not distinct, sorted and in range: %v", got)
		}
	}
	if got := pickRows(r, 0, 5); len(got) != 0 {
		t.Errorf("pickRows(0, 5) = %v", got)
	}
}
