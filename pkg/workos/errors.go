package workos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxErrorBody is how much of an error response body the client reads.
const maxErrorBody = 64 << 10

// maxRawBody is how much of a body APIError.RawBody and DecodeError.RawBody keep.
const maxRawBody = 2 << 10

// APIError is a non-2xx response from the WorkOS API. Error bodies are decoded
// leniently: {message}, {code,message}, {message,errors}, {error,error_description},
// a bare JSON string such as "Ratelimited", or anything else (kept in RawBody).
//
// A 3xx answer is an APIError too: the client follows no redirect.
//
// Use errors.As to get it, or the IsNotFound, IsRateLimited, IsUnauthorized
// and IsForbidden predicates.
type APIError struct {
	StatusCode int    // HTTP status code
	Code       string // "code" (or OAuth "error") of the body, if any
	Message    string // "message" of the body, or the bare JSON string body
	// Errors holds the field errors exactly as sent (e.g. [{"code":"required","field":"events"}]).
	Errors           json.RawMessage
	ErrorDescription string        // OAuth-style "error_description", if any
	RequestID        string        // X-Request-ID response header; quote it to WorkOS support
	RetryAfter       time.Duration // Retry-After response header; 0 when absent
	RawBody          string        // the body, truncated to 2 KiB
	Method           string        // HTTP method of the request
	Path             string        // API path of the request without query, e.g. /directory_users
	Attempts         int           // attempts made, including the first
	// Location is the Location header of a 3xx answer (without its query),
	// which the client does not follow.
	Location string
}

// Error formats the error as
//
//	workos: 401 GET /directory_users: <message> (request_id: req_…): <how to fix>
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "workos: %d %s %s: ", e.StatusCode, e.Method, e.Path)
	b.WriteString(e.summary())
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request_id: %s)", e.RequestID)
	}
	b.WriteString(": ")
	b.WriteString(e.hint())
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (gave up after %d attempts)", e.Attempts)
	}
	return b.String()
}

// summary is the server's own description of the error.
func (e *APIError) summary() string {
	var parts []string
	if e.Code != "" {
		parts = append(parts, e.Code)
	}
	switch {
	case e.Message != "":
		parts = append(parts, e.Message)
	case e.ErrorDescription != "":
		parts = append(parts, e.ErrorDescription)
	}
	if len(e.Errors) > 0 && string(e.Errors) != "null" {
		parts = append(parts, snippet(compactJSON(e.Errors), 300))
	}
	if len(parts) == 0 {
		if s := snippet(e.RawBody, 200); s != "" {
			parts = append(parts, "unexpected response body: "+s)
		} else {
			parts = append(parts, strings.ToLower(http.StatusText(e.StatusCode)))
		}
	}
	return strings.Join(parts, ": ")
}

// hint says how to fix the error.
func (e *APIError) hint() string {
	switch s := e.StatusCode; {
	case s >= 300 && s <= 399:
		return "the API redirected to " + e.Location + ", and this client follows no redirect " +
			"(it would send the API key there): set WORKOS_BASE_URL (the client's base URL) to the API's own address, " +
			"such as https://api.workos.com/, or to the fake's, not to a proxy or an old address that redirects"
	case s == http.StatusBadRequest:
		return "the request was not acceptable: check the IDs and filter values"
	case s == http.StatusUnauthorized:
		return "check the WorkOS API key (it must be a secret key starting with sk_ for this environment)"
	case s == http.StatusForbidden:
		return "the API key lacks Directory Sync permission: use a key of this environment with Directory Sync access"
	case s == http.StatusNotFound:
		return "the object does not exist or was deleted: list first to get current IDs"
	case s == http.StatusRequestTimeout:
		return "the request timed out at WorkOS: retry later"
	case s == http.StatusUnprocessableEntity:
		return "check the organization or directory filter and the pagination parameters"
	case s == http.StatusTooManyRequests:
		h := "rate limited by WorkOS: lower the request rate (workos.RateLimits) or retry later"
		if e.RetryAfter > 0 {
			h += " (Retry-After " + e.RetryAfter.String() + ")"
		}
		return h
	case s >= 500:
		return "WorkOS server error: retry later and check https://status.workos.com"
	default:
		return "unexpected HTTP status from the WorkOS API"
	}
}

// IsNotFound reports whether err is, or wraps, an APIError with status 404.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsRateLimited reports whether err is, or wraps, an APIError with status 429.
func IsRateLimited(err error) bool { return hasStatus(err, http.StatusTooManyRequests) }

// IsUnauthorized reports whether err is, or wraps, an APIError with status 401:
// the API key is wrong, revoked or of another environment.
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

// IsForbidden reports whether err is, or wraps, an APIError with status 403:
// the API key is valid but lacks permission.
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

func hasStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.StatusCode == status
}

// DecodeError is a 2xx response whose body is not the JSON the client expects:
// complete but malformed, or of the wrong shape. It is not retried. (A body cut
// short in transit is retried as a network error instead.)
type DecodeError struct {
	StatusCode int    // HTTP status code (2xx)
	Method     string // HTTP method of the request
	Path       string // API path without query, e.g. /directory_users
	RequestID  string // X-Request-ID response header
	RawBody    string // the body, truncated to 2 KiB
	Err        error  // the JSON error
}

// Error names the endpoint, the request id and the JSON problem.
func (e *DecodeError) Error() string {
	rid := e.RequestID
	if rid == "" {
		rid = "none"
	}
	return fmt.Sprintf("workos: %s %s: malformed JSON in %d response (request_id: %s): %v: "+
		"the API answered with a body this client cannot decode; report the request id to WorkOS support",
		e.Method, e.Path, e.StatusCode, rid, e.Err)
}

// Unwrap returns the JSON error.
func (e *DecodeError) Unwrap() error { return e.Err }

// ErrInvalidArgument is matched (with errors.Is) by every error the client
// returns for an argument it refuses before sending a request: a bad ID prefix,
// a limit outside 1..100, an unknown order, a filter that needs another filter.
var ErrInvalidArgument = errors.New("workos: invalid argument")

// invalidArgError is a refused argument; it matches ErrInvalidArgument.
type invalidArgError struct{ msg string }

func (e *invalidArgError) Error() string        { return e.msg }
func (e *invalidArgError) Is(target error) bool { return target == ErrInvalidArgument }

func invalidArg(format string, args ...any) error {
	return &invalidArgError{msg: "workos: " + fmt.Sprintf(format, args...)}
}

// parseErrorBody fills the body fields of e from an error response body. It
// never fails: whatever it cannot read stays in RawBody only.
func parseErrorBody(e *APIError, body []byte) {
	e.RawBody = truncateBytes(body, maxRawBody)
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case '"':
		var s string
		if json.Unmarshal(b, &s) == nil {
			e.Message = s
		}
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			return
		}
		e.Message = jsonText(m["message"])
		e.Code = jsonText(m["code"])
		if e.Code == "" {
			e.Code = jsonText(m["error"])
		}
		e.ErrorDescription = jsonText(m["error_description"])
		if raw, ok := m["errors"]; ok && string(raw) != "null" {
			e.Errors = raw
		}
	}
}

// jsonText returns a JSON string's value, or the compact JSON of any other
// non-null value (codes are sometimes numbers).
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return compactJSON(raw)
}

func compactJSON(raw []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}

// snippet collapses whitespace (HTML from proxies spans lines) and truncates s
// to n bytes, on a rune boundary.
func snippet(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	return truncateString(s, n)
}

func truncateBytes(b []byte, n int) string { return truncateString(string(b), n) }

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "… (" + strconv.Itoa(len(s)) + " bytes)"
}
