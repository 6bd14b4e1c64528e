package workos

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// cursorServer answers every list request from pages: the after cursor sent
// (or "" for the first request) picks the next cursor the answer carries.
// Each answer holds one item with a fresh ID, as a real looping server would.
func cursorServer(t *testing.T, object, idPrefix string, next map[string]string, calls *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n > 50 {
			t.Errorf("request %d: the walk did not stop at the repeated cursor", n)
			writeJSON(w, 500, `{"message":"too many requests"}`)
			return
		}
		after, ok := next[r.URL.Query().Get("after")]
		if !ok {
			t.Errorf("unexpected after cursor %q", r.URL.Query().Get("after"))
		}
		w.Header().Set("X-Request-ID", fmt.Sprintf("req_%d", n))
		writeJSON(w, 200, fmt.Sprintf(`{"object":"list","data":[{"object":%q,"id":"%s%03d","directory_id":%q}],"list_metadata":{"before":null,"after":%q}}`,
			object, idPrefix, n, dirID, after))
	}
}

// drain walks seq to its end and returns the number of items and the error.
func drain[T any](seq iter.Seq2[T, error]) (n int, err error) {
	for _, e := range seq {
		if e != nil {
			return n, e
		}
		n++
	}
	return n, nil
}

// TestEveryListRefusesARepeatedCursor runs every list (directories, users,
// groups, members of a group, events, groups of a user) against a server whose after
// cursor repeats (A, A) and one whose cursors cycle (A, B, A): each walk must
// end with an error naming the endpoint, its filter and the cursor, after
// exactly the requests it takes to see the cursor again, without yielding the
// page that carried it, and never hang.
func TestEveryListRefusesARepeatedCursor(t *testing.T) {
	const userID = "directory_user_01E1JG7J09H96KYP8HM9B0G5SJ"
	type list struct {
		name, pattern, object, idPrefix, endpoint string
		walk                                      func(ctx context.Context, c *Client) (int, error)
		pages                                     func(ctx context.Context, c *Client) (int, error)
	}
	lists := []list{
		{"directories", "GET /directories", "directory", "directory_x", "GET /directories?organization_id=org_01EHZNVPK3SFK441A1RGBFSHRT",
			func(ctx context.Context, c *Client) (int, error) {
				return drain(c.Directories(ctx, &ListDirectoriesOptions{OrganizationID: "org_01EHZNVPK3SFK441A1RGBFSHRT"}))
			},
			func(ctx context.Context, c *Client) (int, error) {
				return drain(c.DirectoryPages(ctx, &ListDirectoriesOptions{OrganizationID: "org_01EHZNVPK3SFK441A1RGBFSHRT"}))
			}},
		{"users", "GET /directory_users", "directory_user", "directory_user_x", "GET /directory_users?directory=" + dirID,
			func(ctx context.Context, c *Client) (int, error) {
				return drain(c.DirectoryUsers(ctx, &ListDirectoryUsersOptions{Directory: dirID}))
			},
			func(ctx context.Context, c *Client) (int, error) {
				return drain(c.DirectoryUserPages(ctx, &ListDirectoryUsersOptions{Directory: dirID}))
			}},
		{"groups", "GET /directory_groups", "directory_group", "directory_group_x", "GET /directory_groups?directory=" + dirID,
			func(ctx context.Context, c *Client) (int, error) {
				return drain(c.DirectoryGroups(ctx, &ListDirectoryGroupsOptions{Directory: dirID}))
			},
			func(ctx context.Context, c *Client) (int, error) {
				return drain(c.DirectoryGroupPages(ctx, &ListDirectoryGroupsOptions{Directory: dirID}))
			}},
		{"members by group", "GET /directory_users", "directory_user", "directory_user_x", "GET /directory_users?directory=" + dirID + "&group=" + groupID,
			func(ctx context.Context, c *Client) (int, error) {
				return drain(c.DirectoryUsers(ctx, &ListDirectoryUsersOptions{Directory: dirID, Group: groupID}))
			},
			func(ctx context.Context, c *Client) (int, error) {
				return drain(c.DirectoryUserPages(ctx, &ListDirectoryUsersOptions{Directory: dirID, Group: groupID}))
			}},
		{"events", "GET /events", "event", "event_x", "GET /events?events=dsync.user.created,dsync.user.deleted",
			func(ctx context.Context, c *Client) (int, error) {
				return drain(c.Events(ctx, &ListEventsOptions{Events: []string{EventUserDeleted, EventUserCreated}}))
			},
			func(ctx context.Context, c *Client) (int, error) {
				return drain(c.EventPages(ctx, &ListEventsOptions{Events: []string{EventUserDeleted, EventUserCreated}}))
			}},
		{"groups by user", "GET /directory_groups", "directory_group", "directory_group_x", "GET /directory_groups?user=" + userID,
			func(ctx context.Context, c *Client) (int, error) {
				return drain(c.DirectoryGroups(ctx, &ListDirectoryGroupsOptions{User: userID}))
			},
			func(ctx context.Context, c *Client) (int, error) {
				return drain(c.DirectoryGroupPages(ctx, &ListDirectoryGroupsOptions{User: userID}))
			}},
	}
	shapes := []struct {
		name     string
		next     map[string]string
		repeated string
		requests int32
	}{
		{"repeat", map[string]string{"": "cursor_A", "cursor_A": "cursor_A"}, "cursor_A", 2},
		{"cycle", map[string]string{"": "cursor_A", "cursor_A": "cursor_B", "cursor_B": "cursor_A"}, "cursor_A", 3},
	}
	for _, l := range lists {
		for _, sh := range shapes {
			for _, form := range []string{"items", "pages"} {
				t.Run(l.name+"/"+sh.name+"/"+form, func(t *testing.T) {
					c, mux := setup(t)
					var calls atomic.Int32
					mux.HandleFunc(l.pattern, cursorServer(t, l.object, l.idPrefix, sh.next, &calls))
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					walk := l.walk
					if form == "pages" {
						walk = l.pages
					}
					n, err := walk(ctx, c)
					if ctx.Err() != nil {
						t.Fatalf("the walk ran into the test's timeout after %d requests", calls.Load())
					}
					if !errors.Is(err, ErrRepeatedCursor) {
						t.Fatalf("err = %v after %d items, want ErrRepeatedCursor", err, n)
					}
					for _, want := range []string{l.endpoint + ":", `cursor "` + sh.repeated + `"`, fmt.Sprintf("request_id: req_%d", sh.requests)} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("error %q does not contain %q", err, want)
						}
					}
					if calls.Load() != sh.requests || int32(n) != sh.requests-1 {
						t.Errorf("%d requests and %d items (or pages) before the error, want %d and %d", calls.Load(), n, sh.requests, sh.requests-1)
					}
				})
			}
		}
	}
}

// TestPagesRepeatedCursorFailsBeforeYieldingThePage serves groups two to a
// page, each page's after cursor the ID of its last group, from a server that
// loses its place: after the second page it serves the first one again, with
// its cursor. That page is the repeat, so the walk must end with
// ErrRepeatedCursor before yielding it: every group once, none twice. A walk
// resumed from a cursor whose page comes back first yields nothing.
func TestPagesRepeatedCursorFailsBeforeYieldingThePage(t *testing.T) {
	ids := []string{"directory_group_01", "directory_group_02", "directory_group_03", "directory_group_04"}
	page := func(i int) string { // the page of ids[i], ids[i+1]
		return fmt.Sprintf(`{"object":"list","data":[{"object":"directory_group","id":%q,"directory_id":%q},{"object":"directory_group","id":%q,"directory_id":%q}],"list_metadata":{"before":%q,"after":%q}}`,
			ids[i], dirID, ids[i+1], dirID, ids[i], ids[i+1])
	}
	for _, tc := range []struct {
		name, after string
		serve       map[string]int // after cursor sent -> index of the page's first group
		want        []string       // the groups yielded before the error
		requests    int32
	}{
		// Lost its place after the second page.
		{"from the start", "", map[string]int{"": 0, ids[1]: 2, ids[3]: 0}, ids, 3},
		// Resumed after the first page, and served the first page.
		{"resumed", ids[1], map[string]int{ids[1]: 0}, nil, 1},
	} {
		for _, form := range []string{"items", "pages"} {
			t.Run(tc.name+"/"+form, func(t *testing.T) {
				c, mux := setup(t)
				var calls atomic.Int32
				mux.HandleFunc("GET /directory_groups", func(w http.ResponseWriter, r *http.Request) {
					n := calls.Add(1)
					w.Header().Set("X-Request-ID", fmt.Sprintf("req_%d", n))
					after := r.URL.Query().Get("after")
					i, ok := tc.serve[after]
					if !ok {
						t.Errorf("request %d: unexpected after cursor %q", n, after)
						writeJSON(w, 500, `{"message":"unexpected cursor"}`)
						return
					}
					writeJSON(w, 200, page(i))
				})
				opts := &ListDirectoryGroupsOptions{Directory: dirID, ListOptions: ListOptions{After: tc.after}}
				var got []string
				var err error
				if form == "items" {
					for g, e := range c.DirectoryGroups(context.Background(), opts) {
						if err = e; e != nil {
							break
						}
						got = append(got, g.ID)
					}
				} else {
					for p, e := range c.DirectoryGroupPages(context.Background(), opts) {
						if err = e; e != nil {
							break
						}
						for _, g := range p.Data {
							got = append(got, g.ID)
						}
					}
				}
				if !errors.Is(err, ErrRepeatedCursor) {
					t.Fatalf("err = %v, want ErrRepeatedCursor", err)
				}
				for _, want := range []string{`cursor "` + ids[1] + `"`, fmt.Sprintf("request_id: req_%d", tc.requests), "was not used"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("yielded %q before the error, want %q: the repeated page must not be yielded", got, tc.want)
				}
				if calls.Load() != tc.requests {
					t.Errorf("%d requests, want %d", calls.Load(), tc.requests)
				}
			})
		}
	}
}

// TestBackwardWalkRefusesACycle walks before cursors through a cycle that
// comes back to the cursor the walk started from.
func TestBackwardWalkRefusesACycle(t *testing.T) {
	c, mux := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("GET /directory_users", func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		prev := map[string]string{"cursor_S": "cursor_B", "cursor_B": "cursor_S"}[r.URL.Query().Get("before")]
		writeJSON(w, 200, fmt.Sprintf(`{"object":"list","data":[{"object":"directory_user","id":"directory_user_%d"}],"list_metadata":{"before":%q,"after":null}}`, n, prev))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := drain(c.DirectoryUsers(ctx, &ListDirectoryUsersOptions{Directory: dirID, ListOptions: ListOptions{Before: "cursor_S"}}))
	if !errors.Is(err, ErrRepeatedCursor) || !strings.Contains(err.Error(), `"cursor_S"`) || calls.Load() != 2 {
		t.Errorf("err = %v after %d requests, want the repeated start cursor after 2", err, calls.Load())
	}
}

// TestListPageWithoutDataIsDecodeError: a page without a data array is not an
// empty page, on the page methods and the iterators alike, and is not retried.
func TestListPageWithoutDataIsDecodeError(t *testing.T) {
	for _, body := range []string{`{"object":"list"}`, `{"object":"list","data":null,"list_metadata":{"before":null,"after":null}}`} {
		t.Run(body, func(t *testing.T) {
			c, mux := setup(t)
			var calls atomic.Int32
			mux.HandleFunc("GET /directories", func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				writeJSON(w, 200, body)
			})
			_, err := c.ListDirectories(context.Background(), nil)
			var de *DecodeError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), `no "data" array`) {
				t.Errorf("ListDirectories: err = %v, want a *DecodeError about the missing data array", err)
			}
			n, err := drain(c.Directories(context.Background(), nil))
			if !errors.As(err, &de) || n != 0 {
				t.Errorf("Directories: %d items, err = %v, want a *DecodeError", n, err)
			}
			if calls.Load() != 2 {
				t.Errorf("%d requests, want 2 (a decode error is not retried)", calls.Load())
			}
		})
	}
	// An empty page is still an empty page.
	c, mux := setup(t)
	mux.HandleFunc("GET /directories", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"object":"list","data":[],"list_metadata":{"before":null,"after":null}}`)
	})
	if n, err := drain(c.Directories(context.Background(), nil)); n != 0 || err != nil {
		t.Errorf("empty list: %d items, err = %v", n, err)
	}
}

// TestRedirectsAreRefused answers 302 to another port of the same host and to
// another host: the client must not follow either (so the key is sent to
// nobody else), and must not retry.
func TestRedirectsAreRefused(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the redirect target received the Authorization header")
		}
		writeJSON(w, 200, `{"object":"list","data":[],"list_metadata":{"before":null,"after":null}}`)
	}))
	defer other.Close()
	_, port, _ := net.SplitHostPort(other.Listener.Addr().String())
	for name, target := range map[string]string{
		"other port": other.URL + "/directories?secret=1",
		"other host": "http://localhost:" + port + "/directories",
	} {
		for _, status := range []int{http.StatusFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			t.Run(fmt.Sprintf("%s/%d", name, status), func(t *testing.T) {
				c, mux := setup(t)
				var calls atomic.Int32
				mux.HandleFunc("GET /directories", func(w http.ResponseWriter, r *http.Request) {
					calls.Add(1)
					http.Redirect(w, r, target, status)
				})
				_, err := c.ListDirectories(context.Background(), nil)
				var ae *APIError
				if !errors.As(err, &ae) || ae.StatusCode != status {
					t.Fatalf("err = %v, want an *APIError with status %d", err, status)
				}
				wantLoc := strings.TrimSuffix(target, "?secret=1")
				for _, want := range []string{fmt.Sprint(status), "redirected to " + wantLoc + ",", "follows no redirect", "WORKOS_BASE_URL"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "secret=1") {
					t.Errorf("error %q shows the Location's query", err)
				}
				if calls.Load() != 1 {
					t.Errorf("%d requests, want 1 (a redirect is not retried)", calls.Load())
				}
			})
		}
	}
	if elsewhere.Load() != 0 {
		t.Errorf("the redirect target got %d requests", elsewhere.Load())
	}
	// A caller's own http.Client cannot turn redirects back on.
	c, err := NewClient(testKey, WithHTTPClient(&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}))
	if err != nil {
		t.Fatal(err)
	}
	if c.hc.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Error("WithHTTPClient kept the caller's CheckRedirect")
	}
}

// TestKeyEchoedIntoAFieldIsRedacted: a server that echoes the Authorization
// header into a timestamp makes the JSON decode error quote the key; every
// error text and field the client returns must have it removed, while
// errors.As still finds the *DecodeError.
func TestKeyEchoedIntoAFieldIsRedacted(t *testing.T) {
	c, mux := setup(t)
	echo := func(w http.ResponseWriter, r *http.Request) string {
		w.Header().Set("X-Request-ID", "req_echo")
		return r.Header.Get("Authorization")
	}
	mux.HandleFunc("GET /directory_users", func(w http.ResponseWriter, r *http.Request) {
		a := echo(w, r)
		writeJSON(w, 200, `{"object":"list","data":[{"object":"directory_user","id":"directory_user_1","created_at":"`+a+`"}],"list_metadata":{"before":null,"after":null}}`)
	})
	mux.HandleFunc("GET /directory_groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		a := echo(w, r)
		writeJSON(w, 200, `{"object":"directory_group","id":"directory_group_1","updated_at":"`+a+`"}`)
	})
	mux.HandleFunc("GET /directories", func(w http.ResponseWriter, r *http.Request) {
		a := echo(w, r) // as a cursor: refused by the next request's check
		writeJSON(w, 200, `{"object":"list","data":[{"object":"directory","id":"directory_1"}],"list_metadata":{"before":null,"after":"`+a+`"}}`)
	})
	_, err1 := drain(c.DirectoryUsers(context.Background(), &ListDirectoryUsersOptions{Directory: dirID}))
	_, err2 := c.GetDirectoryGroup(context.Background(), groupID)
	_, err3 := drain(c.Directories(context.Background(), nil))
	for i, err := range []error{err1, err2} {
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("error %d = %v, want a *DecodeError", i+1, err)
		}
		texts := []string{err.Error(), de.Error(), de.RawBody, fmt.Sprintf("%+v", *de), fmt.Sprint(de.Err)}
		for _, s := range texts {
			if strings.Contains(s, testKey) || strings.Contains(s, "LEAKCANARY") {
				t.Errorf("error %d leaks the API key: %s", i+1, s)
			}
		}
		if !strings.Contains(err.Error(), "cannot parse timestamp") || !strings.Contains(err.Error(), "[REDACTED]") || !strings.Contains(err.Error(), "req_echo") {
			t.Errorf("error %d = %q: want the decode problem, the redaction and the request id", i+1, err)
		}
	}
	if err3 == nil || !errors.Is(err3, ErrInvalidArgument) || strings.Contains(err3.Error(), "LEAKCANARY") || !strings.Contains(err3.Error(), "[REDACTED]") {
		t.Errorf("cursor echo: err = %v, want a redacted invalid-cursor error", err3)
	}
}
