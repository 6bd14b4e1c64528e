package workostest

import "net/http"

// TB is the part of testing.TB that Start uses; *testing.T and *testing.B
// satisfy it. (The package does not import testing, so that a binary that
// links the fake for a demo links no test code.)
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}

// Start is the tests' one way to run the fake: it builds a server for cfg and
// serves it on a loopback port until the test ends, wrapped by each wrap in
// turn (the last one outermost), for tests that tamper with requests or
// answers. It returns the server and its base URL, with a trailing slash.
func Start(t TB, cfg Config, wrap ...func(http.Handler) http.Handler) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("workostest.Start: %v", err)
	}
	var h http.Handler = s
	for _, w := range wrap {
		h = w(h)
	}
	base, err := s.serve("127.0.0.1:0", h)
	if err != nil {
		t.Fatalf("workostest.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("workostest: Close: %v", err)
		}
	})
	return s, base
}
