package workostest

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// serve calls ServeHTTP directly; inside a synctest bubble this runs on the
// bubble's fake clock.
func serve(s *Server, method, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/"+path, nil)
	r.Header.Set("Authorization", "Bearer "+testKey)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestRateLimitPerDirectory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Config{Directories: 2, UsersPerDirectory: 20, GroupsPerDirectory: 3, RateLimit: true})
		if err != nil {
			t.Fatal(err)
		}
		dirs := s.Directories()
		d0, d1 := dirs[0].ID, dirs[1].ID
		g0 := collect(s.Groups(d0))[0].ID
		users := "directory_users?directory=" + d0
		for i := range 4 {
			if w := serve(s, "GET", users); w.Code != 200 {
				t.Fatalf("request %d of the burst: %d", i, w.Code)
			}
		}
		for _, path := range []string{users, "directory_users?group=" + g0} {
			w := serve(s, "GET", path)
			if w.Code != 429 || w.Body.String() != `"Ratelimited"` || w.Header().Get("Retry-After") != "1" ||
				w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("5th request (%s): %d %q Retry-After %q, want 429 \"Ratelimited\" Retry-After 1",
					path, w.Code, w.Body, w.Header().Get("Retry-After"))
			}
		}
		// Other directories and other endpoints are not limited.
		for _, path := range []string{"directory_users?directory=" + d1, "directory_groups?directory=" + d0, "directories"} {
			if w := serve(s, "GET", path); w.Code != 200 {
				t.Errorf("%s: %d, want 200", path, w.Code)
			}
		}
		time.Sleep(250 * time.Millisecond)
		if w := serve(s, "GET", users); w.Code != 200 {
			t.Errorf("after 250ms: %d, want 200", w.Code)
		}
		if w := serve(s, "GET", users); w.Code != 429 {
			t.Errorf("second request after 250ms: %d, want 429", w.Code)
		}
		st := s.Stats()
		if st.RateLimited != 3 || st.Pages != 8 {
			t.Errorf("stats %+v: want 3 rate limited and 8 pages", st)
		}
	})
}

func TestRateLimitPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Config{Directories: 1, UsersPerDirectory: 20, RateLimit: true})
		if err != nil {
			t.Fatal(err)
		}
		d := s.Directories()[0].ID
		u := collect(s.Users(d))[0].ID
		// Exactly 4 per second, alternating list and get, for 15 seconds.
		for i := range 60 {
			path := "directory_users?directory=" + d
			if i%2 == 1 {
				path = "directory_users/" + u
			}
			if w := serve(s, "GET", path); w.Code != 200 {
				t.Fatalf("request %d at %v: %d", i, time.Duration(i)*250*time.Millisecond, w.Code)
			}
			time.Sleep(250 * time.Millisecond)
		}
		if n := s.Stats().RateLimited; n != 0 {
			t.Errorf("%d requests rate limited", n)
		}
	})
}

func TestRateLimitPerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Config{Directories: 1, RateLimit: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6000 {
			if w := serve(s, "GET", "directories?limit=1"); w.Code != 200 {
				t.Fatalf("request %d: %d", i, w.Code)
			}
		}
		w := serve(s, "GET", "directories?limit=1")
		if w.Code != 429 || w.Body.String() != `"Ratelimited"` || w.Header().Get("Retry-After") != "1" {
			t.Errorf("request 6001: %d %s Retry-After %q", w.Code, w.Body, w.Header().Get("Retry-After"))
		}
		time.Sleep(time.Second) // refills 100
		for i := range 100 {
			if w := serve(s, "GET", "directories/"+s.Directories()[0].ID); w.Code != 200 {
				t.Fatalf("request %d after a second: %d", i, w.Code)
			}
		}
		if w := serve(s, "GET", "directories"); w.Code != 429 {
			t.Errorf("101st request after a second: %d", w.Code)
		}
	})
}

func TestNoRateLimitByDefault(t *testing.T) {
	s, err := New(Config{Directories: 1, UsersPerDirectory: 2})
	if err != nil {
		t.Fatal(err)
	}
	path := "directory_users?directory=" + s.Directories()[0].ID
	for i := range 50 {
		if w := serve(s, "GET", path); w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Config{Directories: 1, Latency: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if w := serve(s, "GET", "directories"); w.Code != 200 {
			t.Fatal(w.Code)
		}
		if got := time.Since(start); got != 300*time.Millisecond {
			t.Errorf("request took %v, want 300ms", got)
		}
	})
}

// ---- faults, over real connections ----

func TestFaultServerError(t *testing.T) {
	f := startFake(t, Config{Directories: 1, UsersPerDirectory: 5, Faults: Faults{Seed: 1, ServerError: 1}})
	statuses := map[int]bool{}
	for range 30 {
		resp, body := f.do("GET", "directories")
		statuses[resp.StatusCode] = true
		if ct := resp.Header.Get("Content-Type"); ct != "text/html" || !bytesHasPrefix(body, "<html>") {
			t.Fatalf("%d %s %q: want an HTML error page", resp.StatusCode, ct, body)
		}
	}
	if !statuses[500] || !statuses[502] || !statuses[503] || len(statuses) != 3 {
		t.Errorf("statuses %v, want 500, 502 and 503", statuses)
	}
	if st := f.Stats(); st.FaultsInjected != 30 || st.Pages != 0 {
		t.Errorf("stats %+v: want 30 faults and no pages", st)
	}
}

func bytesHasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

func TestFaultRateLimited(t *testing.T) {
	f := startFake(t, Config{Directories: 1, UsersPerDirectory: 5, Faults: Faults{RateLimited: 1}})
	resp, body := f.do("GET", "directory_users?directory="+f.Directories()[0].ID)
	if resp.StatusCode != 429 || string(body) != `"Ratelimited"` || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("%d %s Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if st := f.Stats(); st.RateLimited != 1 || st.FaultsInjected != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultReset(t *testing.T) {
	f := startFake(t, Config{Directories: 1, Faults: Faults{Reset: 1}})
	req, _ := http.NewRequest("GET", f.base+"directories", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := f.client.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got a response %d, want a transport error", resp.StatusCode)
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Errorf("error %v, want a connection reset", err)
	}
	t.Logf("client error: %v", err)
	// Without a hijackable connection the handler aborts.
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Errorf("ServeHTTP with a recorder: recovered %v, want http.ErrAbortHandler", r)
		}
	}()
	serve(f.Server, "GET", "directories")
}

func TestFaultTruncate(t *testing.T) {
	f := startFake(t, Config{Directories: 1, UsersPerDirectory: 50, Faults: Faults{Truncate: 1}})
	req, _ := http.NewRequest("GET", f.base+"directory_users?limit=50&directory="+f.Directories()[0].ID, nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("status %d, read %d bytes, err %v: want 200 and an unexpected EOF", resp.StatusCode, len(body), err)
	}
	if int64(len(body)) != resp.ContentLength/2 {
		t.Errorf("read %d of %d bytes, want half", len(body), resp.ContentLength)
	}
	if st := f.Stats(); st.Pages != 0 || st.FaultsInjected != 1 {
		t.Errorf("stats %+v: a truncated page is a fault, not a page", st)
	}
	// Errors are not truncated.
	if resp, body := f.do("GET", "directories/nope"); resp.StatusCode != 404 || len(body) == 0 {
		t.Errorf("404 with truncation on: %d %q", resp.StatusCode, body)
	}
}

func TestSetFaults(t *testing.T) {
	f := startFake(t, Config{Directories: 1, UsersPerDirectory: 5})
	d := f.Directories()[0].ID
	run := func(n int) []int {
		var codes []int
		for range n {
			resp, _ := f.do("GET", "directory_users?directory="+d)
			codes = append(codes, resp.StatusCode)
		}
		return codes
	}
	faults := Faults{Seed: 9, ServerError: 0.3, RateLimited: 0.3}
	f.SetFaults(faults)
	first := run(40)
	f.SetFaults(faults) // reseeds: the same sequence again
	if second := run(40); !slices.Equal(first, second) {
		t.Errorf("same fault seed, different outcomes:\n%v\n%v", first, second)
	}
	ok := 0
	for _, c := range first {
		if c == 200 {
			ok++
		}
	}
	if ok == 0 || ok == 40 {
		t.Errorf("%d of 40 succeeded at a 60%% fault rate", ok)
	}
	f.SetFaults(Faults{})
	for _, c := range run(20) {
		if c != 200 {
			t.Fatalf("faults off: status %d", c)
		}
	}
	// DELETE is never faulted.
	f.SetFaults(Faults{ServerError: 1})
	if resp, _ := f.do("DELETE", "directories/"+d); resp.StatusCode != 202 {
		t.Errorf("DELETE with faults on: %d", resp.StatusCode)
	}
	// Out-of-range fractions are normalised, not rejected.
	f.SetFaults(Faults{ServerError: 3, RateLimited: 1})
	if got := f.faults.f; got.ServerError != 0.5 || got.RateLimited != 0.5 {
		t.Errorf("normalised faults %+v", got)
	}
}
