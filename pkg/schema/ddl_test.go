package schema

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestAthenaDDLGolden(t *testing.T) {
	for _, tb := range Tables() {
		t.Run(tb.Name, func(t *testing.T) {
			ddl := AthenaDDL(tb, DDLOptions{Database: "dsync", Location: "s3://example-bucket/exports", ProjectionStart: "2025-06-01"})
			golden(t, filepath.Join("testdata", tb.Name+".ddl.golden"), []byte(ddl))
		})
	}
}

func TestAthenaDDL(t *testing.T) {
	tb, _ := TableByName(TableDirectoryUsers)
	ddl := AthenaDDL(tb, DDLOptions{Location: "s3://b/p/"})
	for _, want := range []string{
		"CREATE EXTERNAL TABLE IF NOT EXISTS `directory_users` (\n",
		"PARTITIONED BY (`dt` string COMMENT ",
		"ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'\n",
		"LOCATION 's3://b/p/directory_users/'\n",
		"'projection.enabled'='true'",
		"'projection.dt.type'='date'",
		"'projection.dt.format'='yyyy-MM-dd'",
		"'projection.dt.range'='" + DefaultProjectionStart + ",NOW'",
		"'storage.location.template'='s3://b/p/directory_users/dt=${dt}/'",
		"  `roles` array<string> COMMENT ",
		"  `created_at` timestamp COMMENT ",
	} {
		if !strings.Contains(ddl, want) {
			t.Errorf("DDL lacks %q:\n%s", want, ddl)
		}
	}
	// Every column of the files is declared, in file order, and nothing else.
	re := regexp.MustCompile("(?m)^  `([a-z_]+)` ([a-z<>]+) COMMENT")
	var got []string
	for _, m := range re.FindAllStringSubmatch(ddl, -1) {
		got = append(got, m[1]+" "+m[2])
	}
	var want []string
	for _, c := range tb.Columns() {
		want = append(want, c.Name+" "+c.HiveType)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("DDL columns\n got %v\nwant %v", got, want)
	}
	if !strings.HasSuffix(ddl, ");\n") || strings.Count(ddl, ";") != 1 {
		t.Errorf("DDL must be exactly one statement ending in ;")
	}
}

func TestQuoting(t *testing.T) {
	if got := quoteString(`it's a \ test`); got != `'it\'s a \\ test'` {
		t.Errorf("quoteString = %s", got)
	}
	if got := quoteIdent("a`b"); got != "`a``b`" {
		t.Errorf("quoteIdent = %s", got)
	}
	tb, _ := TableByName(TableMemberships)
	if ddl := AthenaDDL(tb, DDLOptions{Database: "my_db", Location: "s3://b"}); !strings.Contains(ddl, "EXISTS `my_db`.`directory_group_memberships` (") ||
		!strings.Contains(ddl, "'s3://b/directory_group_memberships/dt=${dt}/'") {
		t.Errorf("database or empty prefix mishandled:\n%s", ddl)
	}
}
