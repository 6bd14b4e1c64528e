package schema

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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

// TestSnapshotsTable checks the snapshots table: a catalog table beside the
// four data tables, from the same struct tags, written and read back by the
// same Writer, with the table name in its file metadata.
func TestSnapshotsTable(t *testing.T) {
	st := SnapshotsTable()
	if st.Name != TableSnapshots || st.IDColumn != "run_id" {
		t.Fatalf("SnapshotsTable() = %q (id %q), want %q (id run_id)", st.Name, st.IDColumn, TableSnapshots)
	}
	for _, tb := range Tables() {
		if tb.Name == TableSnapshots {
			t.Error("Tables() includes the snapshots table: the export and the verifier iterate Tables() as the data tables")
		}
	}
	if got, ok := TableByName(TableSnapshots); !ok || got.Name != TableSnapshots {
		t.Errorf("TableByName(snapshots) = %q, %v", got.Name, ok)
	}
	if got, ok := TableOf[Snapshot](); !ok || got.Name != TableSnapshots {
		t.Errorf("TableOf[Snapshot] = %q, %v", got.Name, ok)
	}
	golden(t, filepath.Join("testdata", TableSnapshots+".schema.golden"), []byte(st.Schema.String()+"\n"))

	var got []string
	for _, c := range st.Columns() {
		got = append(got, c.Name+" "+c.HiveType)
		if c.Nullable || c.Comment == "" {
			t.Errorf("%s: want a required column with a comment (nullable %v, comment %q)", c.Name, c.Nullable, c.Comment)
		}
		if strings.HasSuffix(c.Name, "_at") && c.HiveType != "timestamp" {
			t.Errorf("%s is %s, want timestamp", c.Name, c.HiveType)
		}
	}
	want := []string{"run_id string", "exported_at timestamp", "committed_at timestamp", "mode string", "trigger string", "demo boolean"}
	for _, tb := range Tables() {
		want = append(want, "rows_"+tb.Name+" bigint") // one count per data table, named for it
	}
	want = append(want, "files bigint", "bytes bigint")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("snapshots columns (-want +got):\n%s", diff)
	}

}

// TestAthenaDDLSnapshotsGolden pins the DDL of the snapshots table.
func TestAthenaDDLSnapshotsGolden(t *testing.T) {
	ddl := AthenaDDL(SnapshotsTable(), DDLOptions{Database: "dsync", Location: "s3://example-bucket/exports", ProjectionStart: "2025-06-01"})
	golden(t, filepath.Join("testdata", TableSnapshots+".ddl.golden"), []byte(ddl))
	if !strings.Contains(ddl, "'storage.location.template'='s3://example-bucket/exports/snapshots/dt=${dt}/'") {
		t.Errorf("snapshots DDL has the wrong location template:\n%s", ddl)
	}
}

// TestLatestViews pins the SQL of the <table>_latest views and checks that it
// reads the data table and the snapshots table, every column plus dt, and
// filters the files by the committed run.
func TestLatestViews(t *testing.T) {
	for _, tb := range Tables() {
		t.Run(tb.Name, func(t *testing.T) {
			ddl := AthenaViewDDL(tb, "dsync")
			golden(t, filepath.Join("testdata", LatestViewName(tb)+".view.golden"), []byte(ddl))
			for _, want := range []string{
				`CREATE OR REPLACE VIEW "dsync"."` + tb.Name + `_latest" AS` + "\n",
				`FROM "dsync"."` + tb.Name + `" AS t` + "\n",
				`FROM "dsync"."snapshots" ORDER BY dt DESC, committed_at DESC, run_id DESC LIMIT 1) AS s`,
				`WHERE t.dt = s.dt AND strpos(t."$path", '/' || s.run_id || '-') > 0;` + "\n",
			} {
				if !strings.Contains(ddl, want) {
					t.Errorf("view DDL lacks %q:\n%s", want, ddl)
				}
			}
			if strings.Count(ddl, ";") != 1 {
				t.Errorf("want one statement:\n%s", ddl)
			}

			v := LatestPrestoView(tb, "my_db")
			if v.Catalog != "awsdatacatalog" || v.Schema != "my_db" {
				t.Errorf("catalog, schema = %q, %q", v.Catalog, v.Schema)
			}
			if strings.Contains(v.OriginalSQL, "\n") || strings.Contains(v.OriginalSQL, "my_db") {
				t.Errorf("Glue view SQL must be one line with table names resolved in the view's schema: %q", v.OriginalSQL)
			}
			if want := strings.ReplaceAll(LatestViewSQL(tb, ""), "\n", " "); v.OriginalSQL != want {
				t.Errorf("Glue view SQL %q differs from LatestViewSQL %q", v.OriginalSQL, want)
			}
			cols := LatestViewColumns(tb)
			if len(v.Columns) != len(tb.Columns())+1 || len(cols) != len(v.Columns) || cols[len(cols)-1].Name != PartitionColumn {
				t.Fatalf("view columns %v: want the table's columns then dt", v.Columns)
			}
			var sel []string
			for i, c := range cols {
				sel = append(sel, "t."+c.Name)
				if v.Columns[i].Name != c.Name || v.Columns[i].Type != PrestoType(c.HiveType) {
					t.Errorf("view column %d = %+v, want %s %s", i, v.Columns[i], c.Name, PrestoType(c.HiveType))
				}
			}
			if !strings.HasPrefix(v.OriginalSQL, "SELECT "+strings.Join(sel, ", ")+" FROM ") {
				t.Errorf("the view must select exactly its declared columns in order, or Athena calls it stale:\n%s", v.OriginalSQL)
			}
		})
	}
}

func TestPrestoType(t *testing.T) {
	for hive, want := range map[string]string{
		"string":                        "varchar",
		"bigint":                        "bigint",
		"int":                           "integer",
		"boolean":                       "boolean",
		"timestamp":                     "timestamp",
		"float":                         "real",
		"binary":                        "varbinary",
		"array<string>":                 "array(varchar)",
		"struct<a:string,b:array<int>>": "row(a varchar, b array(integer))",
		"array<struct<k:string,v:struct<x:int,y:bigint>>>": "array(row(k varchar, v row(x integer, y bigint)))",
	} {
		if got := PrestoType(hive); got != want {
			t.Errorf("PrestoType(%q) = %q, want %q", hive, got, want)
		}
	}
}
