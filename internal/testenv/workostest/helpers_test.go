package workostest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/workos"
	"github.com/google/go-cmp/cmp"
)

// The tests talk to the fake with plain net/http and encoding/json, the way
// any WorkOS SDK would, never through pkg/workos's client.

const testKey = DefaultAPIKey

// fake is a started server plus a client for it.
type fake struct {
	*Server
	t      testing.TB
	base   string
	client *http.Client
}

func startFake(t testing.TB, cfg Config) *fake {
	t.Helper()
	s, base := Start(t, cfg)
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections) // runs before Start's Close
	return &fake{Server: s, t: t, base: base, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do sends an authenticated request; path is relative to the base URL.
func (f *fake) do(method, path string, header ...string) (*http.Response, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.base+strings.TrimPrefix(path, "/"), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, body
}

// getOK fetches path, requires 200 and decodes the body into v.
func (f *fake) getOK(path string, v any) []byte {
	f.t.Helper()
	resp, body := f.do(http.MethodGet, path)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("GET %s: status %d, body %s", path, resp.StatusCode, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			f.t.Fatalf("GET %s: decoding %s: %v", path, body, err)
		}
	}
	return body
}

// list is the list envelope.
type list[T any] struct {
	Object       string              `json:"object"`
	Data         []T                 `json:"data"`
	ListMetadata workos.ListMetadata `json:"list_metadata"`
}

type idOnly struct {
	ID        string      `json:"id"`
	CreatedAt workos.Time `json:"created_at"`
}

// page fetches one page of IDs.
func (f *fake) page(path string) (ids []string, before, after string) {
	f.t.Helper()
	var l list[idOnly]
	f.getOK(path, &l)
	if l.Object != "list" || l.Data == nil {
		f.t.Fatalf("GET %s: not a list envelope: %+v", path, l)
	}
	for _, o := range l.Data {
		ids = append(ids, o.ID)
	}
	return ids, deref(l.ListMetadata.Before), deref(l.ListMetadata.After)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// withQuery appends query parameters to path.
func withQuery(path string, kv ...string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		path += sep + kv[i] + "=" + url.QueryEscape(kv[i+1])
		sep = "&"
	}
	return path
}

// walkAll pages through path with limit 100 in ascending order and decodes
// every item.
func walkAll[T any](f *fake, path string) []T {
	f.t.Helper()
	var out []T
	after := ""
	for {
		var l list[T]
		f.getOK(withQuery(path, "limit", "100", "order", "asc", "after", after), &l)
		out = append(out, l.Data...)
		if l.ListMetadata.After == nil {
			return out
		}
		after = *l.ListMetadata.After
	}
}

// timeOpt compares workos.Time by instant.
var timeOpt = cmp.Comparer(func(a, b workos.Time) bool { return a.Equal(b.Time) })

func collect[T any](seq func(func(T) bool)) []T {
	var out []T
	for v := range seq {
		out = append(out, v)
	}
	return out
}

func reversed[T any](s []T) []T {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s
}
