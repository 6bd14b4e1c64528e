package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/lambdafn"
	"github.com/dsync-export/dsync-export/pkg/parquetfile"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
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
	LogLevel        slog.Level // LOG_LEVEL: local runs only (Lambda follows its LoggingConfig)
	LogLevelSet     bool
	ProjectionStart string // EXPORT_PROJECTION_START: the Athena projection's first date
	Compression     string // EXPORT_COMPRESSION: zstd or snappy
	FileRolloverMiB int64  // EXPORT_MAX_FILE_MIB
	Workers         int    // EXPORT_WORKERS: unit chunks running at once under the state machine
}

// envVar documents one variable for --help; the defaults come from the same
// values loadConfig uses.
type envVar struct {
	Name, Default, Doc string
}

func envVars() []envVar {
	d := export.DefaultConfig()
	return []envVar{
		{"EXPORT_DESTINATION", "(required)", "s3://bucket/prefix or a local folder"},
		{"WORKOS_API_KEY_SECRET_ID", "", "name or ARN of the Secrets Manager secret holding the WorkOS API key"},
		{"WORKOS_API_KEY_SECRET_FIELD", "api_key", "JSON field of that secret holding the key"},
		{"WORKOS_API_KEY", "", "the key itself, for local runs (never in Lambda)"},
		{"WORKOS_BASE_URL", workos.DefaultBaseURL, "WorkOS API base URL"},
		{"WORKOS_MAX_ATTEMPTS", "5", "attempts per WorkOS request (1-20)"},
		{"WORKOS_RATE_LIMIT_DIRECTORY_USERS", fmt.Sprint(workos.DefaultRateLimits.PerDirectoryUsers), "requests/s per directory on /directory_users (0: off)"},
		{"WORKOS_RATE_LIMIT_GLOBAL", fmt.Sprint(workos.DefaultRateLimits.Global), "requests/s for the whole key (0: off)"},
		{"EXPORT_CONCURRENCY", fmt.Sprint(d.Concurrency), "directories exported at once (1-1000)"},
		{"EXPORT_MEMBERSHIP_MODE", d.MembershipMode, strings.Join(export.MembershipModes, ", ")},
		{"EXPORT_ORGANIZATION_IDS", "", "export only these organizations (comma-separated org_…)"},
		{"EXPORT_DIRECTORY_IDS", "", "export only these directories (comma-separated directory_…)"},
		{"EXPORT_DEADLINE_MARGIN", d.DeadlineMargin.String(), "stop this long before the invocation deadline (a unit chunk: checkpoint and return)"},
		{"EXPORT_WORKERS", "1", "unit chunks that run at once (the state machine's MaxConcurrency); each paces itself to WORKOS_RATE_LIMIT_GLOBAL / EXPORT_WORKERS (1-10000)"},
		{"EXPORT_MODE", d.Mode, "auto (incremental from the Events API where safe), full, or incremental (fail where a full walk is needed)"},
		{"EXPORT_FULL_EVERY", d.FullEvery.String(), "walk each directory in full at least this often, the reconcile (0s: never)"},
		{"EXPORT_EVENTS_MARGIN", d.EventsMargin.String(), "walk in full when the event cursor is older than the 30-day retention minus this"},
		{"EXPORT_EVENTS_SETTLE", d.EventsSettle.String(), "read events only up to this long before now: WorkOS holds fresh events back from cursor reads for a few seconds"},
		{"EXPORT_PROGRESS_EVERY", d.ProgressEvery.String(), "log a progress line this often (0s: never)"},
		{"EXPORT_PROJECTION_START", schema.DefaultProjectionStart, "first date of the Athena projection range: earlier snapshot dates are refused"},
		{"EXPORT_COMPRESSION", parquetfile.DefaultCompression, "zstd or snappy"},
		{"EXPORT_MAX_FILE_MIB", "256", "start a new Parquet part past this size (16-4096)"},
		{"EXPORT_S3_PATH_STYLE", "false", "path-style S3 URLs (for S3-compatible servers)"},
		{"LOG_LEVEL", "info", "debug, info, warn or error; local runs only (Lambda uses its LoggingConfig)"},
	}
}

func printEnvHelp(w io.Writer) {
	fmt.Fprintln(w, "\nEnvironment variables:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, v := range envVars() {
		def := v.Default
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, v.Doc)
	}
	_ = tw.Flush()
}

// envOfField maps export.Config fields to the variable that sets them, so a
// problem found by export.Config.Check names the variable to fix.
var envOfField = map[string]string{
	"Concurrency":      "EXPORT_CONCURRENCY",
	"MembershipMode":   "EXPORT_MEMBERSHIP_MODE",
	"OrganizationIDs":  "EXPORT_ORGANIZATION_IDS",
	"DirectoryIDs":     "EXPORT_DIRECTORY_IDS",
	"DeadlineMargin":   "EXPORT_DEADLINE_MARGIN",
	"PerDirectoryRate": "WORKOS_RATE_LIMIT_DIRECTORY_USERS",
	"GlobalRate":       "WORKOS_RATE_LIMIT_GLOBAL",
	"ProgressEvery":    "EXPORT_PROGRESS_EVERY",
	"Mode":             "EXPORT_MODE",
	"FullEvery":        "EXPORT_FULL_EVERY",
	"EventsMargin":     "EXPORT_EVENTS_MARGIN",
	"EventsSettle":     "EXPORT_EVENTS_SETTLE",
}

// loadConfig reads the environment and reports every bad or missing variable
// in one error. It parses; export.Config.Check is the one place the export's
// settings are judged.
func loadConfig(getenv func(string) string) (config, error) {
	r := lambdafn.New(getenv)
	c := config{
		Export:     export.DefaultConfig(),
		RateLimits: workos.DefaultRateLimits,
	}
	c.Destination, _, _ = r.Destination("EXPORT_DESTINATION", "set it to s3://bucket/prefix or a local folder")
	w := r.WorkOS(true, "set it to the name or ARN of the Secrets Manager secret holding the WorkOS API key (or WORKOS_API_KEY for a local run)")
	c.SecretID, c.SecretField, c.APIKey, c.BaseURL = w.SecretID, w.SecretField, w.APIKey, w.BaseURL
	c.PathStyle = r.Bool("EXPORT_S3_PATH_STYLE", false)
	c.Export.Concurrency = r.Int("EXPORT_CONCURRENCY", c.Export.Concurrency, 1, 1000)
	c.MaxAttempts = r.Int("WORKOS_MAX_ATTEMPTS", 5, 1, 20)
	if v := r.String("EXPORT_MEMBERSHIP_MODE"); v != "" {
		c.Export.MembershipMode = v
	}
	c.Export.OrganizationIDs = r.List("EXPORT_ORGANIZATION_IDS")
	c.Export.DirectoryIDs = r.List("EXPORT_DIRECTORY_IDS")
	c.Export.DeadlineMargin = r.Duration("EXPORT_DEADLINE_MARGIN", c.Export.DeadlineMargin)
	c.Export.ProgressEvery = r.Duration("EXPORT_PROGRESS_EVERY", c.Export.ProgressEvery)
	if v := r.String("EXPORT_MODE"); v != "" {
		c.Export.Mode = v
	}
	c.Export.FullEvery = r.Duration("EXPORT_FULL_EVERY", c.Export.FullEvery)
	c.Export.EventsMargin = r.Duration("EXPORT_EVENTS_MARGIN", c.Export.EventsMargin)
	c.Export.EventsSettle = r.Duration("EXPORT_EVENTS_SETTLE", c.Export.EventsSettle)
	c.Workers = r.Int("EXPORT_WORKERS", 1, 1, 10000)
	c.RateLimits.PerDirectoryUsers = r.Rate("WORKOS_RATE_LIMIT_DIRECTORY_USERS", c.RateLimits.PerDirectoryUsers)
	c.RateLimits.Global = r.Rate("WORKOS_RATE_LIMIT_GLOBAL", c.RateLimits.Global)
	c.Export.PerDirectoryRate = c.RateLimits.PerDirectoryUsers
	c.Export.GlobalRate = c.RateLimits.Global
	c.ProjectionStart = schema.DefaultProjectionStart
	if v := r.String("EXPORT_PROJECTION_START"); v != "" {
		if _, err := snapshot.ParseDate(v); err != nil {
			r.Bad("EXPORT_PROJECTION_START", "%q must be a date YYYY-MM-DD (the stack's ProjectionStartDate)", v)
		} else {
			c.ProjectionStart = v
		}
	}
	c.Compression = parquetfile.DefaultCompression
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
	c.LogLevelSet = r.String("LOG_LEVEL") != ""
	for _, p := range c.Export.Check() {
		name := envOfField[p.Field]
		if name == "" {
			name = p.Field
		}
		r.Bad(name, "%s", p.Message)
	}
	return c, r.Err("export")
}

// inputOfField maps export.Config fields to the input field that overrides them.
var inputOfField = map[string]string{
	"MembershipMode":  "input membership_mode",
	"Mode":            "input mode",
	"OrganizationIDs": "input organization_ids",
	"DirectoryIDs":    "input directory_ids",
}

// applyInput applies an invocation's overrides to a copy of the configured
// export settings and checks the result, naming the input fields at fault.
func applyInput(in *Input, base export.Config) (export.Config, error) {
	cfg := base
	if err := in.Apply(&cfg); err != nil {
		return cfg, err
	}
	ps := cfg.Check()
	if len(ps) == 0 {
		return cfg, nil
	}
	msgs := make([]string, len(ps))
	for i, p := range ps {
		name := inputOfField[p.Field]
		if name == "" {
			name = envOfField[p.Field]
		}
		msgs[i] = name + ": " + p.Message
	}
	return cfg, fmt.Errorf("export: invalid input:\n  - %s", strings.Join(msgs, "\n  - "))
}
