package schema

import (
	"fmt"
	"strings"
)

// DefaultProjectionStart is the first partition date of the dt projection
// when DDLOptions.ProjectionStart is empty.
const DefaultProjectionStart = "2025-01-01"

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
		{"dsync_export.schema_version", Version},
		{"projection.enabled", "true"},
		{"projection.dt.type", "date"},
		{"projection.dt.format", "yyyy-MM-dd"},
		{"projection.dt.range", start + ",NOW"},
		{"projection.dt.interval", "1"},
		{"projection.dt.interval.unit", "DAYS"},
		{"storage.location.template", TableLocation(location, t.Name) + PartitionColumn + "=${" + PartitionColumn + "}/"},
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
		quoteString("Snapshot date, yyyy-MM-dd (UTC), in the S3 path, not in the files"))
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
