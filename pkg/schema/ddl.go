package schema

import (
	"fmt"
	"strings"
)

// Defaults shared by cmd/athena-ddl, the Makefile and template.yaml (whose
// parameter defaults a test in internal/samtemplate keeps equal to these).
const (
	// DefaultProjectionStart is the first partition date of the dt
	// projection when DDLOptions.ProjectionStart is empty (the stack's
	// ProjectionStartDate). WorkOS keeps no history, so no snapshot can be
	// older than the first release of dsync-export.
	DefaultProjectionStart = "2026-01-01"
	// DefaultExportPrefix is the key prefix of the snapshots in the bucket
	// (the stack's ExportPrefix).
	DefaultExportPrefix = "workos"
	// DefaultDatabase is the Glue/Athena database (the stack's
	// GlueDatabaseName).
	DefaultDatabase = "dsync_export"
)

// Table properties written by TableProperties.
const (
	// PropertySchemaVersion records Version in the table properties.
	PropertySchemaVersion = "dsync_export.schema_version"
	// PropertyLocationTemplate is the projection's location template.
	PropertyLocationTemplate = "storage.location.template"
	// PropertyProjectionRange is the dt projection's date range.
	PropertyProjectionRange = "projection.dt.range"
)

// Hive storage classes of the Parquet tables, as used by Athena and Glue.
const (
	ParquetSerDe        = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
	ParquetInputFormat  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
	ParquetOutputFormat = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
)

// DDLOptions configures AthenaDDL.
type DDLOptions struct {
	// Database qualifies the table name when not empty.
	Database string
	// Location is the export root, s3://bucket/prefix, without a trailing
	// slash. Table t lives under Location/t.Name/dt=yyyy-MM-dd/.
	Location string
	// ProjectionStart is the first dt of the partition projection,
	// yyyy-MM-dd (default DefaultProjectionStart). The range ends at NOW.
	ProjectionStart string
}

// TableLocation returns the S3 location of a table under the export root
// location (s3://bucket/prefix), with a trailing slash.
func TableLocation(location, table string) string {
	return strings.TrimRight(location, "/") + "/" + table + "/"
}

// TableProperties returns the Glue/Athena table properties of t: the Parquet
// classification, the schema version and the partition projection of dt
// (type date, format yyyy-MM-dd, from start to NOW, one day apart), with
// storage.location.template <location>/<table>/dt=${dt}/. An empty start
// selects DefaultProjectionStart.
func TableProperties(t Table, location, start string) [][2]string {
	if start == "" {
		start = DefaultProjectionStart
	}
	return [][2]string{
		{"classification", "parquet"},
		{PropertySchemaVersion, Version},
		{"projection.enabled", "true"},
		{"projection.dt.type", "date"},
		{"projection.dt.format", "yyyy-MM-dd"},
		{PropertyProjectionRange, start + ",NOW"},
		{"projection.dt.interval", "1"},
		{"projection.dt.interval.unit", "DAYS"},
		{PropertyLocationTemplate, TableLocation(location, t.Name) + PartitionColumn + "=${" + PartitionColumn + "}/"},
	}
}

// AthenaDDL returns the CREATE EXTERNAL TABLE statement of t for Athena: the
// columns of t.Columns with Hive types and comments, PARTITIONED BY (dt
// string), ParquetHiveSerDe, and partition projection on dt, so no partition
// ever needs to be added. The statement ends with a semicolon and a newline.
func AthenaDDL(t Table, opts DDLOptions) string {
	var b strings.Builder
	name := quoteIdent(t.Name)
	if opts.Database != "" {
		name = quoteIdent(opts.Database) + "." + name
	}
	fmt.Fprintf(&b, "CREATE EXTERNAL TABLE IF NOT EXISTS %s (\n", name)
	cols := t.Columns()
	for i, c := range cols {
		fmt.Fprintf(&b, "  %s %s COMMENT %s", quoteIdent(c.Name), c.HiveType, quoteString(c.Comment))
		if i < len(cols)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(")\n")
	fmt.Fprintf(&b, "COMMENT %s\n", quoteString(t.Description))
	fmt.Fprintf(&b, "PARTITIONED BY (%s string COMMENT %s)\n", quoteIdent(PartitionColumn),
		quoteString(t.PartitionComment+", in the S3 path, not in the files"))
	fmt.Fprintf(&b, "ROW FORMAT SERDE %s\n", quoteString(ParquetSerDe))
	fmt.Fprintf(&b, "STORED AS INPUTFORMAT %s\n", quoteString(ParquetInputFormat))
	fmt.Fprintf(&b, "OUTPUTFORMAT %s\n", quoteString(ParquetOutputFormat))
	fmt.Fprintf(&b, "LOCATION %s\n", quoteString(TableLocation(opts.Location, t.Name)))
	b.WriteString("TBLPROPERTIES (\n")
	props := TableProperties(t, opts.Location, opts.ProjectionStart)
	for i, p := range props {
		fmt.Fprintf(&b, "  %s=%s", quoteString(p[0]), quoteString(p[1]))
		if i < len(props)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(");\n")
	return b.String()
}

// quoteIdent quotes a Hive identifier with backticks.
func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// quoteString quotes a Hive string literal with single quotes.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// LatestViewSuffix ends the name of each data table's view of the latest
// committed snapshot: directory_users_latest reads directory_users.
const LatestViewSuffix = "_latest"

// LatestViewName returns the name of t's latest view, t.Name + "_latest".
func LatestViewName(t Table) string { return t.Name + LatestViewSuffix }

// LatestViewColumns returns the columns of t's latest view: t's columns in
// file order, then the partition column dt.
func LatestViewColumns(t Table) []Column {
	return append(t.Columns(), Column{Name: PartitionColumn, HiveType: "string",
		Comment: "Snapshot date (yyyy-MM-dd, UTC) of the latest committed snapshot"})
}

// latestViewLines returns the SELECT of t's latest view, one clause per
// line. It reads the newest row of the snapshots table (the latest committed
// date; of two rows of one date, which exist only between a re-run's commit
// and its clean-up, the later commit) and keeps the rows of that date whose
// file belongs to that row's run: data files are
// <table>/dt=<date>/<run_id>-*.parquet, so files of a run still
// being written, or of a run replaced but not yet deleted, are never read.
// database qualifies the table names when not empty.
func latestViewLines(t Table, database string) []string {
	qualify := func(name string) string {
		if database == "" {
			return name
		}
		return quoteSQLIdent(database) + "." + quoteSQLIdent(name)
	}
	cols := LatestViewColumns(t)
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = "t." + c.Name
	}
	return []string{
		"SELECT " + strings.Join(sel, ", "),
		"FROM " + qualify(t.Name) + " AS t",
		"CROSS JOIN (SELECT dt, run_id FROM " + qualify(TableSnapshots) + " ORDER BY dt DESC, committed_at DESC, run_id DESC LIMIT 1) AS s",
		`WHERE t.dt = s.dt AND strpos(t."$path", '/' || s.run_id || '-') > 0`,
	}
}

// LatestViewSQL returns the SELECT statement (without a semicolon) of t's
// latest view, on several lines; see latestViewLines. Unqualified table
// names (database "") resolve in the view's own database.
func LatestViewSQL(t Table, database string) string {
	return strings.Join(latestViewLines(t, database), "\n")
}

// AthenaViewDDL returns the CREATE OR REPLACE VIEW statement of t's latest
// view for Athena, qualified by database when not empty. The statement ends
// with a semicolon and a newline.
func AthenaViewDDL(t Table, database string) string {
	name := quoteSQLIdent(LatestViewName(t))
	if database != "" {
		name = quoteSQLIdent(database) + "." + name
	}
	return "CREATE OR REPLACE VIEW " + name + " AS\n" + LatestViewSQL(t, database) + ";\n"
}

// PrestoView is the view definition Athena keeps in a Glue table of type
// VIRTUAL_VIEW: this JSON, base64-encoded, in ViewOriginalText as
// "/* Presto View: <base64> */". Athena checks Columns against the query's
// result when the view is read and calls the view stale if they differ.
type PrestoView struct {
	OriginalSQL string         `json:"originalSql"`
	Catalog     string         `json:"catalog"`
	Schema      string         `json:"schema"`
	Columns     []PrestoColumn `json:"columns"`
}

// PrestoColumn is a column of a PrestoView, with its Presto (Trino) type.
type PrestoColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// AthenaCatalog is the catalog name of the Glue Data Catalog in Athena.
const AthenaCatalog = "awsdatacatalog"

// LatestPrestoView returns the Glue view definition of t's latest view in
// database: the SQL of LatestViewSQL on one line, with table names resolved
// in database.
func LatestPrestoView(t Table, database string) PrestoView {
	v := PrestoView{
		OriginalSQL: strings.Join(latestViewLines(t, ""), " "),
		Catalog:     AthenaCatalog,
		Schema:      database,
	}
	for _, c := range LatestViewColumns(t) {
		v.Columns = append(v.Columns, PrestoColumn{Name: c.Name, Type: PrestoType(c.HiveType)})
	}
	return v
}

// PrestoType returns the Presto (Trino) name of a Hive type: string is
// varchar, int integer, float real, binary varbinary, array<T> array(T) and
// struct<a:T> row(a T); other names are the same in both.
func PrestoType(hive string) string {
	switch {
	case hive == "string":
		return "varchar"
	case hive == "int":
		return "integer"
	case hive == "float":
		return "real"
	case hive == "binary":
		return "varbinary"
	case strings.HasPrefix(hive, "array<") && strings.HasSuffix(hive, ">"):
		return "array(" + PrestoType(hive[len("array<"):len(hive)-1]) + ")"
	case strings.HasPrefix(hive, "struct<") && strings.HasSuffix(hive, ">"):
		fields := splitTopLevel(hive[len("struct<") : len(hive)-1])
		for i, f := range fields {
			name, typ, _ := strings.Cut(f, ":")
			fields[i] = name + " " + PrestoType(typ)
		}
		return "row(" + strings.Join(fields, ", ") + ")"
	}
	return hive
}

// splitTopLevel splits s at the commas outside <>.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '<':
			depth++
		case '>':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// quoteSQLIdent quotes a Presto/Trino identifier with double quotes (Athena
// views and queries; Hive DDL uses backticks, see quoteIdent).
func quoteSQLIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
