package parquetfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// BenchmarkWriterPeakHeap writes 10k, 100k and 1M realistic directory users
// (300-800 bytes of custom_attributes JSON each) in pages of 100, as the
// export does, to a counting sink. It reports:
//
//   - peak-MiB: the peak heap (live and not yet collected objects) sampled
//     every millisecond while writing, so GC headroom included;
//   - live-MiB: the peak live heap as measured by the GC while writing;
//   - retained-MiB: in a second pass, the most heap the writer keeps, measured
//     after a forced GC at 20 checkpoints, minus the heap before NewWriter;
//   - parquet-MiB, json-MiB and parquet/json: the sizes of the same users;
//   - parts: the number of part files.
//
// Run it with
//
//	go test ./pkg/parquetfile -run XXX -bench WriterPeakHeap -benchtime 1x
func BenchmarkWriterPeakHeap(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			var r, rr writeResult
			for b.Loop() {
				r = writeSyntheticUsers(b, n, false)
				rr = writeSyntheticUsers(b, n, true)
			}
			b.ReportMetric(float64(r.peak.heap)/(1<<20), "peak-MiB")
			b.ReportMetric(float64(r.peak.live)/(1<<20), "live-MiB")
			b.ReportMetric(float64(rr.retained)/(1<<20), "retained-MiB")
			b.ReportMetric(float64(r.parquetBytes)/(1<<20), "parquet-MiB")
			b.ReportMetric(float64(r.jsonBytes)/(1<<20), "json-MiB")
			b.ReportMetric(float64(r.parquetBytes)/float64(r.jsonBytes), "parquet/json")
			b.ReportMetric(float64(r.parts), "parts")
		})
	}
}

// TestWriterHeapBounded is a quick version of the benchmark that runs with
// plain go test: the memory the writer retains while writing 40k users must
// stay near what it retains for 4k, since row groups are flushed, and the
// heap must stay far below a small Lambda's memory.
func TestWriterHeapBounded(t *testing.T) {
	small := writeSyntheticUsers(t, 4_000, true)
	large := writeSyntheticUsers(t, 40_000, true)
	t.Logf("retained: 4k users %.1f MiB, 40k users %.1f MiB; 40k users: parquet %.1f MiB, json %.1f MiB",
		float64(small.retained)/(1<<20), float64(large.retained)/(1<<20), float64(large.parquetBytes)/(1<<20), float64(large.jsonBytes)/(1<<20))
	if large.retained > 32<<20 {
		t.Errorf("writer retains %.1f MiB writing 40k users, want < 32 MiB", float64(large.retained)/(1<<20))
	}
	if float64(large.retained) > 1.5*float64(small.retained)+2<<20 {
		t.Errorf("retained heap grew from %.1f MiB (4k users) to %.1f MiB (40k users)", float64(small.retained)/(1<<20), float64(large.retained)/(1<<20))
	}
	if large.parquetBytes >= large.jsonBytes/4 {
		t.Errorf("parquet %d bytes is not much smaller than json %d bytes", large.parquetBytes, large.jsonBytes)
	}
}

type countingSink struct{ n int64 }

func (c *countingSink) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
func (c *countingSink) Close() error                { return nil }

// writeResult is what writeSyntheticUsers measured.
type writeResult struct {
	peak                    heapPeak
	retained                int64 // with checkpoints only
	parquetBytes, jsonBytes int64
	parts                   int
}

// writeSyntheticUsers writes n generated users. With checkpoints it forces a
// GC 20 times while writing to measure the heap the writer retains; without,
// it samples the peak heap.
func writeSyntheticUsers(tb testing.TB, n int, checkpoints bool) writeResult {
	var r writeResult
	gen := newUserGen(uint64(n))
	runtime.GC()
	runtime.GC()
	base := heapObjects()
	stop := sampleHeap()

	w, err := NewWriter[DirectoryUser](func(int) (io.WriteCloser, error) { return &countingSink{}, nil }, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	exported := time.Now()
	page := make([]DirectoryUser, 0, 100)
	var enc jsonCounter
	every := max(n/20, 1)
	for i := range n {
		u := gen.user(i)
		r.jsonBytes += enc.size(tb, &u)
		page = append(page, schema.FromDirectoryUser(&u, exported))
		if len(page) == cap(page) || i == n-1 {
			if err := w.Write(page); err != nil {
				tb.Fatal(err)
			}
			page = page[:0]
		}
		if checkpoints && (i+1)%every == 0 {
			runtime.GC()
			r.retained = max(r.retained, heapObjects()-base)
		}
	}
	ps, err := w.Close()
	if err != nil {
		tb.Fatal(err)
	}
	r.peak = stop()
	for _, p := range ps {
		r.parquetBytes += p.Bytes
	}
	r.parts = len(ps)
	if w.Rows() != int64(n) {
		tb.Fatalf("wrote %d rows, want %d", w.Rows(), n)
	}
	return r
}

func heapObjects() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// heapPeak is the peak heap (live and garbage objects) and the peak live heap
// (as of the last GC) seen while writing.
type heapPeak struct{ heap, live int64 }

// sampleHeap samples the heap every millisecond until the returned function
// is called, which returns the peaks.
func sampleHeap() func() heapPeak {
	var (
		mu   sync.Mutex
		peak heapPeak
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	read := func() {
		metrics.Read(sample)
		mu.Lock()
		peak.heap = max(peak.heap, int64(sample[0].Value.Uint64()))
		peak.live = max(peak.live, int64(sample[1].Value.Uint64()))
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				read()
			}
		}
	}()
	return func() heapPeak {
		read()
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// jsonCounter measures the wire JSON size of users.
type jsonCounter struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func (j *jsonCounter) size(tb testing.TB, u *workos.DirectoryUser) int64 {
	if j.enc == nil {
		j.enc = json.NewEncoder(&j.buf)
	}
	j.buf.Reset()
	if err := j.enc.Encode(u); err != nil {
		tb.Fatal(err)
	}
	return int64(j.buf.Len() - 1)
}

// userGen generates realistic directory users deterministically. Names,
// roles and custom attributes (300-800 bytes of JSON) come from a pool of
// templates, so that generating a user allocates little and the heap figures
// are the writer's; IDs, emails, IdP IDs and times are unique per user.
type userGen struct {
	rng       *rand.Rand
	templates []workos.DirectoryUser
}

// userTemplates is the size of the template pool: its custom attributes
// repeat every ~2 MiB, more than a page, so they do not compress unrealistically.
const userTemplates = 4096

var (
	firstNames  = []string{"Marcelina", "Zoë", "Ahmed", "Li", "Olga", "José", "Priya", "John", "Aiko", "Kwame", "Søren", "Fatima"}
	lastNames   = []string{"Davis", "Nakamura", "Okafor", "García", "Müller", "Kowalski", "Singh", "Smith", "Brown", "Ivanova"}
	departments = []string{"Engineering", "Sales", "Marketing", "Finance", "Legal", "Support", "Research & Development", "People"}
	titles      = []string{"Software Engineer", "Senior Software Engineer", "Account Executive", "Product Manager", "Designer", "Analyst"}
	locations   = []string{"Berlin, DE", "San Francisco, US", "London, GB", "Tokyo, JP", "São Paulo, BR", "Remote"}
	skills      = []string{"go", "typescript", "sql", "negotiation", "design", "kubernetes", "finance", "writing", "python", "aws"}
	roleSlugs   = []string{"member", "admin", "billing", "viewer", "owner"}
)

func newUserGen(seed uint64) *userGen {
	g := &userGen{rng: rand.New(rand.NewPCG(seed, seed))}
	for i := range userTemplates {
		g.templates = append(g.templates, g.template(i))
	}
	return g
}

func (g *userGen) pick(s []string) string { return s[g.rng.IntN(len(s))] }

func (g *userGen) template(i int) workos.DirectoryUser {
	first, last := g.pick(firstNames), g.pick(lastNames)
	name := first + " " + last
	attrs := map[string]any{
		"department":      g.pick(departments),
		"job_title":       g.pick(titles),
		"employee_number": fmt.Sprint(100000 + i),
		"cost_center":     fmt.Sprintf("CC-%04d", g.rng.IntN(500)),
		"location":        g.pick(locations),
		"manager_email":   fmt.Sprintf("manager.%d@company.example.com", g.rng.IntN(5000)),
		"start_date":      time.Date(2015+g.rng.IntN(11), time.Month(1+g.rng.IntN(12)), 1+g.rng.IntN(28), 0, 0, 0, 0, time.UTC).Format("2006-01-02"),
		"is_contractor":   g.rng.IntN(10) == 0,
	}
	// Grow to 300-800 bytes with a skills list and a free-text bio.
	target := 300 + g.rng.IntN(501)
	var sk []string
	for range 3 + g.rng.IntN(5) {
		sk = append(sk, g.pick(skills))
	}
	attrs["skills"] = sk
	raw, _ := json.Marshal(attrs)
	if pad := target - len(raw) - len(`,"bio":""`); pad > 0 {
		var bio strings.Builder
		for bio.Len() < pad {
			bio.WriteString(g.pick(skills) + " " + g.pick(departments) + " ")
		}
		attrs["bio"] = bio.String()[:pad]
		raw, _ = json.Marshal(attrs)
	}
	u := workos.DirectoryUser{
		Object:           workos.ObjectDirectoryUser,
		FirstName:        &first,
		LastName:         &last,
		Name:             &name,
		State:            workos.DirectoryUserStateActive,
		RawAttributes:    json.RawMessage(`{}`),
		CustomAttributes: raw,
		Role:             &workos.SlimRole{Slug: g.pick(roleSlugs)},
		Groups:           []workos.DirectoryGroup{},
	}
	if g.rng.IntN(20) == 0 {
		u.State = workos.DirectoryUserStateInactive
	}
	u.Roles = []workos.SlimRole{*u.Role}
	if g.rng.IntN(4) == 0 {
		u.Roles = append(u.Roles, workos.SlimRole{Slug: g.pick(roleSlugs)})
	}
	return u
}

// user returns user i: a template with unique identifiers and times.
func (g *userGen) user(i int) workos.DirectoryUser {
	u := g.templates[i%len(g.templates)]
	dir := i % 20
	email := fmt.Sprintf("%s.%d@company%d.example.com", strings.ToLower(*u.FirstName), i, dir)
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	u.ID = fmt.Sprintf("directory_user_01J%023d", i)
	u.DirectoryID = fmt.Sprintf("directory_01HX%022d", dir)
	u.OrganizationID = fmt.Sprintf("org_01HX%022d", dir)
	u.IdpID = fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", g.rng.Uint32(), g.rng.IntN(1<<16), g.rng.IntN(1<<12), g.rng.IntN(1<<12), g.rng.Uint64()&(1<<48-1))
	u.Email = &email
	u.Emails = []workos.DirectoryUserEmail{{Primary: new(true), Type: new("work"), Value: &email}}
	u.CreatedAt = workos.Time{Time: created}
	u.UpdatedAt = workos.Time{Time: created.Add(time.Duration(g.rng.IntN(1e6)) * time.Second)}
	return u
}
