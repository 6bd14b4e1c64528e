package lambdafn

import (
	"fmt"
	"github.com/dsync-export/dsync-export/pkg/workos"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
)

// Reader reads a function's configuration from environment variables and
// collects every problem, so that a bad configuration fails with one message
// naming each bad or missing variable.
//
//	r := lambdafn.New(os.Getenv)
//	n := r.Int("EXPORT_CONCURRENCY", 32, 1, 1000)
//	if err := r.Err("export"); err != nil { ... } // lists every bad variable
//
// Reader reads variables through getenv and records every problem.
type Reader struct {
	getenv func(string) string
	errs   []string
}

// New returns a Reader over getenv (os.Getenv, or a map lookup in tests).
func New(getenv func(string) string) *Reader { return &Reader{getenv: getenv} }

// Bad records a problem with the variable name.
func (r *Reader) Bad(name, format string, args ...any) {
	r.errs = append(r.errs, name+": "+fmt.Sprintf(format, args...))
}

// Err returns nil, or one error listing every problem, prefixed with what is
// being configured ("export", "verify").
func (r *Reader) Err(what string) error {
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: invalid configuration:\n  - %s", what, strings.Join(r.errs, "\n  - "))
}

// String returns the trimmed value of name ("" when unset).
func (r *Reader) String(name string) string { return strings.TrimSpace(r.getenv(name)) }

// Int parses a whole number from lo to hi; def when unset.
func (r *Reader) Int(name string, def, lo, hi int) int {
	v := r.String(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.Bad(name, "%q must be a whole number from %d to %d", v, lo, hi)
		return def
	}
	return n
}

// Rate parses a non-negative number of requests per second; def when unset.
func (r *Reader) Rate(name string, def float64) float64 {
	v := r.String(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		r.Bad(name, "%q must be a number of requests per second, 0 to turn the limiter off", v)
		return def
	}
	return f
}

// Bool parses true/false (and the other strconv.ParseBool forms); def when unset.
func (r *Reader) Bool(name string, def bool) bool {
	v := r.String(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.Bad(name, "%q must be true or false", v)
		return def
	}
	return b
}

// Duration parses a non-negative Go duration such as 60s; def when unset.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	v := r.String(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.Bad(name, "%q must be a duration such as 60s", v)
		return def
	}
	return d
}

// List splits a comma- or space-separated list.
func (r *Reader) List(name string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(r.getenv(name), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// LogLevel parses debug, info, warn or error; info when unset.
func (r *Reader) LogLevel(name string) slog.Level {
	switch v := strings.ToLower(r.String(name)); v {
	case "", "info":
		return slog.LevelInfo
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		r.Bad(name, "%q must be debug, info, warn or error", v)
		return slog.LevelInfo
	}
}

// Destination reads an export destination: s3://bucket/prefix or a local
// folder. It returns the value and, for S3, the bucket and the prefix without
// slashes at either end (objstore.ParseS3URL). missing is the fix shown when
// it is unset.
func (r *Reader) Destination(name, missing string) (dest, bucket, prefix string) {
	dest = r.String(name)
	switch {
	case dest == "":
		r.Bad(name, "missing: %s", missing)
	case strings.HasPrefix(dest, "s3://"):
		b, p, err := objstore.ParseS3URL(dest)
		if err != nil {
			r.Bad(name, "%v", err)
		}
		bucket, prefix = b, p
	}
	return dest, bucket, prefix
}

// WorkOS is where a function gets the WorkOS API key and base URL.
type WorkOS struct {
	SecretID    string // WORKOS_API_KEY_SECRET_ID: name or ARN of the key's secret
	SecretField string // WORKOS_API_KEY_SECRET_FIELD (default api_key)
	APIKey      string // WORKOS_API_KEY: local runs only
	BaseURL     string // WORKOS_BASE_URL (default https://api.workos.com/)
}

// WorkOS reads the WORKOS_* key and URL variables. When requireKey is set,
// missingKey is the fix shown when neither a secret nor a key is given.
func (r *Reader) WorkOS(requireKey bool, missingKey string) WorkOS {
	w := WorkOS{
		SecretID:    r.String("WORKOS_API_KEY_SECRET_ID"),
		SecretField: r.String("WORKOS_API_KEY_SECRET_FIELD"),
		APIKey:      r.String("WORKOS_API_KEY"),
		BaseURL:     r.String("WORKOS_BASE_URL"),
	}
	if w.SecretField == "" {
		w.SecretField = "api_key"
	}
	if requireKey && w.SecretID == "" && w.APIKey == "" {
		r.Bad("WORKOS_API_KEY_SECRET_ID", "missing: %s", missingKey)
	}
	if w.BaseURL == "" {
		w.BaseURL = workos.DefaultBaseURL
	} else if !strings.HasPrefix(w.BaseURL, "http://") && !strings.HasPrefix(w.BaseURL, "https://") {
		r.Bad("WORKOS_BASE_URL", "%q must be an http(s) URL such as https://api.workos.com", w.BaseURL)
	}
	return w
}
