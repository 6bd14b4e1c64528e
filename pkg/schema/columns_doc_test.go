package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestColumnsMarkdown keeps COLUMNS.md (linked from the README) in step with
// the row structs; regenerate it with go test ./pkg/schema -update.
func TestColumnsMarkdown(t *testing.T) {
	golden(t, "COLUMNS.md", []byte(columnsMarkdown()))
}

func columnsMarkdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- Generated from pkg/schema by `go test ./pkg/schema -update`; do not edit. -->\n")
	fmt.Fprintf(&b, "## Tables and columns (schema version %s)\n\n", Version)
	b.WriteString("Every table is Parquet under `<prefix>/<table>/dt=<yyyy-MM-dd>/`, partitioned by `" + PartitionColumn +
		"` (string: the snapshot date in UTC; for `" + TableEvents + "`, the event's date), which is in the S3 path, not in the files. ")
	b.WriteString("Timestamps are `TIMESTAMP(MILLIS)` adjusted to UTC (Athena `timestamp`); text is UTF-8. ")
	b.WriteString("JSON columns hold compact JSON text: query them with `json_extract_scalar(custom_attributes, '$.department')`. ")
	b.WriteString("Columns are only ever added (always nullable), never renamed or retyped.\n")
	for _, tb := range CatalogTables() {
		fmt.Fprintf(&b, "\n### `%s`\n\n%s.", tb.Name, tb.Description)
		switch {
		case tb.Name == TableSnapshots:
			b.WriteString(" Key: (`dt`, `run_id`); the `<table>_latest` views read the data of the newest row's run.")
		case tb.IDColumn != "":
			fmt.Fprintf(&b, " Key: `%s` (unique within a snapshot).", tb.IDColumn)
		default:
			b.WriteString(" Key: (`group_id`, `user_id`).")
		}
		b.WriteString("\n\n| column | type | nullable | meaning | source (WorkOS field) |\n|---|---|---|---|---|\n")
		for _, c := range tb.Columns() {
			sf, _ := tb.field(c.Name)
			null := "no"
			if c.Nullable {
				null = "yes"
			}
			source := sf.Tag.Get("source")
			if !strings.HasPrefix(source, "(") {
				source = "`" + source + "`"
			}
			fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", c.Name, c.HiveType, null, c.Comment, source)
		}
		fmt.Fprintf(&b, "| `%s` | `string` | no | %s, partition column in the S3 path | (export run) |\n", PartitionColumn, tb.PartitionComment)
	}
	return b.String()
}

// TestReadmeLinksTheColumns: the README links the generated COLUMNS.md
// instead of a pasted copy that could drift.
func TestReadmeLinksTheColumns(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "(pkg/schema/COLUMNS.md)") {
		t.Error("README.md does not link pkg/schema/COLUMNS.md")
	}
	if strings.Contains(string(readme), "| column | type | nullable |") {
		t.Error("README.md pastes a column table: link pkg/schema/COLUMNS.md instead")
	}
}
