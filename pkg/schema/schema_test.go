package schema

import (
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

func TestSchemaGolden(t *testing.T) {
	for _, tb := range Tables() {
		t.Run(tb.Name, func(t *testing.T) {
			golden(t, filepath.Join("testdata", tb.Name+".schema.golden"), []byte(tb.Schema.String()+"\n"))
		})
	}
}

func TestTables(t *testing.T) {
	var names []string
	for _, tb := range Tables() {
		names = append(names, tb.Name)
	}
	want := []string{TableDirectories, TableDirectoryUsers, TableDirectoryGroups, TableMemberships}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("Tables() order (-want +got):\n%s", diff)
	}
	Tables()[0].Name = "changed"
	if Tables()[0].Name != TableDirectories {
		t.Error("Tables() returns the registry itself, not a copy")
	}
	for _, name := range want {
		tb, ok := TableByName(name)
		if !ok || tb.Name != name {
			t.Errorf("TableByName(%q) = %q, %v", name, tb.Name, ok)
		}
	}
	if _, ok := TableByName("users"); ok {
		t.Error(`TableByName("users") found a table`)
	}
	if tb, _ := TableOf[DirectoryUser](); tb.Name != TableDirectoryUsers {
		t.Errorf("TableOf[DirectoryUser] = %q", tb.Name)
	}
	if _, ok := TableOf[struct{ A int }](); ok {
		t.Error("tableOf found a table for a foreign type")
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// TestColumnRules checks the type rules on every column of every
// table, so a new column cannot break them unnoticed.
func TestColumnRules(t *testing.T) {
	for _, tb := range Tables() {
		if tb.IDColumn != "" {
			if c, ok := tb.Schema.Lookup(tb.IDColumn); !ok || c.Node.Optional() {
				t.Errorf("%s: IDColumn %q is not a required column", tb.Name, tb.IDColumn)
			}
		}
		exported := false
		for _, f := range tb.Schema.Fields() {
			name := tb.Name + "." + f.Name()
			if !snakeCase.MatchString(f.Name()) {
				t.Errorf("%s: not lower snake_case", name)
			}
			if f.Name() == PartitionColumn {
				t.Errorf("%s: the partition column must not be in the files", name)
			}
			if f.Name() == "exported_at" {
				exported = true
			}
			checkNode(t, name, f)
			sf, ok := tb.field(f.Name())
			if !ok {
				t.Errorf("%s: no struct field", name)
				continue
			}
			if sf.Tag.Get("source") == "" {
				t.Errorf("%s: missing source tag", name)
			}
			// A nullable column must be able to hold NULL in Go, and the
			// other way round.
			goNullable := sf.Type.Kind() == reflect.Pointer || sf.Type.Kind() == reflect.Slice
			if goNullable != f.Optional() {
				t.Errorf("%s: Go type %v but optional=%v", name, sf.Type, f.Optional())
			}
		}
		if !exported {
			t.Errorf("%s: no exported_at column", tb.Name)
		}
	}
}

func checkNode(t *testing.T, name string, n parquet.Node) {
	t.Helper()
	if n.Repeated() {
		t.Errorf("%s: bare repeated field: use a 3-level LIST (tag list)", name)
	}
	if !n.Leaf() {
		if hiveType(n) == "" || !strings.HasPrefix(hiveType(n), "array<") {
			t.Errorf("%s: unexpected group %v", name, hiveType(n))
			return
		}
		list := n.Fields()[0]
		if list.Name() != "list" || !list.Repeated() || len(list.Fields()) != 1 || list.Fields()[0].Name() != "element" {
			t.Errorf("%s: not a 3-level LIST", name)
			return
		}
		elem := list.Fields()[0]
		if elem.Repeated() || !elem.Leaf() {
			t.Errorf("%s: bad list element", name)
		}
		checkNode(t, name+".element", elem)
		return
	}
	switch n.Type().Kind() {
	case parquet.Int96:
		t.Errorf("%s: INT96", name)
	case parquet.ByteArray:
		if hiveType(n) != "string" {
			t.Errorf("%s: binary without the STRING (UTF8) annotation", name)
		}
	case parquet.Int64:
		if hiveType(n) == "timestamp" && !isTimestampMillisUTC(n) {
			t.Errorf("%s: timestamp is %v, want TIMESTAMP(MILLIS, UTC)", name, n.Type().LogicalType())
		}
		if strings.HasSuffix(name, "_at") && !isTimestampMillisUTC(n) {
			t.Errorf("%s: *_at column is not TIMESTAMP(MILLIS, UTC)", name)
		}
	}
}

func TestColumns(t *testing.T) {
	tb, _ := TableByName(TableDirectoryUsers)
	cols := tb.Columns()
	byName := map[string]Column{}
	for _, c := range cols {
		byName[c.Name] = c
		if c.Comment == "" || len(c.Comment) > 255 {
			t.Errorf("%s: comment must be 1-255 characters (Glue limit), got %d", c.Name, len(c.Comment))
		}
		if strings.ContainsAny(c.Comment, "'`;\\\n") {
			t.Errorf("%s: comment %q has a quote, semicolon, backslash or newline", c.Name, c.Comment)
		}
	}
	for name, want := range map[string]Column{
		"id":                {Name: "id", HiveType: "string", Comment: "WorkOS directory user ID (directory_user_...)"},
		"email":             {Name: "email", HiveType: "string", Comment: byName["email"].Comment, Nullable: true},
		"roles":             {Name: "roles", HiveType: "array<string>", Comment: byName["roles"].Comment, Nullable: true},
		"custom_attributes": {Name: "custom_attributes", HiveType: "string", Comment: byName["custom_attributes"].Comment, Nullable: true},
		"created_at":        {Name: "created_at", HiveType: "timestamp", Comment: byName["created_at"].Comment},
	} {
		if diff := cmp.Diff(want, byName[name]); diff != "" {
			t.Errorf("column %s (-want +got):\n%s", name, diff)
		}
	}
	if len(cols) != len(tb.Schema.Fields()) {
		t.Errorf("Columns() has %d columns, the schema %d", len(cols), len(tb.Schema.Fields()))
	}
	for _, tb := range Tables() {
		for _, c := range tb.Columns() {
			if c.Comment == "" || len(c.Comment) > 255 || strings.ContainsAny(c.Comment, "'`;\\\n") {
				t.Errorf("%s.%s: bad comment %q", tb.Name, c.Name, c.Comment)
			}
		}
	}
}

func TestHiveType(t *testing.T) {
	type inner struct {
		A int32   `parquet:"a"`
		B float64 `parquet:"b"`
	}
	type all struct {
		Bool   bool      `parquet:"bool"`
		Int32  int32     `parquet:"int32"`
		Int64  int64     `parquet:"int64"`
		Float  float32   `parquet:"float"`
		Double float64   `parquet:"double"`
		Bytes  []byte    `parquet:"bytes"`
		Str    string    `parquet:"str"`
		Enum   string    `parquet:"enum,enum"`
		JSON   string    `parquet:"json,json"`
		Date   int32     `parquet:"date,date"`
		List   []int64   `parquet:"list,list"`
		Struct inner     `parquet:"struct"`
		Nested [][]int32 `parquet:"nested,list"`
	}
	s := parquet.SchemaOf(new(all))
	got := map[string]string{}
	for _, f := range s.Fields() {
		got[f.Name()] = hiveType(f)
	}
	want := map[string]string{
		"bool": "boolean", "int32": "int", "int64": "bigint", "float": "float", "double": "double",
		"bytes": "binary", "str": "string", "enum": "string", "json": "string", "date": "date",
		"list": "array<bigint>", "struct": "struct<a:int,b:double>", "nested": "array<array<int>>",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hiveType (-want +got):\n%s", diff)
	}
}

// isTimestampMillisUTC reports whether n is INT64 TIMESTAMP(MILLIS, UTC).
func isTimestampMillisUTC(n parquet.Node) bool {
	if !n.Leaf() || n.Type().Kind() != parquet.Int64 || n.Type().LogicalType() == nil {
		return false
	}
	ts, ok := n.Type().LogicalType().Value.(*format.TimestampType)
	if !ok {
		return false
	}
	_, millis := ts.Unit.Value.(*format.MilliSeconds)
	return ts.IsAdjustedToUTC && millis
}
