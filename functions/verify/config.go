package main

import (
	"fmt"
	"github.com/dsync-export/dsync-export/pkg/workos"
	"log/slog"
	"strconv"
	"strings"

	"github.com/dsync-export/dsync-export/pkg/lambdafn"
	"github.com/dsync-export/dsync-export/pkg/verify"
)

// maxSample bounds VERIFY_SAMPLE: each sampled record is one WorkOS request.
const maxSample = 10_000

// config is everything the verify function reads from its environment.
type config struct {
	Destination string     // EXPORT_DESTINATION: s3://bucket/prefix or a local folder
	Bucket      string     // the bucket of an s3:// destination ("" for a folder)
	Prefix      string     // its key prefix, without slashes at either end
	Sample      int        // VERIFY_SAMPLE: records per table re-fetched from WorkOS (0: off)
	MaxDrop     float64    // VERIFY_MAX_DROP: the largest allowed drop since the previous snapshot, a fraction
	SecretID    string     // WORKOS_API_KEY_SECRET_ID: name or ARN of the key's secret
	SecretField string     // WORKOS_API_KEY_SECRET_FIELD (default api_key)
	APIKey      string     // WORKOS_API_KEY: local runs only
	BaseURL     string     // WORKOS_BASE_URL (default https://api.workos.com/)
	PathStyle   bool       // EXPORT_S3_PATH_STYLE
	LogLevel    slog.Level // LOG_LEVEL: local runs only (in Lambda, the function's LoggingConfig sets it)
}

// envVar documents one environment variable for --help.
type envVar struct {
	Name, Default, Doc string
}

// envVars lists every variable the verifier reads, in --help order
// (template.yaml declares all but LOG_LEVEL, which only local runs read).
var envVars = []envVar{
	{"EXPORT_DESTINATION", "(required)", "the export's destination: s3://bucket/prefix or a local folder"},
	{"VERIFY_SAMPLE", "0", fmt.Sprintf("records per table re-fetched from WorkOS and compared (0 to %d; 0 turns sampling off)", maxSample)},
	{"VERIFY_MAX_DROP", "20%", "the largest fall in users or memberships since the latest verified snapshot that is not a failure, in total and per directory: a percent (20%) or a fraction (0.2)"},
	{"WORKOS_API_KEY_SECRET_ID", "(none)", "name or ARN of the Secrets Manager secret holding the WorkOS API key; needed when VERIFY_SAMPLE > 0"},
	{"WORKOS_API_KEY_SECRET_FIELD", "api_key", "the JSON field of that secret holding the key"},
	{"WORKOS_API_KEY", "(none)", "the WorkOS API key itself, for local runs instead of a secret"},
	{"WORKOS_BASE_URL", workos.DefaultBaseURL, "the WorkOS API"},
	{"EXPORT_S3_PATH_STYLE", "false", "path-style S3 addressing, for S3-compatible servers"},
	{"LOG_LEVEL", "info", "debug, info, warn or error; local runs only (in Lambda the function's LoggingConfig sets the level)"},
}

// envNames lists every variable the verifier reads.
var envNames = func() []string {
	names := make([]string, len(envVars))
	for i, v := range envVars {
		names[i] = v.Name
	}
	return names
}()

// loadConfig reads and validates the environment and reports every bad or
// missing variable in one error. The WorkOS key is needed only when
// VERIFY_SAMPLE is above 0.
func loadConfig(getenv func(string) string) (config, error) {
	r := lambdafn.New(getenv)
	var c config
	c.Destination, c.Bucket, c.Prefix = r.Destination("EXPORT_DESTINATION", "set it to the export's destination, s3://bucket/prefix or a local folder")
	c.Sample = r.Int("VERIFY_SAMPLE", 0, 0, maxSample)
	c.MaxDrop = readDrop(r, "VERIFY_MAX_DROP", verify.DefaultMaxDrop)
	w := r.WorkOS(c.Sample > 0, fmt.Sprintf("VERIFY_SAMPLE=%d re-fetches records from WorkOS; set it to the name or ARN of the Secrets Manager secret holding the WorkOS API key (or WORKOS_API_KEY for a local run), or set VERIFY_SAMPLE=0", c.Sample))
	c.SecretID, c.SecretField, c.APIKey, c.BaseURL = w.SecretID, w.SecretField, w.APIKey, w.BaseURL
	c.PathStyle = r.Bool("EXPORT_S3_PATH_STYLE", false)
	c.LogLevel = r.LogLevel("LOG_LEVEL")
	return c, r.Err("verify")
}

// readDrop parses a drop allowance: a percent ("20%", "12.5%") or a fraction
// ("0.2"), above 0 and at most 100%; def when unset.
func readDrop(r *lambdafn.Reader, name string, def float64) float64 {
	v := r.String(name)
	if v == "" {
		return def
	}
	num, pct := strings.CutSuffix(v, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if pct {
		f /= 100
	}
	if err != nil || f <= 0 || f > 1 {
		r.Bad(name, "%q must be a percent above 0 and at most 100%% (20%%) or a fraction above 0 and at most 1 (0.2)", v)
		return def
	}
	return f
}
