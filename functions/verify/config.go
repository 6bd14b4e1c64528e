package main

import (
	"fmt"
	"log/slog"

	"github.com/dsync-export/dsync-export/pkg/lambdafn"
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
	r := lambdafn.New(getenv)
	var c config
	c.Destination, c.Bucket, c.Prefix = r.Destination("EXPORT_DESTINATION", "set it to the export's destination, s3://bucket/prefix or a local folder")
	c.Sample = r.Int("VERIFY_SAMPLE", 0, 0, maxSample)
	w := r.WorkOS(c.Sample > 0, fmt.Sprintf("VERIFY_SAMPLE=%d re-fetches records from WorkOS; set it to the name or ARN of the Secrets Manager secret holding the WorkOS API key (or WORKOS_API_KEY for a local run), or set VERIFY_SAMPLE=0", c.Sample))
	c.SecretID, c.SecretField, c.APIKey, c.BaseURL = w.SecretID, w.SecretField, w.APIKey, w.BaseURL
	c.PathStyle = r.Bool("EXPORT_S3_PATH_STYLE", false)
	c.LogLevel = r.LogLevel("LOG_LEVEL")
	return c, r.Err("verify")
}
