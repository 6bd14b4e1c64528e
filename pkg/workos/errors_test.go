package workos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestAPIErrorBodyShapes(t *testing.T) {
	html := "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n"
	tests := []struct {
		name     string
		status   int
		body     string
		want     APIError // body fields only
		contains []string // in Error()
	}{
		{
			name: "message", status: 403,
			body:     `{"message":"Organization not found: 'org_01EHQMYV6MBK39QC5PZXHY59C3'."}`,
			want:     APIError{Message: "Organization not found: 'org_01EHQMYV6MBK39QC5PZXHY59C3'."},
			contains: []string{"workos: 403 GET /directory_users: Organization not found", "lacks Directory Sync permission"},
		},
		{
			name: "code and message", status: 404,
			body:     `{"code":"entity_not_found","message":"Directory not found"}`,
			want:     APIError{Code: "entity_not_found", Message: "Directory not found"},
			contains: []string{"404 GET /directory_users: entity_not_found: Directory not found", "list first to get current IDs"},
		},
		{
			name: "message and field errors", status: 422,
			body: `{"message":"Validation failed.","errors":[{"code":"required","field":"directory"}]}`,
			want: APIError{Message: "Validation failed.", Errors: json.RawMessage(`[{"code":"required","field":"directory"}]`)},
			contains: []string{`Validation failed.: [{"code":"required","field":"directory"}]`,
				"check the organization or directory filter and the pagination parameters"},
		},
		{
			name: "oauth error", status: 401,
			body:     `{"error":"invalid_client","error_description":"Invalid API key."}`,
			want:     APIError{Code: "invalid_client", ErrorDescription: "Invalid API key."},
			contains: []string{"401 GET /directory_users: invalid_client: Invalid API key.", "starting with sk_"},
		},
		{
			name: "generic error object", status: 400,
			body:     `{"error":"bad_request"}`,
			want:     APIError{Code: "bad_request"},
			contains: []string{"400 GET /directory_users: bad_request", "check the IDs and filter values"},
		},
		{
			name: "bare string", status: 429,
			body:     `"Ratelimited"`,
			want:     APIError{Message: "Ratelimited"},
			contains: []string{"429 GET /directory_users: Ratelimited", "rate limited by WorkOS"},
		},
		{
			name: "numeric code", status: 422,
			body:     `{"code":42,"message":"odd"}`,
			want:     APIError{Code: "42", Message: "odd"},
			contains: []string{"42: odd"},
		},
		{
			name: "html from a proxy", status: 502,
			body:     html,
			want:     APIError{},
			contains: []string{"502 GET /directory_users: unexpected response body: <html> <head><title>502 Bad Gateway", "WorkOS server error"},
		},
		{
			name: "empty body", status: 500,
			body:     "",
			want:     APIError{},
			contains: []string{"500 GET /directory_users: internal server error", "WorkOS server error"},
		},
		{
			name: "broken json", status: 503,
			body:     `{"message":`,
			want:     APIError{},
			contains: []string{`unexpected response body: {"message":`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mux := setup(t, WithMaxAttempts(1))
			mux.HandleFunc("GET /directory_users", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Request-ID", "req_01ERR")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			})
			_, err := c.ListDirectoryUsers(context.Background(), &ListDirectoryUsersOptions{Directory: dirID})
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			want := tt.want
			want.StatusCode, want.RequestID, want.Method, want.Path, want.Attempts = tt.status, "req_01ERR", "GET", "/directory_users", 1
			want.RawBody = tt.body
			if diff := cmp.Diff(&want, apiErr); diff != "" {
				t.Errorf("APIError mismatch (-want +got):\n%s", diff)
			}
			msg := err.Error()
			for _, s := range append(tt.contains, "(request_id: req_01ERR)") {
				if !strings.Contains(msg, s) {
					t.Errorf("Error() = %q\nwant it to contain %q", msg, s)
				}
			}
			if strings.Contains(msg, "attempts") {
				t.Errorf("Error() = %q mentions attempts after a single one", msg)
			}
		})
	}
}

func TestAPIErrorRawBodyTruncated(t *testing.T) {
	c, mux := setup(t, WithMaxAttempts(1))
	big := strings.Repeat("x", 100<<10)
	mux.HandleFunc("GET /directories/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		fmt.Fprint(w, big)
	})
	_, err := c.GetDirectory(context.Background(), dirID)
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatal(err)
	}
	if len(apiErr.RawBody) > 2<<10+64 || !strings.HasPrefix(apiErr.RawBody, "xxxx") {
		t.Errorf("RawBody has %d bytes, want about 2 KiB", len(apiErr.RawBody))
	}
	if len(err.Error()) > 600 {
		t.Errorf("Error() is %d bytes long, want a short snippet", len(err.Error()))
	}
}

func TestPredicates(t *testing.T) {
	wrap := func(status int) error { return fmt.Errorf("export: %w", &APIError{StatusCode: status}) }
	tests := []struct {
		err                                    error
		notFound, limited, unauthed, forbidden bool
	}{
		{wrap(404), true, false, false, false},
		{wrap(429), false, true, false, false},
		{wrap(401), false, false, true, false},
		{wrap(403), false, false, false, true},
		{wrap(500), false, false, false, false},
		{errors.New("workos: other"), false, false, false, false},
		{nil, false, false, false, false},
	}
	for _, tt := range tests {
		if IsNotFound(tt.err) != tt.notFound || IsRateLimited(tt.err) != tt.limited || IsUnauthorized(tt.err) != tt.unauthed || IsForbidden(tt.err) != tt.forbidden {
			t.Errorf("predicates(%v) = %v %v %v %v", tt.err, IsNotFound(tt.err), IsRateLimited(tt.err), IsUnauthorized(tt.err), IsForbidden(tt.err))
		}
	}
}

func TestAPIErrorHints(t *testing.T) {
	for status, hint := range map[int]string{
		401: "check the WorkOS API key (it must be a secret key starting with sk_ for this environment)",
		403: "the API key lacks Directory Sync permission",
		404: "the object does not exist or was deleted: list first to get current IDs",
		408: "timed out",
		422: "check the organization or directory filter and the pagination parameters",
		429: "rate limited",
		500: "WorkOS server error",
		504: "WorkOS server error",
		418: "unexpected HTTP status",
	} {
		e := &APIError{StatusCode: status, Method: "GET", Path: "/directories", Attempts: 3, RetryAfter: 2 * time.Second}
		msg := e.Error()
		if !strings.HasPrefix(msg, fmt.Sprintf("workos: %d GET /directories: ", status)) || !strings.Contains(msg, hint) ||
			!strings.Contains(msg, "after 3 attempts") {
			t.Errorf("%d: Error() = %q, want hint %q and the attempt count", status, msg, hint)
		}
	}
}

// TestKeyNeverInErrors makes the server echo the Authorization header in
// every kind of failure and checks that no error string holds the key.
func TestKeyNeverInErrors(t *testing.T) {
	c, mux := setup(t, WithMaxAttempts(2))
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			auth := r.Header.Get("Authorization")
			switch status {
			case 200: // malformed 2xx JSON quoting the key
				writeJSON(w, 200, `{"object":"list","data":"`+auth+`"}`)
			case 0: // a bare-string error body
				writeJSON(w, 401, fmt.Sprintf("%q", "bad key "+auth))
			default:
				writeJSON(w, status, fmt.Sprintf(`{"code":%q,"message":%q,"error_description":%q,"errors":[%q]}`, auth, auth, auth, auth))
			}
		}
	}
	mux.HandleFunc("GET /directories", echo(200))
	mux.HandleFunc("GET /directory_groups", echo(0))
	mux.HandleFunc("GET /directory_users", echo(422))
	mux.HandleFunc("GET /directories/{id}", echo(503))
	var errs []error
	_, err := c.ListDirectories(context.Background(), nil)
	errs = append(errs, err)
	_, err = c.ListDirectoryGroups(context.Background(), nil)
	errs = append(errs, err)
	_, err = c.ListDirectoryUsers(context.Background(), &ListDirectoryUsersOptions{Directory: dirID})
	errs = append(errs, err)
	_, err = c.GetDirectory(context.Background(), dirID)
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("call %d: no error", i)
		}
		var apiErr *APIError
		var decErr *DecodeError
		texts := []string{err.Error(), fmt.Sprintf("%+v %#v", err, err)}
		if errors.As(err, &apiErr) {
			texts = append(texts, apiErr.RawBody, apiErr.Message, apiErr.Code, string(apiErr.Errors), apiErr.ErrorDescription)
		}
		if errors.As(err, &decErr) {
			texts = append(texts, decErr.RawBody)
		}
		for _, s := range texts {
			if strings.Contains(s, testKey) || strings.Contains(s, "LEAKCANARY") {
				t.Errorf("call %d: the API key leaked into %q", i, s)
			}
		}
	}
}

func TestMalformedJSONIsDecodeErrorWithRequestID(t *testing.T) {
	c, mux := setup(t)
	var hits atomic.Int32
	mux.HandleFunc("GET /directory_users", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-Request-ID", "req_01MALFORMED")
		writeJSON(w, 200, `{"object":"list","data":[{"id":"directory_user_1"}}],"list_metadata":{}}`)
	})
	_, err := c.ListDirectoryUsers(context.Background(), &ListDirectoryUsersOptions{Directory: dirID})
	var decErr *DecodeError
	if !errors.As(err, &decErr) {
		t.Fatalf("err = %v (%T), want *DecodeError", err, err)
	}
	want := &DecodeError{StatusCode: 200, Method: "GET", Path: "/directory_users", RequestID: "req_01MALFORMED",
		RawBody: `{"object":"list","data":[{"id":"directory_user_1"}}],"list_metadata":{}}`}
	if diff := cmp.Diff(want, decErr, cmpopts.IgnoreFields(DecodeError{}, "Err")); diff != "" {
		t.Errorf("DecodeError mismatch (-want +got):\n%s", diff)
	}
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		t.Errorf("DecodeError does not unwrap to the JSON error: %v", decErr.Err)
	}
	for _, s := range []string{"workos: GET /directory_users: malformed JSON", "request_id: req_01MALFORMED"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Error() = %q, want %q", err, s)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("a complete but malformed body was retried: %d attempts", hits.Load())
	}
}

func TestWrongShapeIsDecodeError(t *testing.T) {
	c, mux := setup(t)
	mux.HandleFunc("GET /directory_groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"id": 12, "created_at": "yesterday"}`)
	})
	_, err := c.GetDirectoryGroup(context.Background(), groupID)
	var decErr *DecodeError
	if !errors.As(err, &decErr) || decErr.Path != "/directory_groups/"+groupID {
		t.Fatalf("err = %v, want *DecodeError for the group path", err)
	}
}
