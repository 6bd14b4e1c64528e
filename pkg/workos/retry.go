package workos

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The retry policy is two pure functions, shouldRetry and backoff, used only by
// Client.do. Nothing else in the package retries.

// shouldRetry reports whether an attempt should be retried. status is the HTTP
// status of the response, or 0 when the attempt failed without one; err is the
// transport error, the body read error or the truncated-JSON error, or nil.
//
// Only idempotent methods (GET, HEAD, DELETE) are retried, never once ctx is
// done. They are retried on network errors (except TLS certificate errors), a
// body cut short, 408, 429 and 5xx other than 501. 401, 403, 404, 422 and
// other 4xx are final.
func shouldRetry(ctx context.Context, method string, status int, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
	default:
		return false
	}
	if err != nil {
		var certErr *tls.CertificateVerificationError
		var authErr x509.UnknownAuthorityError
		var hostErr x509.HostnameError
		if errors.As(err, &certErr) || errors.As(err, &authErr) || errors.As(err, &hostErr) {
			return false // retrying will not fix the certificate
		}
		return true
	}
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return true
	case status == http.StatusNotImplemented:
		return false
	case status >= 500 && status <= 599:
		return true
	}
	return false
}

// backoff returns how long to wait before retry number attempt (1 for the
// first retry). A positive retryAfter (already capped by the caller) overrides
// the computed wait. Otherwise the wait is exponential with equal jitter:
// d = min(max, base·2^(attempt-1)), wait in [d/2, d). rnd is a uniform random
// number in [0, 1).
func backoff(attempt int, retryAfter, base, max time.Duration, rnd float64) time.Duration {
	if retryAfter > 0 {
		return retryAfter
	}
	if attempt < 1 {
		attempt = 1
	}
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max || d <= 0 { // d <= 0 guards overflow
		d = max
	}
	half := d / 2
	return half + time.Duration(rnd*float64(d-half))
}

// parseRetryAfter reads a Retry-After header given in seconds or as an
// HTTP-date, relative to now. It returns 0 when the header is absent, invalid
// or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// errTruncated marks a 2xx body that ended before its JSON did, so that
// shouldRetry treats it like any other network error.
type errTruncated struct{ err error }

func (e *errTruncated) Error() string {
	return "response body cut short (" + e.err.Error() + ")"
}
func (e *errTruncated) Unwrap() error { return e.err }

// isTruncatedJSON reports whether a JSON decoding error means the input ended
// early, as opposed to complete but malformed JSON.
func isTruncatedJSON(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var syn *json.SyntaxError
	return errors.As(err, &syn) && syn.Error() == "unexpected end of JSON input"
}
