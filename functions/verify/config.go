package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// maxSample bounds VERIFY_SAMPLE: each sampled record is one WorkOS request.
const maxSample = 10_000

// config is everything the verify function reads from its environment.
type config struct {
	Destination string // EXPORT_DESTINATION: s3://bucket/prefix or a local folder
	Bucket      string // the bucket of an s3:// destination ("" for a folder)
	Prefix      string // its key prefix, without slashes at either end
	Sample      int    // VERIFY_SAMPLE: records per table re-fetched from WorkOS (0: off)
	SecretID    string // WORKOS_API_KEY_SECRET_ID: name or ARN of the key's secret
	SecretField string // WORKOS_API_KEY_SECRET_FIELD (default api_key)
	APIKey      string // WORKOS_API_KEY: local runs only
	BaseURL     string // WORKOS_BASE_URL (default https://api.workos.com/)
	PathStyle   bool   // EXPORT_S3_PATH_STYLE
	LogLevel    slog.Level
}

// envNames lists every variable the verifier reads (template.yaml declares them).
var envNames = []string{
	"EXPORT_DESTINATION", "VERIFY_SAMPLE", "WORKOS_API_KEY_SECRET_ID", "WORKOS_API_KEY_SECRET_FIELD",
	"WORKOS_API_KEY", "WORKOS_BASE_URL", "EXPORT_S3_PATH_STYLE", "LOG_LEVEL",
}

// loadConfig reads and validates the environment and reports every bad or
// missing variable in one error. The WorkOS key is needed only when
// VERIFY_SAMPLE is above 0.
func loadConfig(getenv func(string) string) (config, error) {
	var errs []string
	bad := func(name, format string, args ...any) {
		errs = append(errs, name+": "+fmt.Sprintf(format, args...))
	}
	c := config{
		Destination: strings.TrimSpace(getenv("EXPORT_DESTINATION")),
		SecretID:    strings.TrimSpace(getenv("WORKOS_API_KEY_SECRET_ID")),
		SecretField: strings.TrimSpace(getenv("WORKOS_API_KEY_SECRET_FIELD")),
		APIKey:      strings.TrimSpace(getenv("WORKOS_API_KEY")),
		BaseURL:     strings.TrimSpace(getenv("WORKOS_BASE_URL")),
	}
	switch {
	case c.Destination == "":
		bad("EXPORT_DESTINATION", "missing: set it to the export's destination, s3://bucket/prefix or a local folder")
	case strings.HasPrefix(c.Destination, "s3://"):
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(c.Destination, "s3://"), "/")
		if bucket == "" {
			bad("EXPORT_DESTINATION", "%q has no bucket: use s3://bucket/prefix", c.Destination)
		}
		c.Bucket, c.Prefix = bucket, strings.Trim(prefix, "/")
	}
	if v := strings.TrimSpace(getenv("VERIFY_SAMPLE")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxSample {
			bad("VERIFY_SAMPLE", "%q must be a whole number from 0 (no sampling) to %d", v, maxSample)
		} else {
			c.Sample = n
		}
	}
	if c.SecretField == "" {
		c.SecretField = "api_key"
	}
	if c.Sample > 0 && c.SecretID == "" && c.APIKey == "" {
		bad("WORKOS_API_KEY_SECRET_ID", "missing: VERIFY_SAMPLE=%d re-fetches records from WorkOS; set it to the name or ARN of the Secrets Manager secret holding the WorkOS API key (or WORKOS_API_KEY for a local run), or set VERIFY_SAMPLE=0", c.Sample)
	}
	if c.BaseURL == "" {
		c.BaseURL = "https://api.workos.com/"
	} else if !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		bad("WORKOS_BASE_URL", "%q must be an http(s) URL such as https://api.workos.com", c.BaseURL)
	}
	if v := strings.TrimSpace(getenv("EXPORT_S3_PATH_STYLE")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("EXPORT_S3_PATH_STYLE", "%q must be true or false", v)
		}
		c.PathStyle = b
	}
	switch v := strings.ToLower(strings.TrimSpace(getenv("LOG_LEVEL"))); v {
	case "", "info":
		c.LogLevel = slog.LevelInfo
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		bad("LOG_LEVEL", "%q must be debug, info, warn or error", v)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("verify: invalid configuration:\n  - %s", strings.Join(errs, "\n  - "))
	}
	return c, nil
}
