package main

import (
	"bytes"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{"EXPORT_DESTINATION": "s3://exports/workos/dsync/"}))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Destination: "s3://exports/workos/dsync/", Bucket: "exports", Prefix: "workos/dsync",
		SecretField: "api_key", BaseURL: "https://api.workos.com/", LogLevel: slog.LevelInfo, MaxDrop: 0.2,
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestLoadConfigSampling(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{
		"EXPORT_DESTINATION": "./out", "VERIFY_SAMPLE": "25", "WORKOS_API_KEY_SECRET_ID": "dsync-export/workos",
		"WORKOS_API_KEY_SECRET_FIELD": "key", "EXPORT_S3_PATH_STYLE": "true", "LOG_LEVEL": "debug",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sample != 25 || c.SecretID != "dsync-export/workos" || c.SecretField != "key" || !c.PathStyle || c.LogLevel != slog.LevelDebug || c.Bucket != "" {
		t.Errorf("config = %+v", c)
	}
}

// Every bad variable is reported at once.
func TestLoadConfigErrors(t *testing.T) {
	_, err := loadConfig(envOf(map[string]string{
		"VERIFY_SAMPLE": "-3", "WORKOS_BASE_URL": "api.workos.com", "EXPORT_S3_PATH_STYLE": "sometimes", "LOG_LEVEL": "loud",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"EXPORT_DESTINATION: missing", "VERIFY_SAMPLE: \"-3\"", "WORKOS_BASE_URL", "EXPORT_S3_PATH_STYLE", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s:\n%v", name, err)
		}
	}
	_, err = loadConfig(envOf(map[string]string{"EXPORT_DESTINATION": "s3:///nobucket", "VERIFY_SAMPLE": "5"}))
	if err == nil || !strings.Contains(err.Error(), "has no bucket") || !strings.Contains(err.Error(), "WORKOS_API_KEY_SECRET_ID: missing: VERIFY_SAMPLE=5") {
		t.Errorf("err = %v", err)
	}
}

func TestEnvNamesDeclared(t *testing.T) {
	// Every variable loadConfig reads is in envNames (template.yaml declares them).
	read := map[string]bool{}
	_, _ = loadConfig(func(k string) string { read[k] = true; return "" })
	for k := range read {
		if !strings.Contains(strings.Join(envNames, ","), k) {
			t.Errorf("%s is read but not in envNames", k)
		}
	}
	if len(read) != len(envNames) {
		t.Errorf("loadConfig reads %d variables, envNames lists %d", len(read), len(envNames))
	}
}

func TestRunLocal(t *testing.T) {
	dir := t.TempDir()
	writeSnapshot(t, dir)
	env := envOf(map[string]string{"EXPORT_DESTINATION": "/nonexistent/ignored"})

	var stdout, stderr bytes.Buffer
	if code := runLocal([]string{"--destination", dir, "--date", testDate}, env, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), `"summary":true,"valid":true`) || emfValue(t, stdout.String()) != 1 {
		t.Errorf("stdout:\n%s", stdout.String())
	}

	// Break the snapshot: exit 1, naming the problem.
	key := filepath.Join(dir, filepath.FromSlash(snapshot.PartKey("directory_group_memberships", testDate, testRun, 0)))
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := runLocal([]string{"--destination", dir, "--date", testDate}, env, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(stdout.String(), "directory_group_memberships/dt=2026-11-28/"+testRun+"-part-00000.parquet is listed in the manifest but missing") ||
		!strings.Contains(stderr.String(), "is invalid: failed checks: objects") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}

func TestRunLocalUsage(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"bad date":    {[]string{"--date", "28/11/2026", "--destination", "x"}, nil, "--date"},
		"no dest":     {nil, nil, "EXPORT_DESTINATION: missing"},
		"bad sample":  {[]string{"--destination", "x", "--sample", "3"}, nil, "WORKOS_API_KEY_SECRET_ID: missing"},
		"extra arg":   {[]string{"2026-11-28"}, nil, "unexpected arguments"},
		"bad env var": {[]string{"--destination", "x"}, map[string]string{"LOG_LEVEL": "chatty"}, "LOG_LEVEL"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runLocal(tc.args, envOf(tc.env), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

func TestLoadConfigMaxDrop(t *testing.T) {
	for v, want := range map[string]float64{"20%": 0.2, "12.5 %": 0.125, "0.35": 0.35, "100%": 1, "1": 1} {
		c, err := loadConfig(envOf(map[string]string{"EXPORT_DESTINATION": "./out", "VERIFY_MAX_DROP": v}))
		if err != nil || c.MaxDrop != want {
			t.Errorf("VERIFY_MAX_DROP=%s: %v, %v; want %v", v, c.MaxDrop, err, want)
		}
	}
	for _, v := range []string{"20", "0", "0%", "-5%", "150%", "lots", "%"} {
		_, err := loadConfig(envOf(map[string]string{"EXPORT_DESTINATION": "./out", "VERIFY_MAX_DROP": v}))
		if err == nil || !strings.Contains(err.Error(), "VERIFY_MAX_DROP: \""+v+"\" must be a percent") {
			t.Errorf("VERIFY_MAX_DROP=%s: err = %v", v, err)
		}
	}
}

// --help exits 0 and documents every variable the verifier reads, each with
// its default once.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		if code := runLocal([]string{arg}, envOf(nil), &stdout, &stderr); code != 0 || stderr.Len() != 0 {
			t.Fatalf("%s: exit %d, stderr %q; want 0 and the help on stdout only", arg, code, stderr.String())
		}
		help := stdout.String()
		for _, v := range envVars {
			line := ""
			for l := range strings.Lines(help) {
				if strings.HasPrefix(l, "  "+v.Name+" ") {
					line = l
				}
			}
			if line == "" || !strings.Contains(line, "default "+v.Default) || strings.Count(line, "default") != 1 {
				t.Errorf("%s: the line of %s is %q, want its default %q once", arg, v.Name, line, v.Default)
			}
		}
		for _, flag := range []string{"--destination", "--date", "--sample"} {
			if !strings.Contains(help, flag) {
				t.Errorf("%s: help lacks %s:\n%s", arg, flag, help)
			}
		}
		if strings.Contains(help, "(default -1)") || strings.Count(help, "$VERIFY_SAMPLE") != 1 {
			t.Errorf("%s: a flag's default is printed twice:\n%s", arg, help)
		}
	}
	if len(envNames) != len(envVars) {
		t.Errorf("envNames has %d names for %d variables", len(envNames), len(envVars))
	}
}
