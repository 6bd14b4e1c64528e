package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dsync-export/dsync-export/pkg/schema"
)

func TestRun(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"--bucket", "my-bucket", "--prefix", "/exports/dsync/", "--database", "dsync", "--start", "2025-03-01"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := out.String()
	if !strings.Contains(got, "CREATE DATABASE IF NOT EXISTS `dsync`;\n") {
		t.Errorf("no CREATE DATABASE:\n%s", got)
	}
	for _, tb := range schema.Tables() {
		ddl := schema.AthenaDDL(tb, schema.DDLOptions{Database: "dsync", Location: "s3://my-bucket/exports/dsync", ProjectionStart: "2025-03-01"})
		if !strings.Contains(got, ddl) {
			t.Errorf("output lacks the DDL of %s", tb.Name)
		}
	}
	if n := strings.Count(got, "CREATE EXTERNAL TABLE"); n != 4 {
		t.Errorf("%d tables, want 4", n)
	}
	if !strings.Contains(got, "'s3://my-bucket/exports/dsync/directory_users/dt=${dt}/'") ||
		!strings.Contains(got, "'projection.dt.range'='2025-03-01,NOW'") {
		t.Errorf("location or start not applied:\n%s", got)
	}
}

func TestRunOneTableDefaults(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--bucket", "s3://b-1", "--table", "directory_groups"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := out.String()
	if strings.Count(got, "CREATE EXTERNAL TABLE IF NOT EXISTS `directory_groups` (") != 1 || strings.Count(got, "CREATE ") != 1 {
		t.Errorf("want only directory_groups, without database:\n%s", got)
	}
	for _, want := range []string{"LOCATION 's3://b-1/directory_groups/'", "'" + schema.DefaultProjectionStart + ",NOW'"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestRunErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--bucket is required"},
		{[]string{"--bucket", "My_Bucket"}, "not an S3 bucket name"},
		{[]string{"--bucket", "b12", "--database", "My-DB"}, "not a valid Athena database name"},
		{[]string{"--bucket", "b12", "--start", "2025/01/01"}, "use yyyy-MM-dd"},
		{[]string{"--bucket", "b12", "--table", "users"}, "use one of directories, directory_users"},
		{[]string{"--bucket", "b12", "extra"}, "unexpected argument"},
		{[]string{"--nope"}, "flag provided but not defined"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), tc.want) || out.Len() != 0 {
			t.Errorf("run(%q) = %d, stderr %q; want exit 2 mentioning %q", tc.args, code, errOut.String(), tc.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"--help"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "Usage: athena-ddl") {
		t.Errorf("--help: exit %d, %q", code, errOut.String())
	}
}
