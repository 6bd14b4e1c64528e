package workostest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"testing"
	"time"
)

const million = 1_000_000

func millionConfig() Config {
	return Config{Seed: 30, Directories: 2, Sizes: func(d int) (int, int) {
		if d == 0 {
			return million, 60
		}
		return 10, 2
	}}
}

// userID is the ID of user i of directory d, computed the way the server does.
func (f *fake) userID(d, i int) string {
	dd := f.ds.dirs[d]
	return f.ds.codec.id(kindUser, dd.userCreated(i), uint32(d), uint32(i))
}

func TestMillionUserDirectory(t *testing.T) {
	f := startFake(t, millionConfig())
	d := f.ds.dirs[0].id
	ids, before, after := f.page("directory_users?limit=100&directory=" + d)
	if len(ids) != 100 || before != "" || after != ids[99] || ids[0] != f.userID(0, million-1) || ids[99] != f.userID(0, million-100) {
		t.Fatalf("first page: %d IDs from %s, before %q after %q", len(ids), ids[0], before, after)
	}
	// A deep cursor, both ways.
	x := f.userID(0, 654321)
	ids, before, after = f.page("directory_users?limit=100&order=asc&directory=" + d + "&after=" + x)
	if len(ids) != 100 || ids[0] != f.userID(0, 654322) || ids[99] != f.userID(0, 654421) || before != ids[0] || after != ids[99] {
		t.Errorf("after user 654321: %d IDs %s..%s", len(ids), ids[0], ids[len(ids)-1])
	}
	ids, _, _ = f.page("directory_users?limit=100&order=desc&directory=" + d + "&after=" + x)
	if len(ids) != 100 || ids[0] != f.userID(0, 654320) || ids[99] != f.userID(0, 654221) {
		t.Errorf("desc after user 654321: %d IDs", len(ids))
	}
	// The last page.
	ids, _, after = f.page("directory_users?limit=100&order=asc&directory=" + d + "&after=" + f.userID(0, million-51))
	if len(ids) != 50 || after != "" {
		t.Errorf("last page: %d IDs, after %q; want 50 and null", len(ids), after)
	}
	// Get at the far end.
	var u struct {
		ID string `json:"id"`
	}
	f.getOK("directory_users/"+f.userID(0, million-1), &u)
	if u.ID != f.userID(0, million-1) {
		t.Errorf("get of the last user: id %q", u.ID)
	}

	// Members of the biggest group, from a deep cursor.
	m := f.ds.dirs[0].membership(f.ds)
	big := 0
	for j := range 60 {
		if m.memberCount(j, million) > m.memberCount(big, million) {
			big = j
		}
	}
	g := f.ds.codec.id(kindGroup, f.ds.dirs[0].groupCreated(big), 0, uint32(big))
	ids, _, after = f.page("directory_users?limit=100&order=asc&group=" + g + "&after=" + f.userID(0, 900000))
	if len(ids) != 100 || after != ids[99] {
		t.Fatalf("group page: %d IDs", len(ids))
	}
	var want []string
	for i := 900001; len(want) < 100; i++ {
		if slices.Contains(m.groupsOf(i, nil), big) {
			want = append(want, f.userID(0, i))
		}
	}
	if !slices.Equal(ids, want) {
		t.Errorf("group members after user 900000 differ from a brute-force scan")
	}
	ids, _, _ = f.page("directory_groups?user=" + want[0])
	if !slices.Contains(ids, g) {
		t.Errorf("groups of %s = %v, want to include %s", want[0], ids, g)
	}

	// Counts are closed-form and agree with a scan of a slice of users.
	users, groups, memberships := f.Counts(d)
	if users != million || groups != 60 || memberships < million/2 || memberships > 3*million {
		t.Errorf("Counts = %d, %d, %d", users, groups, memberships)
	}
	const sample = 20000
	scan := 0
	for i := range sample {
		scan += len(m.groupsOf(i, nil))
	}
	closed := 0
	for j := range 60 {
		closed += m.memberCount(j, sample)
	}
	if scan != closed {
		t.Errorf("memberships of the first %d users: scan %d, closed form %d", sample, scan, closed)
	}
}

// TestMillionUserMemory checks that a 1,000,000-user directory costs
// O(groups), not O(users), memory.
func TestMillionUserMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := New(Config{Seed: 31, Directories: 1, UsersPerDirectory: million, GroupsPerDirectory: 1000})
	if err != nil {
		t.Fatal(err)
	}
	d := s.ds.dirs[0]
	for _, path := range []string{
		"directories",
		"directory_users?limit=100&directory=" + d.id,
		"directory_users?limit=100&order=asc&directory=" + d.id + "&after=" + s.ds.codec.id(kindUser, d.userCreated(777777), 0, 777777),
		"directory_groups?limit=100&directory=" + d.id,
	} {
		if w := serve(s, "GET", path); w.Code != 200 {
			t.Fatalf("%s: %d", path, w.Code)
		}
	}
	s.Counts(d.id)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d KiB for 1,000,000 users and 1,000 groups", grown>>10)
	if grown > 4<<20 {
		t.Errorf("heap grew by %d MiB; the dataset must not be materialised", grown>>20)
	}
}

// discard is a minimal ResponseWriter for benchmarks.
type discard struct {
	h    http.Header
	code int
	n    int
}

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) WriteHeader(code int)        { w.code = code }
func (w *discard) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// BenchmarkListUsersPage serves pages of 100 users at cursors spread over a
// 1,000,000-user directory.
func BenchmarkListUsersPage(b *testing.B) {
	s, err := New(millionConfig())
	if err != nil {
		b.Fatal(err)
	}
	d := s.ds.dirs[0]
	m := d.membership(s.ds)
	big := 0
	for j := range d.groups {
		if m.memberCount(j, d.users) > m.memberCount(big, d.users) {
			big = j
		}
	}
	group := s.ds.codec.id(kindGroup, d.groupCreated(big), 0, uint32(big))
	requests := func(query string) []*http.Request {
		var rs []*http.Request
		for k := range 64 {
			i := (k*7919 + 13) * 131 % million
			after := s.ds.codec.id(kindUser, d.userCreated(i), 0, uint32(i))
			r := httptest.NewRequest("GET", "/directory_users?limit=100&order=asc&"+query+"&after="+after, nil)
			r.Header.Set("Authorization", "Bearer "+testKey)
			rs = append(rs, r)
		}
		return rs
	}
	run := func(b *testing.B, rs []*http.Request) {
		w := &discard{h: http.Header{}}
		b.ReportAllocs()
		n, bytes := 0, 0
		cpu0 := cpuTime()
		for b.Loop() {
			clear(w.h)
			w.n = 0
			s.ServeHTTP(w, rs[n%len(rs)])
			if w.code != 200 {
				b.Fatalf("status %d", w.code)
			}
			n++
			bytes += w.n
		}
		// CPU time, unlike ns/op, is not inflated by other processes on a
		// busy machine; it includes the garbage collector.
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/page")
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pages/s")
		b.ReportMetric(float64(bytes)/float64(n), "B/page")
	}
	b.Run("directory", func(b *testing.B) { run(b, requests("directory="+d.id)) })
	b.Run("group", func(b *testing.B) { run(b, requests("group="+group)) })
	b.Run("loopback", func(b *testing.B) {
		base, err := s.Start("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		client := &http.Client{}
		defer client.CloseIdleConnections()
		rs := requests("directory=" + d.id)
		n := 0
		for b.Loop() {
			r := rs[n%len(rs)].Clone(b.Context())
			r.RequestURI = ""
			r.URL, _ = r.URL.Parse(base + r.URL.RequestURI()[1:])
			resp, err := client.Do(r)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = fmt.Fprint(discardWriter{}, resp.Body)
			resp.Body.Close()
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pages/s")
	})
}

type discardWriter struct{}

func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// TestMillionUserAdvance: a day of 1% churn in a 1,000,000-user directory
// costs memory in proportion to the changes, and pages stay fast.
func TestMillionUserAdvance(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := New(millionConfig())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := s.AdvanceWith(24*time.Hour, AdvanceOptions{Churn: 0.01, DirectoryRate: -1})
	took := time.Since(start)
	if res.Events < 9000 {
		t.Fatalf("%d events for 1%% of 1,000,000 users", res.Events)
	}
	d := s.ds.dirs[0]
	cpu0 := cpuTime()
	for k := range 20 {
		i := k * 49999
		path := "directory_users?limit=100&order=asc&directory=" + d.id + "&after=" + s.ds.codec.id(kindUser, d.userCreated(i), 0, uint32(i))
		if w := serve(s, "GET", path); w.Code != 200 {
			t.Fatalf("%s: %d", path, w.Code)
		}
	}
	pageCPU := (cpuTime() - cpu0) / 20
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d events in %v; heap grew by %d KiB (%d B/event); %v CPU per page", res.Events, took, grown>>10, grown/int64(res.Events), pageCPU)
	if per := grown / int64(res.Events); per > 4<<10 {
		t.Errorf("heap grew by %d bytes per change; want O(changes) of a few KiB at most", per)
	}
}
