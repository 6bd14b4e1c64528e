package main

import (
	"log/slog"
	"strings"

	"github.com/dsync-export/dsync-export/pkg/lambdafn"
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

// loadConfig reads and validates the environment. It reports every bad or
// missing variable in one error. requireKey is false for the local demo, which
// brings its own WorkOS fake.
func loadConfig(getenv func(string) string, requireKey bool) (config, error) {
	r := lambdafn.New(getenv)
	c := config{
		Export:     export.DefaultConfig(),
		RateLimits: workos.DefaultRateLimits,
	}
	c.Destination, _, _ = r.Destination("EXPORT_DESTINATION", "set it to s3://bucket/prefix or a local folder")
	w := r.WorkOS(requireKey, "set it to the name or ARN of the Secrets Manager secret holding the WorkOS API key (or WORKOS_API_KEY for a local run)")
	c.SecretID, c.SecretField, c.APIKey, c.BaseURL = w.SecretID, w.SecretField, w.APIKey, w.BaseURL
	c.PathStyle = r.Bool("EXPORT_S3_PATH_STYLE", false)
	c.Export.Concurrency = r.Int("EXPORT_CONCURRENCY", c.Export.Concurrency, 1, 1000)
	c.MaxAttempts = r.Int("WORKOS_MAX_ATTEMPTS", 5, 1, 20)
	if v := r.String("EXPORT_MEMBERSHIP_MODE"); v != "" {
		switch v {
		case export.MembershipAuto, export.MembershipByGroup, export.MembershipByUser, export.MembershipLegacy:
			c.Export.MembershipMode = v
		default:
			r.Bad("EXPORT_MEMBERSHIP_MODE", "%q must be auto, by_group, by_user or legacy", v)
		}
	}
	c.Export.OrganizationIDs = r.List("EXPORT_ORGANIZATION_IDS")
	for _, id := range c.Export.OrganizationIDs {
		if !strings.HasPrefix(id, "org_") {
			r.Bad("EXPORT_ORGANIZATION_IDS", "%q is not an organization ID (org_…)", id)
		}
	}
	c.Export.DirectoryIDs = r.List("EXPORT_DIRECTORY_IDS")
	for _, id := range c.Export.DirectoryIDs {
		if !strings.HasPrefix(id, workos.DirectoryIDPrefix) || strings.HasPrefix(id, workos.DirectoryUserIDPrefix) || strings.HasPrefix(id, workos.DirectoryGroupIDPrefix) {
			r.Bad("EXPORT_DIRECTORY_IDS", "%q is not a directory ID (directory_…)", id)
		}
	}
	c.Export.DeadlineMargin = r.Duration("EXPORT_DEADLINE_MARGIN", c.Export.DeadlineMargin)
	c.RateLimits.PerDirectoryUsers = r.Rate("WORKOS_RATE_LIMIT_DIRECTORY_USERS", c.RateLimits.PerDirectoryUsers)
	c.RateLimits.Global = r.Rate("WORKOS_RATE_LIMIT_GLOBAL", c.RateLimits.Global)
	c.Export.PerDirectoryRate = c.RateLimits.PerDirectoryUsers
	c.Export.GlobalRate = c.RateLimits.Global
	c.Compression = "zstd"
	if v := r.String("EXPORT_COMPRESSION"); v != "" {
		if v != "zstd" && v != "snappy" {
			r.Bad("EXPORT_COMPRESSION", "%q must be zstd or snappy", v)
		} else {
			c.Compression = v
		}
	}
	c.Export.Writer.Compression = c.Compression
	c.FileRolloverMiB = int64(r.Int("EXPORT_MAX_FILE_MIB", 256, 16, 4096))
	c.Export.Writer.MaxFileBytes = c.FileRolloverMiB << 20
	c.LogLevel = r.LogLevel("LOG_LEVEL")
	return c, r.Err("export")
}
