package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// config is everything the export function reads from its environment.
type config struct {
	Destination     string // EXPORT_DESTINATION: s3://bucket/prefix or a local folder
	SecretID        string // WORKOS_API_KEY_SECRET_ID: name or ARN of the key's secret
	SecretField     string // WORKOS_API_KEY_SECRET_FIELD: JSON field of the secret (default api_key)
	APIKey          string // WORKOS_API_KEY: local runs only
	BaseURL         string // WORKOS_BASE_URL
	PathStyle       bool   // EXPORT_S3_PATH_STYLE
	MaxAttempts     int    // WORKOS_MAX_ATTEMPTS
	RateLimits      workos.RateLimits
	Export          export.Config
	LogLevel        slog.Level
	Compression     string // EXPORT_COMPRESSION: zstd or snappy
	FileRolloverMiB int64  // EXPORT_MAX_FILE_MIB
}

// envNames lists every variable the export reads (template.yaml declares them).
var envNames = []string{
	"EXPORT_DESTINATION", "WORKOS_API_KEY_SECRET_ID", "WORKOS_API_KEY_SECRET_FIELD", "WORKOS_API_KEY",
	"WORKOS_BASE_URL", "EXPORT_CONCURRENCY", "EXPORT_MEMBERSHIP_MODE", "EXPORT_ORGANIZATION_IDS",
	"EXPORT_DIRECTORY_IDS", "EXPORT_S3_PATH_STYLE", "EXPORT_DEADLINE_MARGIN", "WORKOS_RATE_LIMIT_DIRECTORY_USERS",
	"WORKOS_RATE_LIMIT_GLOBAL", "WORKOS_MAX_ATTEMPTS", "EXPORT_COMPRESSION", "EXPORT_MAX_FILE_MIB", "LOG_LEVEL",
}

// loadConfig reads and validates the environment. It reports every bad or
// missing variable in one error. requireKey is false for the local demo, which
// brings its own WorkOS fake.
func loadConfig(getenv func(string) string, requireKey bool) (config, error) {
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
		Export:      export.DefaultConfig(),
		RateLimits:  workos.DefaultRateLimits,
		MaxAttempts: 5,
		Compression: "zstd",
	}
	if c.Destination == "" {
		bad("EXPORT_DESTINATION", "missing: set it to s3://bucket/prefix or a local folder")
	} else if strings.HasPrefix(c.Destination, "s3://") {
		rest := strings.TrimPrefix(c.Destination, "s3://")
		if bucket, _, _ := strings.Cut(rest, "/"); bucket == "" {
			bad("EXPORT_DESTINATION", "%q has no bucket: use s3://bucket/prefix", c.Destination)
		}
	}
	if c.SecretField == "" {
		c.SecretField = "api_key"
	}
	if requireKey && c.SecretID == "" && c.APIKey == "" {
		bad("WORKOS_API_KEY_SECRET_ID", "missing: set it to the name or ARN of the Secrets Manager secret holding the WorkOS API key (or WORKOS_API_KEY for a local run)")
	}
	if c.BaseURL == "" {
		c.BaseURL = "https://api.workos.com/"
	} else if !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		bad("WORKOS_BASE_URL", "%q must be an http(s) URL such as https://api.workos.com", c.BaseURL)
	}
	c.PathStyle = parseBool(getenv, "EXPORT_S3_PATH_STYLE", false, bad)
	c.Export.Concurrency = parseInt(getenv, "EXPORT_CONCURRENCY", c.Export.Concurrency, 1, 1000, bad)
	c.MaxAttempts = parseInt(getenv, "WORKOS_MAX_ATTEMPTS", c.MaxAttempts, 1, 20, bad)
	if v := strings.TrimSpace(getenv("EXPORT_MEMBERSHIP_MODE")); v != "" {
		switch v {
		case export.MembershipAuto, export.MembershipByGroup, export.MembershipByUser, export.MembershipLegacy:
			c.Export.MembershipMode = v
		default:
			bad("EXPORT_MEMBERSHIP_MODE", "%q must be auto, by_group, by_user or legacy", v)
		}
	}
	c.Export.OrganizationIDs = parseList(getenv("EXPORT_ORGANIZATION_IDS"))
	for _, id := range c.Export.OrganizationIDs {
		if !strings.HasPrefix(id, "org_") {
			bad("EXPORT_ORGANIZATION_IDS", "%q is not an organization ID (org_…)", id)
		}
	}
	c.Export.DirectoryIDs = parseList(getenv("EXPORT_DIRECTORY_IDS"))
	for _, id := range c.Export.DirectoryIDs {
		if !strings.HasPrefix(id, workos.DirectoryIDPrefix) || strings.HasPrefix(id, workos.DirectoryUserIDPrefix) || strings.HasPrefix(id, workos.DirectoryGroupIDPrefix) {
			bad("EXPORT_DIRECTORY_IDS", "%q is not a directory ID (directory_…)", id)
		}
	}
	if v := strings.TrimSpace(getenv("EXPORT_DEADLINE_MARGIN")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad("EXPORT_DEADLINE_MARGIN", "%q must be a duration such as 60s", v)
		} else {
			c.Export.DeadlineMargin = d
		}
	}
	c.RateLimits.PerDirectoryUsers = parseFloat(getenv, "WORKOS_RATE_LIMIT_DIRECTORY_USERS", c.RateLimits.PerDirectoryUsers, bad)
	c.RateLimits.Global = parseFloat(getenv, "WORKOS_RATE_LIMIT_GLOBAL", c.RateLimits.Global, bad)
	c.Export.PerDirectoryRate = c.RateLimits.PerDirectoryUsers
	c.Export.GlobalRate = c.RateLimits.Global
	if v := strings.TrimSpace(getenv("EXPORT_COMPRESSION")); v != "" {
		if v != "zstd" && v != "snappy" {
			bad("EXPORT_COMPRESSION", "%q must be zstd or snappy", v)
		} else {
			c.Compression = v
		}
	}
	c.Export.Writer.Compression = c.Compression
	c.FileRolloverMiB = int64(parseInt(getenv, "EXPORT_MAX_FILE_MIB", 256, 16, 4096, bad))
	c.Export.Writer.MaxFileBytes = c.FileRolloverMiB << 20
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
		return c, fmt.Errorf("export: invalid configuration:\n  - %s", strings.Join(errs, "\n  - "))
	}
	return c, nil
}

func parseList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseInt(getenv func(string) string, name string, def, lo, hi int, bad func(string, string, ...any)) int {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		bad(name, "%q must be a whole number from %d to %d", v, lo, hi)
		return def
	}
	return n
}

func parseFloat(getenv func(string) string, name string, def float64, bad func(string, string, ...any)) float64 {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		bad(name, "%q must be a number of requests per second, 0 to turn the limiter off", v)
		return def
	}
	return f
}

func parseBool(getenv func(string) string, name string, def bool, bad func(string, string, ...any)) bool {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		bad(name, "%q must be true or false", v)
		return def
	}
	return b
}

// getenvOS is os.Getenv, named for tests that pass their own lookup.
var getenvOS = os.Getenv
