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
	for _, tb := range schema.CatalogTables() {
		ddl := schema.AthenaDDL(tb, schema.DDLOptions{Database: "dsync", Location: "s3://my-bucket/exports/dsync", ProjectionStart: "2025-03-01"})
		if !strings.Contains(got, ddl) {
			t.Errorf("output lacks the DDL of %s", tb.Name)
		}
	}
	if n := strings.Count(got, "CREATE EXTERNAL TABLE"); n != 6 {
		t.Errorf("%d tables, want 6 (four data tables, snapshots and directory_events)", n)
	}
	// One view per data table, after the snapshots table that they read.
	snapshots := strings.Index(got, "EXISTS `dsync`.`snapshots` (")
	for _, tb := range schema.Tables() {
		view := schema.AthenaViewDDL(tb, "dsync")
		if i := strings.Index(got, view); i < 0 {
			t.Errorf("output lacks the view of %s", tb.Name)
		} else if snapshots < 0 || i < snapshots {
			t.Errorf("the view of %s comes before the snapshots table it reads", tb.Name)
		}
	}
	if n := strings.Count(got, "CREATE OR REPLACE VIEW"); n != 4 {
		t.Errorf("%d views, want 4", n)
	}
	if !strings.Contains(got, "'s3://my-bucket/exports/dsync/directory_users/dt=${dt}/'") ||
		!strings.Contains(got, "'projection.dt.range'='2025-03-01,NOW'") {
		t.Errorf("location or start not applied:\n%s", got)
	}
}

// TestRunOneTableDefaults: without flags the DDL matches the stack's
// defaults (prefix, database, projection start), which internal/samtemplate keeps
// equal to the same constants.
func TestRunOneTableDefaults(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--bucket", "s3://b-1", "--table", "directory_groups"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := out.String()
	if strings.Count(got, "CREATE EXTERNAL TABLE IF NOT EXISTS `dsync_export`.`directory_groups` (") != 1 ||
		strings.Count(got, "CREATE EXTERNAL TABLE") != 1 || strings.Count(got, "CREATE OR REPLACE VIEW \"dsync_export\".\"directory_groups_latest\"") != 1 {
		t.Errorf("want only directory_groups and its view, in database dsync_export:\n%s", got)
	}
	for _, want := range []string{
		"CREATE DATABASE IF NOT EXISTS `" + schema.DefaultDatabase + "`;",
		"LOCATION 's3://b-1/" + schema.DefaultExportPrefix + "/directory_groups/'",
		"'" + schema.DefaultProjectionStart + ",NOW'",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// Empty prefix and database: the bucket root and the current database.
	out.Reset()
	if code := run([]string{"--bucket", "b-1", "--prefix", "", "--database", "", "--table", "snapshots"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got = out.String()
	if !strings.Contains(got, "CREATE EXTERNAL TABLE IF NOT EXISTS `snapshots` (") || !strings.Contains(got, "LOCATION 's3://b-1/snapshots/'") ||
		strings.Contains(got, "CREATE DATABASE") || strings.Contains(got, "VIEW") {
		t.Errorf("want only the snapshots table at the bucket root, without database or view:\n%s", got)
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
