package parquetfile

// These tests read the files back with a second, independent Parquet
// implementation: the pure-Go reader of Apache Arrow.

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	pqschema "github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/pkg/schema"
)

func TestArrowReadsFixtures(t *testing.T) {
	t.Run(TableDirectories, func(t *testing.T) { arrowCheck(t, TableDirectories, fixtureDirectories(t), Options{}) })
	t.Run(TableDirectoryUsers, func(t *testing.T) { arrowCheck(t, TableDirectoryUsers, fixtureUsers(t), Options{}) })
	t.Run(TableDirectoryGroups, func(t *testing.T) {
		arrowCheck(t, TableDirectoryGroups, fixtureGroups(t), Options{Compression: "snappy"})
	})
	t.Run(TableMemberships, func(t *testing.T) { arrowCheck(t, TableMemberships, fixtureMemberships(t), Options{}) })
	t.Run("many row groups", func(t *testing.T) {
		arrowCheck(t, TableDirectoryUsers, manyUsers(4_000), Options{MaxRowsPerRowGroup: 1_000, PageBufferSize: 8 << 10})
	})
	t.Run("empty", func(t *testing.T) { arrowCheck(t, TableDirectoryGroups, []DirectoryGroup{}, Options{}) })
}

// arrowCheck writes rows and checks, with arrow-go, the Parquet types of every
// column, the row count, the metadata and every value.
func arrowCheck[T any](t *testing.T, table string, rows []T, opts Options) {
	t.Helper()
	tb, _ := schema.TableByName(table)
	store, _ := writeAll(t, opts, rows)
	data := store.parts[0].Bytes()

	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("arrow cannot open the file: %v", err)
	}
	defer rdr.Close()
	if rdr.NumRows() != int64(len(rows)) {
		t.Errorf("arrow: %d rows, want %d", rdr.NumRows(), len(rows))
	}
	kv := rdr.MetaData().KeyValueMetadata()
	for key, want := range map[string]string{MetadataSchemaVersion: schema.Version, MetadataTable: table} {
		if got := kv.FindValue(key); got == nil || *got != want {
			t.Errorf("arrow: metadata %s = %v, want %q", key, got, want)
		}
	}

	// Parquet physical and logical types, as arrow-go decodes them.
	cols := tb.Columns()
	sch := rdr.MetaData().Schema
	leaf := 0
	for _, c := range cols {
		d := sch.Column(leaf)
		leaf++
		path := c.Name
		if c.HiveType == "array<string>" {
			path = c.Name + ".list.element"
			if d.MaxRepetitionLevel() != 1 {
				t.Errorf("%s: max repetition level %d, want 1 (3-level LIST)", path, d.MaxRepetitionLevel())
			}
		}
		if d.Path() != path {
			t.Fatalf("leaf column %d is %s, want %s", leaf-1, d.Path(), path)
		}
		wantDef := int16(0)
		if c.Nullable {
			wantDef = 1
		}
		if c.HiveType == "array<string>" {
			wantDef = 2 // optional list, repeated group; elements required
		}
		if d.MaxDefinitionLevel() != wantDef {
			t.Errorf("%s: max definition level %d, want %d", path, d.MaxDefinitionLevel(), wantDef)
		}
		switch strings.TrimSuffix(strings.TrimPrefix(c.HiveType, "array<"), ">") {
		case "string":
			if d.PhysicalType() != pq.Types.ByteArray || !d.LogicalType().Equals(pqschema.StringLogicalType{}) {
				t.Errorf("%s: %v %v, want BYTE_ARRAY STRING", path, d.PhysicalType(), d.LogicalType())
			}
		case "bigint":
			if d.PhysicalType() != pq.Types.Int64 {
				t.Errorf("%s: %v, want INT64", path, d.PhysicalType())
			}
		case "timestamp":
			ts, ok := d.LogicalType().(pqschema.TimestampLogicalType)
			if d.PhysicalType() != pq.Types.Int64 || !ok || !ts.IsAdjustedToUTC() || ts.TimeUnit() != pqschema.TimeUnitMillis {
				t.Errorf("%s: %v %v, want INT64 TIMESTAMP(MILLIS, UTC)", path, d.PhysicalType(), d.LogicalType())
			}
		default:
			t.Errorf("%s: unchecked type %s", path, c.HiveType)
		}
	}
	if leaf != sch.NumColumns() {
		t.Errorf("file has %d leaf columns, checked %d", sch.NumColumns(), leaf)
	}

	// Arrow types and values.
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("arrow cannot read the table: %v", err)
	}
	defer tbl.Release()
	if tbl.NumRows() != int64(len(rows)) || tbl.NumCols() != int64(len(cols)) {
		t.Fatalf("arrow table is %dx%d, want %dx%d", tbl.NumRows(), tbl.NumCols(), len(rows), len(cols))
	}
	for i, c := range cols {
		f := tbl.Schema().Field(i)
		if f.Name != c.Name || f.Nullable != c.Nullable {
			t.Errorf("arrow field %d = %s nullable=%v, want %s nullable=%v", i, f.Name, f.Nullable, c.Name, c.Nullable)
		}
		if got, want := arrowTypeName(f.Type), c.HiveType; got != want {
			t.Errorf("%s: arrow type %v, want %s", c.Name, f.Type, want)
		}
		got := []any{}
		for _, chunk := range tbl.Column(i).Data().Chunks() {
			got = append(got, arrowValues(t, chunk)...)
		}
		want := goValues(rows, c.Name)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: arrow values (-want +got):\n%s", c.Name, diff)
		}
	}
}

// arrowTypeName maps an arrow type to the Hive type it must come from.
func arrowTypeName(dt arrow.DataType) string {
	switch dt := dt.(type) {
	case *arrow.StringType:
		return "string"
	case *arrow.Int64Type:
		return "bigint"
	case *arrow.TimestampType:
		if dt.Unit == arrow.Millisecond && dt.TimeZone == "UTC" {
			return "timestamp"
		}
	case *arrow.ListType:
		return "array<" + arrowTypeName(dt.Elem()) + ">"
	}
	return dt.String()
}

func arrowValues(t *testing.T, a arrow.Array) []any {
	out := make([]any, a.Len())
	for i := range out {
		if a.IsNull(i) {
			continue
		}
		switch a := a.(type) {
		case *array.String:
			out[i] = a.Value(i)
		case *array.Int64:
			out[i] = a.Value(i)
		case *array.Timestamp:
			out[i] = time.UnixMilli(int64(a.Value(i))).UTC()
		case *array.List:
			start, end := a.ValueOffsets(i)
			elems := a.ListValues().(*array.String)
			l := []string{}
			for j := start; j < end; j++ {
				l = append(l, elems.Value(int(j)))
			}
			out[i] = l
		default:
			t.Fatalf("unexpected arrow array %T", a)
		}
	}
	return out
}

// goValues returns the values of one column of rows, as arrowValues would.
func goValues[T any](rows []T, column string) []any {
	sf, _ := structField[T](column)
	out := make([]any, len(rows))
	for i := range rows {
		v := reflect.ValueOf(rows[i]).FieldByIndex(sf.Index)
		switch {
		case v.Kind() == reflect.Pointer || (v.Kind() == reflect.Slice && v.IsNil()):
			if !v.IsNil() {
				out[i] = v.Elem().Interface()
			}
		case v.Type() == reflect.TypeFor[time.Time]():
			out[i] = v.Interface().(time.Time).UTC()
		default:
			out[i] = v.Interface()
		}
	}
	return out
}
