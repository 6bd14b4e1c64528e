package samtemplate

// Tests of the repository's template.yaml, events/ and Makefile against the
// code. Run `go test ./internal/samtemplate -update` to rewrite the Glue columns of
// template.yaml from pkg/schema.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/London for TestScheduleTimezoneWarnsOfDST, whatever the host has

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/dsync-export/dsync-export/pkg/lambdafn"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/verify"
)

var update = flag.Bool("update", false, "rewrite the Glue columns of template.yaml from pkg/schema")

const (
	root         = "../.."
	templatePath = root + "/template.yaml"
	eventsDir    = root + "/events"
)

// Environment variables each function reads. A variable read in the code but
// missing here is caught by TestEnvironmentDeclaredForEverySourceLiteral.
var (
	exportEnv = []string{
		"EXPORT_DESTINATION",
		"WORKOS_API_KEY_SECRET_ID",
		"WORKOS_API_KEY_SECRET_FIELD",
		"WORKOS_API_KEY",
		"WORKOS_BASE_URL",
		"EXPORT_CONCURRENCY",
		"EXPORT_WORKERS",
		"EXPORT_MEMBERSHIP_MODE",
		"EXPORT_ORGANIZATION_IDS",
		"EXPORT_DIRECTORY_IDS",
		"EXPORT_S3_PATH_STYLE",
		"EXPORT_DEADLINE_MARGIN",
		"EXPORT_PROGRESS_EVERY",
		"EXPORT_MODE",
		"EXPORT_FULL_EVERY",
		"EXPORT_EVENTS_MARGIN", "EXPORT_EVENTS_SETTLE",
		"EXPORT_PROJECTION_START",
		"WORKOS_RATE_LIMIT_DIRECTORY_USERS",
		"WORKOS_RATE_LIMIT_GLOBAL",
		"WORKOS_MAX_ATTEMPTS",
		"EXPORT_COMPRESSION",
		"EXPORT_MAX_FILE_MIB",
		"AWS_ENDPOINT_URL_S3",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER",
	}
	verifyEnv = []string{
		"EXPORT_DESTINATION",
		"VERIFY_SAMPLE",
		"VERIFY_MAX_DROP",
		"WORKOS_API_KEY_SECRET_ID",
		"WORKOS_API_KEY_SECRET_FIELD",
		"WORKOS_API_KEY",
		"WORKOS_BASE_URL",
		"EXPORT_S3_PATH_STYLE",
		"AWS_ENDPOINT_URL_S3",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER",
	}
	functionEnv = map[string][]string{"ExportFunction": exportEnv, "VerifyFunction": verifyEnv}
	// localEnv are variables the functions read only outside Lambda, which
	// the template must not declare: LOG_LEVEL sets a local run's level; in
	// Lambda the level is Globals.Function.LoggingConfig.ApplicationLogLevel.
	localEnv = []string{"LOG_LEVEL"}
	// functionDirs maps each function to the folder of its main package.
	functionDirs = map[string]string{"ExportFunction": "functions/export", "VerifyFunction": "functions/verify"}
)

// Lambda rejects these names in a function's configuration.
var lambdaReserved = []string{
	"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
	"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
	"AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
	"AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ",
}

func load(t *testing.T) *Template {
	t.Helper()
	tmpl, err := Load(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// bucketExpr is how the template names the data bucket everywhere.
const bucketExpr = "!If [CreateBucket, !Ref DataBucket, !Ref ExistingBucketName]"

// checkBucketVar checks that a !Sub's ${Bucket} variable is the data bucket.
func checkBucketVar(t *testing.T, where string, n *yaml.Node) {
	t.Helper()
	v := SubVariables(n)["Bucket"]
	if v == nil {
		t.Errorf("%s: !Sub has no Bucket variable", where)
		return
	}
	if got := flow(v); got != bucketExpr {
		t.Errorf("%s: Bucket = %s, want %s", where, got, bucketExpr)
	}
}

// flow renders a node in one line of YAML flow style, tags included.
func flow(n *yaml.Node) string {
	n = deref(n)
	tag := ""
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		tag = n.Tag + " "
	}
	switch n.Kind {
	case yaml.SequenceNode:
		parts := make([]string, len(n.Content))
		for i, c := range n.Content {
			parts[i] = flow(c)
		}
		return tag + "[" + strings.Join(parts, ", ") + "]"
	case yaml.MappingNode:
		parts := make([]string, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			parts = append(parts, n.Content[i].Value+": "+flow(n.Content[i+1]))
		}
		return tag + "{" + strings.Join(parts, ", ") + "}"
	}
	return tag + n.Value
}

// flowOf is flow for a node that may be absent.
func flowOf(n *yaml.Node) string {
	if deref(n) == nil {
		return "<missing>"
	}
	return flow(n)
}

// ------------------------------------------------------------ Glue vs schema

// catalogTables are the Glue tables of the stack: the data tables, then
// the snapshots table.
func catalogTables() []schema.Table { return schema.CatalogTables() }

// templateColumns converts schema columns to template columns.
func templateColumns(cols []schema.Column) []Column {
	out := make([]Column, 0, len(cols))
	for _, c := range cols {
		out = append(out, Column{Name: c.Name, Type: c.HiveType, Comment: c.Comment})
	}
	return out
}

func TestGlueTablesMatchSchema(t *testing.T) {
	if *update {
		if err := updateColumns(templatePath); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := load(t)
	tables, err := tmpl.GlueTables()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, st := range catalogTables() {
		want = append(want, st.Name)
	}
	for _, st := range schema.Tables() {
		want = append(want, schema.LatestViewName(st))
	}
	var got []string
	for name := range tables {
		got = append(got, name)
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Glue tables in template.yaml differ from pkg/schema's tables and views (-schema +template):\n%s", diff)
	}

	for _, st := range catalogTables() {
		t.Run(st.Name, func(t *testing.T) {
			g := tables[st.Name]
			if diff := cmp.Diff(templateColumns(st.Columns()), g.Columns); diff != "" {
				t.Errorf("%s columns differ from pkg/schema (-schema +template):\n%s\n"+
					"Run `go test ./internal/samtemplate -update` to rewrite them, or paste:\n%s",
					g.LogicalID, diff, columnsYAML(st.Columns(), "            "))
			}
			if diff := cmp.Diff([]Column{{Name: "dt", Type: "string", Comment: st.PartitionComment}}, g.PartitionKeys); diff != "" {
				t.Errorf("partition keys (-want +got):\n%s", diff)
			}
			if g.Description != st.Description {
				t.Errorf("Description = %q, want schema's %q", g.Description, st.Description)
			}

			// The properties are pkg/schema's (as athena-ddl prints them), for
			// the stack's bucket, prefix and projection start, plus EXTERNAL.
			prefix := "s3://${Bucket}/${ExportPrefix}"
			wantParams := map[string]string{"EXTERNAL": "TRUE"}
			for _, p := range schema.TableProperties(st, prefix, "${ProjectionStartDate}") {
				wantParams[p[0]] = strings.ReplaceAll(p[1], "${dt}", "${!dt}") // !Sub's escape of a literal ${dt}
			}
			if diff := cmp.Diff(wantParams, g.Parameters); diff != "" {
				t.Errorf("table parameters differ from schema.TableProperties (-want +got):\n%s", diff)
			}
			// The data of date D is at <prefix>/<table>/dt=D/ (pkg/snapshot).
			if want := prefix + "/" + snapshot.PartitionPrefix(st.Name, "${!dt}"); g.Parameters[schema.PropertyLocationTemplate] != want {
				t.Errorf("location template = %q, want pkg/snapshot's layout %q", g.Parameters[schema.PropertyLocationTemplate], want)
			}
			if want := prefix + "/" + st.Name + "/"; g.Location != want {
				t.Errorf("Location = %q, want %q", g.Location, want)
			}
			checkBucketVar(t, g.LogicalID+" storage.location.template", Get(g.Node, "Parameters", "storage.location.template"))
			checkBucketVar(t, g.LogicalID+" Location", Get(g.Node, "StorageDescriptor", "Location"))
			for _, c := range []struct{ got, want string }{
				{g.TableType, "EXTERNAL_TABLE"},
				{g.InputFormat, schema.ParquetInputFormat},
				{g.OutputFormat, schema.ParquetOutputFormat},
				{g.SerializationLibrary, schema.ParquetSerDe},
			} {
				if c.got != c.want {
					t.Errorf("got %q, want %q", c.got, c.want)
				}
			}
			if db, _ := Text(Get(tmpl.Root, "Resources", g.LogicalID, "Properties", "DatabaseName")); db != "${GlueDatabase}" {
				t.Errorf("DatabaseName = %q, want !Ref GlueDatabase", db)
			}
		})
	}

	params := tmpl.Parameters()
	if p := params["ProjectionStartDate"]; !regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`).MatchString(p.Default) {
		t.Errorf("ProjectionStartDate default %q is not yyyy-MM-dd", p.Default)
	}
	// Athena needs an explicit, lower-case database name.
	if name, _ := Text(Get(tmpl.Root, "Resources", "GlueDatabase", "Properties", "DatabaseInput", "Name")); name != "${GlueDatabaseName}" {
		t.Errorf("Glue database name = %q, want !Ref GlueDatabaseName", name)
	}
	if p := params["GlueDatabaseName"]; !regexp.MustCompile(`^[a-z0-9_]+$`).MatchString(p.Default) {
		t.Errorf("GlueDatabaseName default %q is not lower-case letters, digits and underscores", p.Default)
	}
}

// TestDefaultsAgree keeps one value for each default that the stack,
// cmd/athena-ddl and the Makefile share: the constants in pkg/schema.
func TestDefaultsAgree(t *testing.T) {
	params := load(t).Parameters()
	for _, c := range []struct{ param, constant, want string }{
		{"ProjectionStartDate", "schema.DefaultProjectionStart", schema.DefaultProjectionStart},
		{"ExportPrefix", "schema.DefaultExportPrefix", schema.DefaultExportPrefix},
		{"GlueDatabaseName", "schema.DefaultDatabase", schema.DefaultDatabase},
	} {
		if got := params[c.param].Default; got != c.want {
			t.Errorf("template parameter %s defaults to %q but %s (athena-ddl's default) is %q: change one to match",
				c.param, got, c.constant, c.want)
		}
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	// The Makefile passes these only when set, so athena-ddl's defaults apply.
	for _, m := range regexp.MustCompile(`(?m)^(PREFIX|DATABASE|START)\s*\??=\s*(.*)$`).FindAllStringSubmatch(string(makefile), -1) {
		t.Errorf("the Makefile sets a default %s = %q: leave it unset so cmd/athena-ddl's default (pkg/schema) applies", m[1], m[2])
	}
	// events/env.json's local destination uses the same prefix.
	var env map[string]map[string]string
	readJSON(t, filepath.Join(eventsDir, "env.json"), &env)
	if d := env["ExportFunction"]["EXPORT_DESTINATION"]; !strings.HasSuffix(d, "/"+schema.DefaultExportPrefix) {
		t.Errorf("env.json EXPORT_DESTINATION %q does not end in the default prefix /%s", d, schema.DefaultExportPrefix)
	}
}

// ddlLine parses the column lines of schema.AthenaDDL.
var (
	ddlColumn   = regexp.MustCompile("(?m)^  `([a-z0-9_]+)` (\\S+) COMMENT '((?:[^'\\\\]|\\\\.)*)',?$")
	ddlProperty = regexp.MustCompile(`(?m)^  '([^']+)'='([^']*)',?$`)
	ddlLocation = regexp.MustCompile(`(?m)^LOCATION '([^']+)'$`)
)

// TestTemplateMatchesDDL compares each Glue table of the stack, resolved with
// the parameter defaults, with the DDL that cmd/athena-ddl prints with its
// defaults: the same columns and types, properties (schema version,
// projection range, location template) and location.
func TestTemplateMatchesDDL(t *testing.T) {
	tmpl := load(t)
	tables, err := tmpl.GlueTables()
	if err != nil {
		t.Fatal(err)
	}
	params := tmpl.Parameters()
	const bucket = "example-bucket"
	resolve := strings.NewReplacer(
		"${Bucket}", bucket,
		"${ExportPrefix}", params["ExportPrefix"].Default,
		"${ProjectionStartDate}", params["ProjectionStartDate"].Default,
		"${!dt}", "${dt}",
	).Replace
	for _, st := range catalogTables() {
		t.Run(st.Name, func(t *testing.T) {
			ddl := schema.AthenaDDL(st, schema.DDLOptions{Location: "s3://" + bucket + "/" + schema.DefaultExportPrefix})
			g := tables[st.Name]

			var ddlCols, tmplCols []string
			for _, m := range ddlColumn.FindAllStringSubmatch(ddl, -1) {
				ddlCols = append(ddlCols, m[1]+" "+m[2]+" "+strings.ReplaceAll(m[3], `\'`, "'"))
			}
			for _, c := range g.Columns {
				tmplCols = append(tmplCols, c.Name+" "+c.Type+" "+c.Comment)
			}
			if len(ddlCols) != len(st.Columns()) {
				t.Fatalf("parsed %d columns from the DDL, want %d:\n%s", len(ddlCols), len(st.Columns()), ddl)
			}
			if diff := cmp.Diff(ddlCols, tmplCols); diff != "" {
				t.Errorf("columns (-athena-ddl +template):\n%s", diff)
			}

			ddlProps := map[string]string{}
			for _, m := range ddlProperty.FindAllStringSubmatch(ddl, -1) {
				ddlProps[m[1]] = m[2]
			}
			tmplProps := map[string]string{}
			for k, v := range g.Parameters {
				if k != "EXTERNAL" { // implied by CREATE EXTERNAL TABLE
					tmplProps[k] = resolve(v)
				}
			}
			for _, k := range []string{schema.PropertySchemaVersion, schema.PropertyProjectionRange, schema.PropertyLocationTemplate} {
				if ddlProps[k] == "" {
					t.Errorf("the DDL has no %s property:\n%s", k, ddl)
				}
			}
			if diff := cmp.Diff(ddlProps, tmplProps); diff != "" {
				t.Errorf("properties (-athena-ddl +template):\n%s", diff)
			}
			loc := ddlLocation.FindStringSubmatch(ddl)
			if loc == nil || loc[1] != resolve(g.Location) {
				t.Errorf("LOCATION %v, template Location %q", loc, resolve(g.Location))
			}
		})
	}
}

// TestLatestViewsMatchSchema checks the <table>_latest views: Glue tables
// of type VIRTUAL_VIEW that Athena reads as views, whose definition (the
// base64 Presto JSON of ViewOriginalText) is pkg/schema's.
func TestLatestViewsMatchSchema(t *testing.T) {
	tmpl := load(t)
	tables, err := tmpl.GlueTables()
	if err != nil {
		t.Fatal(err)
	}
	const db = "example_db"
	for _, st := range schema.Tables() {
		name := schema.LatestViewName(st)
		t.Run(name, func(t *testing.T) {
			g, ok := tables[name]
			if !ok {
				t.Fatalf("template.yaml has no view %s; add:\n%s", name, viewYAML(st))
			}
			if g.TableType != "VIRTUAL_VIEW" || g.Parameters["presto_view"] != "true" || len(g.PartitionKeys) != 0 {
				t.Errorf("%s: TableType %q, presto_view %q, %d partition keys; want VIRTUAL_VIEW, \"true\", none",
					g.LogicalID, g.TableType, g.Parameters["presto_view"], len(g.PartitionKeys))
			}
			if got, _ := Text(Get(g.Node, "ViewExpandedText")); got != "/* Presto View */" {
				t.Errorf("%s: ViewExpandedText = %q, want /* Presto View */", g.LogicalID, got)
			}
			if db, _ := Text(Get(tmpl.Root, "Resources", g.LogicalID, "Properties", "DatabaseName")); db != "${GlueDatabase}" {
				t.Errorf("DatabaseName = %q, want !Ref GlueDatabase", db)
			}
			if Get(g.Node, "StorageDescriptor", "SerdeInfo") == nil {
				t.Errorf("%s: no StorageDescriptor.SerdeInfo: Athena fails to read a view without one", g.LogicalID)
			}
			if diff := cmp.Diff(templateColumns(schema.LatestViewColumns(st)), g.Columns); diff != "" {
				t.Errorf("%s columns (-schema +template); run go test ./internal/samtemplate -update:\n%s", g.LogicalID, diff)
			}
			format, err := PrestoViewText(Get(g.Node, "ViewOriginalText"))
			if err != nil {
				t.Fatalf("%s: %v", g.LogicalID, err)
			}
			var got schema.PrestoView
			dec := json.NewDecoder(strings.NewReader(strings.ReplaceAll(format, "${GlueDatabaseName}", db)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("%s: the Presto view JSON: %v\n%s", g.LogicalID, err, format)
			}
			if diff := cmp.Diff(schema.LatestPrestoView(st, db), got); diff != "" {
				t.Errorf("%s view definition differs from pkg/schema (-schema +template); replace the resource with:\n%s\n%s",
					g.LogicalID, viewYAML(st), diff)
			}
			if rest := regexp.MustCompile(`\$\{[^}]*\}`).FindAllString(strings.ReplaceAll(format, "${GlueDatabaseName}", ""), -1); len(rest) > 0 {
				t.Errorf("%s: the view JSON has !Sub variables %v besides ${GlueDatabaseName}", g.LogicalID, rest)
			}
		})
	}
}

// viewYAML renders the template resource of a data table's latest view.
func viewYAML(st schema.Table) string {
	v := schema.LatestPrestoView(st, "${GlueDatabaseName}")
	var b strings.Builder
	var logical string
	for _, word := range strings.Split(schema.LatestViewName(st), "_") {
		logical += strings.ToUpper(word[:1]) + word[1:]
	}
	fmt.Fprintf(&b, "  %sView:\n    Type: AWS::Glue::Table\n    Properties:\n", logical)
	b.WriteString("      CatalogId: !Ref AWS::AccountId\n      DatabaseName: !Ref GlueDatabase\n      TableInput:\n")
	fmt.Fprintf(&b, "        Name: %s\n", schema.LatestViewName(st))
	fmt.Fprintf(&b, "        Description: The latest committed snapshot of %s (the newest row of snapshots names its date and run)\n", st.Name)
	b.WriteString("        TableType: VIRTUAL_VIEW\n        Parameters: {presto_view: \"true\", comment: Presto View}\n")
	b.WriteString("        ViewExpandedText: /* Presto View */\n        ViewOriginalText: !Join\n          - \"\"\n")
	b.WriteString("          - - \"/* Presto View: \"\n            - Fn::Base64: !Sub |\n")
	var sql bytes.Buffer
	enc := json.NewEncoder(&sql)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v.OriginalSQL)
	fmt.Fprintf(&b, "                {\"originalSql\": %s,\n", strings.TrimSpace(sql.String()))
	fmt.Fprintf(&b, "                 \"catalog\": %q, \"schema\": %q,\n                 \"columns\": [\n", v.Catalog, v.Schema)
	for i, c := range v.Columns {
		sep := ","
		if i == len(v.Columns)-1 {
			sep = "]}"
		}
		fmt.Fprintf(&b, "                   {\"name\": %q, \"type\": %q}%s\n", c.Name, c.Type, sep)
	}
	b.WriteString("            - \" */\"\n        StorageDescriptor:\n          SerdeInfo: {}\n          Columns:\n")
	b.WriteString(columnsYAML(schema.LatestViewColumns(st), "            "))
	return b.String()
}

// columnsYAML renders columns the way template.yaml writes them.
func columnsYAML(cols []schema.Column, indent string) string {
	var b strings.Builder
	for _, c := range cols {
		fmt.Fprintf(&b, "%s- {Name: %s, Type: %s, Comment: %s}\n", indent, c.Name, c.HiveType, strconv.Quote(c.Comment))
	}
	return b.String()
}

// templateTableColumns maps every Glue table and view of the stack to its
// columns in pkg/schema.
func templateTableColumns() map[string][]schema.Column {
	m := map[string][]schema.Column{}
	for _, st := range catalogTables() {
		m[st.Name] = st.Columns()
	}
	for _, st := range schema.Tables() {
		m[schema.LatestViewName(st)] = schema.LatestViewColumns(st)
	}
	return m
}

// updateColumns rewrites the Columns list of each Glue table and view in the
// template file from pkg/schema, keeping every other line as it is.
func updateColumns(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	tmpl, err := Parse(data)
	if err != nil {
		return err
	}
	tables, err := tmpl.GlueTables()
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(data), "\n")
	type edit struct {
		first, last int // 1-based lines of the first and last item
		text        string
	}
	var edits []edit
	for name, cols := range templateTableColumns() {
		g, ok := tables[name]
		if !ok {
			return fmt.Errorf("template.yaml has no Glue table %s: add one (copy another table or view) and run again", name)
		}
		seq := Get(g.Node, "StorageDescriptor", "Columns")
		if seq == nil || seq.Kind != yaml.SequenceNode || len(seq.Content) == 0 {
			return fmt.Errorf("%s: StorageDescriptor.Columns must be a non-empty block list", g.LogicalID)
		}
		first, last := seq.Content[0], seq.Content[len(seq.Content)-1]
		for _, item := range seq.Content {
			if item.Style&yaml.FlowStyle == 0 {
				return fmt.Errorf("%s: write every column on one line as {Name: …, Type: …, Comment: …} (line %d)", g.LogicalID, item.Line)
			}
		}
		indent := strings.Repeat(" ", first.Column-3) // the item's "- " starts two columns left of its mapping
		edits = append(edits, edit{first.Line, last.Line, columnsYAML(cols, indent)})
	}
	slices.SortFunc(edits, func(a, b edit) int { return b.first - a.first }) // bottom up keeps line numbers valid
	for _, e := range edits {
		lines = slices.Replace(lines, e.first-1, e.last, e.text)
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644)
}

// ------------------------------------------------------------ environment

func TestEnvironmentDeclared(t *testing.T) {
	tmpl := load(t)
	for id, names := range functionEnv {
		fn, err := tmpl.Function(id)
		if err != nil {
			t.Fatal(err)
		}
		var declared []string
		for _, v := range fn.Environment {
			declared = append(declared, v.Name)
			if slices.Contains(lambdaReserved, v.Name) {
				t.Errorf("%s declares %s, which Lambda reserves: remove it", id, v.Name)
			}
		}
		for _, name := range names {
			if !slices.Contains(declared, name) {
				t.Errorf("%s does not declare %s: add it to Environment.Variables (\"\" if it has no value in AWS), "+
					"or sam local invoke --env-vars cannot set it", id, name)
			}
		}
		for _, name := range declared {
			if !slices.Contains(names, name) {
				t.Errorf("%s declares %s, which is not in this test's list of variables it reads: add it to the list or remove it", id, name)
			}
		}
		for _, name := range localEnv {
			if slices.Contains(declared, name) {
				t.Errorf("%s declares %s, which only local runs read: remove it (in Lambda, LoggingConfig sets the log level)", id, name)
			}
		}
		// Local-only and SDK variables must be empty (unset) in AWS.
		for _, name := range []string{"WORKOS_API_KEY", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SECRETS_MANAGER"} {
			if v, _ := fn.Env(name); !v.Resolved || v.Value != "" {
				t.Errorf("%s: %s must be \"\" in the template (it is set only locally)", id, name)
			}
		}
		if v, _ := fn.Env("EXPORT_S3_PATH_STYLE"); v.Value != "false" {
			t.Errorf("%s: EXPORT_S3_PATH_STYLE = %q, want \"false\" in AWS", id, v.Value)
		}
	}
}

// envLiteral matches the names of this project's environment variables.
var envLiteral = regexp.MustCompile(`^(EXPORT|WORKOS|VERIFY)_[A-Z0-9_]+$`)

// sourceEnvLiterals returns the EXPORT_/WORKOS_/VERIFY_ string literals of the
// non-test Go files under dir, with the file of their first use.
func sourceEnvLiterals(t *testing.T, dir string, skip func(path string) bool) map[string]string {
	t.Helper()
	found := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path == dir {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || skip(path) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && envLiteral.MatchString(s) {
					if _, seen := found[s]; !seen {
						found[s] = path
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestEnvironmentDeclaredForEverySourceLiteral catches a variable added to the
// code but not to template.yaml: every EXPORT_/WORKOS_/VERIFY_ string literal
// in a function's folder must be declared by that function, and every one in
// the shared packages by at least one function.
func TestEnvironmentDeclaredForEverySourceLiteral(t *testing.T) {
	tmpl := load(t)
	declared := map[string][]string{}
	for id := range functionDirs {
		fn, err := tmpl.Function(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range fn.Environment {
			declared[id] = append(declared[id], v.Name)
		}
	}
	for id, dir := range functionDirs {
		for name, file := range sourceEnvLiterals(t, filepath.Join(root, dir), func(string) bool { return false }) {
			if !slices.Contains(declared[id], name) {
				t.Errorf("%s reads %s (%s) but template.yaml does not declare it for %s", id, name, file, id)
			}
			if !slices.Contains(functionEnv[id], name) {
				t.Errorf("%s reads %s (%s): add it to this test's list for %s", id, name, file, id)
			}
		}
	}
	// Test infrastructure and tools are not deployed.
	notDeployed := func(path string) bool {
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		return rel == "internal/testenv/awstest" || rel == "internal/samtemplate" || rel == "internal/testenv/rie" || strings.HasSuffix(rel, "test")
	}
	for name, file := range sourceEnvLiterals(t, filepath.Join(root, "pkg"), notDeployed) {
		if !slices.Contains(declared["ExportFunction"], name) && !slices.Contains(declared["VerifyFunction"], name) {
			t.Errorf("%s reads %s but no function in template.yaml declares it", file, name)
		}
	}
}

// ------------------------------------------------------------ events

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if dec.More() {
		t.Fatalf("%s: data after the JSON value", path)
	}
}

func TestEventsAreValidJSON(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
		var obj map[string]any
		readJSON(t, f, &obj)
		if len(obj) == 0 {
			t.Errorf("%s: empty object", f)
		}
	}
	for _, want := range []string{
		"scheduled.json", "scheduler.json", "manual.json", "manifest-created.json", "verify-manual.json", "env.json",
		"execution-input.json", "step-plan.json", "step-unit.json", "step-commit.json", "step-abort.json",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("events/%s is missing", want)
		}
	}
}

func TestEnvJSONMatchesTemplate(t *testing.T) {
	tmpl := load(t)
	var env map[string]map[string]string // also fails on a non-string value
	readJSON(t, filepath.Join(eventsDir, "env.json"), &env)
	var sections []string
	for k := range env {
		sections = append(sections, k)
	}
	slices.Sort(sections)
	if diff := cmp.Diff([]string{"ExportFunction", "VerifyFunction"}, sections); diff != "" {
		t.Errorf("env.json sections (-want +got):\n%s", diff)
	}
	for id, vars := range env {
		fn, err := tmpl.Function(id)
		if err != nil {
			t.Fatalf("env.json section %s: %v", id, err)
		}
		var declared, set []string
		for _, v := range fn.Environment {
			declared = append(declared, v.Name)
		}
		for k := range vars {
			set = append(set, k)
		}
		slices.Sort(declared)
		slices.Sort(set)
		// sam local ignores undeclared variables; a missing one silently
		// keeps its AWS value (e.g. the real WorkOS URL).
		if diff := cmp.Diff(declared, set); diff != "" {
			t.Errorf("env.json %s must set exactly the variables template.yaml declares (-template +env.json):\n%s", id, diff)
		}
		if vars["WORKOS_API_KEY"] == "" || !strings.HasPrefix(vars["WORKOS_BASE_URL"], "http://127.0.0.1:") {
			t.Errorf("env.json %s must use a local WorkOS (WORKOS_BASE_URL http://127.0.0.1:…) with WORKOS_API_KEY set", id)
		}
		if vars["EXPORT_S3_PATH_STYLE"] != "true" || !strings.HasPrefix(vars["AWS_ENDPOINT_URL_S3"], "http://127.0.0.1:") {
			t.Errorf("env.json %s must use a local S3 (AWS_ENDPOINT_URL_S3 http://127.0.0.1:…) with path-style addressing", id)
		}
	}
	if env["ExportFunction"]["EXPORT_DESTINATION"] != env["VerifyFunction"]["EXPORT_DESTINATION"] {
		t.Error("env.json: the export and the verifier must share EXPORT_DESTINATION")
	}
}

func TestManifestEventMatchesRuleAndDestination(t *testing.T) {
	tmpl := load(t)
	var ev struct {
		DetailType string `json:"detail-type"`
		Source     string `json:"source"`
		Detail     struct {
			Bucket struct{ Name string } `json:"bucket"`
			Object struct{ Key string }  `json:"object"`
		} `json:"detail"`
	}
	readJSON(t, filepath.Join(eventsDir, "manifest-created.json"), &ev)
	var env map[string]map[string]string
	readJSON(t, filepath.Join(eventsDir, "env.json"), &env)

	prefix, date, ok := snapshot.ParseManifestKey(ev.Detail.Object.Key)
	if !ok {
		t.Fatalf("manifest-created.json key %q is not a manifest key", ev.Detail.Object.Key)
	}
	if want := "s3://" + ev.Detail.Bucket.Name + "/" + prefix; env["VerifyFunction"]["EXPORT_DESTINATION"] != want {
		t.Errorf("manifest-created.json is for %s, env.json's EXPORT_DESTINATION is %s: the verifier would reject it",
			want, env["VerifyFunction"]["EXPORT_DESTINATION"])
	}
	var manual struct {
		SnapshotDate string `json:"snapshot_date"`
	}
	readJSON(t, filepath.Join(eventsDir, "verify-manual.json"), &manual)
	if manual.SnapshotDate != date {
		t.Errorf("verify-manual.json date %s differs from manifest-created.json's %s", manual.SnapshotDate, date)
	}

	// The template's rule must match this event.
	pattern := Get(tmpl.Root, "Resources", "VerifyFunction", "Properties", "Events", "ManifestCreated")
	if typ, _ := Text(Get(pattern, "Type")); typ != "EventBridgeRule" {
		t.Fatalf("VerifyFunction event ManifestCreated has type %q, want EventBridgeRule", typ)
	}
	p := Get(pattern, "Properties", "Pattern")
	if got := flow(Get(p, "source")); got != "[aws.s3]" || ev.Source != "aws.s3" {
		t.Errorf("rule source %s, event source %s; want aws.s3", got, ev.Source)
	}
	if got := flow(Get(p, "detail-type")); got != "[Object Created]" || ev.DetailType != "Object Created" {
		t.Errorf("rule detail-type %s, event detail-type %s; want Object Created", got, ev.DetailType)
	}
	if got := flow(Get(p, "detail", "bucket", "name")); got != "["+bucketExpr+"]" {
		t.Errorf("rule bucket %s, want [%s]", got, bucketExpr)
	}
	wildcard, _ := Text(Get(p, "detail", "object", "key", "0", "wildcard"))
	if want := "${ExportPrefix}/" + snapshot.ManifestsDir + "/dt=*/manifest.json"; wildcard != want {
		t.Errorf("rule key wildcard %q, want %q", wildcard, want)
	}
	re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(strings.ReplaceAll(wildcard, "${ExportPrefix}", prefix)), `\*`, ".*") + "$")
	if !re.MatchString(ev.Detail.Object.Key) {
		t.Errorf("rule wildcard %q (prefix %q) does not match the event key %q", wildcard, prefix, ev.Detail.Object.Key)
	}
	for _, other := range []string{prefix + "/directories/dt=" + date + "/part-00000.parquet", prefix + "/_manifests/dt=" + date + "/manifest.json.tmp"} {
		if re.MatchString(other) {
			t.Errorf("rule wildcard %q matches %q, which is not a manifest", wildcard, other)
		}
	}
}

// TestScheduleInputMatchesSchedulerEvent: the daily schedule starts the
// export state machine (not the function) with the Scheduler input shape of
// events/scheduler.json, which the Plan step receives as its trigger.
func TestScheduleInputMatchesSchedulerEvent(t *testing.T) {
	tmpl := load(t)
	// No function keeps a schedule: the state machine is the only entry point of the daily export.
	fns, err := tmpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range fns {
		events := Get(fn.Node, "Properties", "Events")
		for _, name := range Keys(events) {
			if typ, _ := Text(Get(events, name, "Type")); typ == "Schedule" || typ == "ScheduleV2" {
				t.Errorf("%s has a %s event %s: the schedule belongs to ExportStateMachine", fn.LogicalID, typ, name)
			}
		}
	}
	sched := Get(tmpl.Root, "Resources", "ExportStateMachine", "Properties", "Events", "Daily")
	if typ, _ := Text(Get(sched, "Type")); typ != "ScheduleV2" {
		t.Fatalf("ExportStateMachine event Daily has type %q, want ScheduleV2", typ)
	}
	props := Get(sched, "Properties")
	input, _ := Text(Get(props, "Input"))
	var in map[string]string
	if err := json.Unmarshal([]byte(input), &in); err != nil {
		t.Fatalf("schedule Input %q: %v", input, err)
	}
	if diff := cmp.Diff(map[string]string{"scheduled_time": "<aws.scheduler.scheduled-time>"}, in); diff != "" {
		t.Errorf("schedule Input (-want +got):\n%s", diff)
	}
	var ev map[string]string
	readJSON(t, filepath.Join(eventsDir, "scheduler.json"), &ev)
	if _, ok := ev["scheduled_time"]; !ok || len(ev) != 1 {
		t.Errorf("events/scheduler.json = %v, want the schedule's input shape {scheduled_time}", ev)
	}
	for _, key := range []string{"RetryPolicy", "DeadLetterConfig", "ScheduleExpression"} {
		if Get(props, key) == nil {
			t.Errorf("the schedule has no %s", key)
		}
	}
	for key, want := range map[string]string{
		"ScheduleExpression":         "!Ref ScheduleExpression",
		"ScheduleExpressionTimezone": "!Ref ScheduleTimezone",
		"State":                      "!Ref ScheduleState",
		"DeadLetterConfig":           "{Arn: !GetAtt DeadLetterQueue.Arn}",
		"FlexibleTimeWindow":         "{Mode: OFF}",
		"RoleArn":                    "!GetAtt " + scheduleRoleID + ".Arn", // not SAM's role, whose trust has no condition
		"GroupName":                  "<missing>",                          // the default group, which ScheduleRole's trust names
	} {
		if got := flowOf(Get(props, key)); got != want {
			t.Errorf("schedule %s = %s, want %s", key, got, want)
		}
	}
}

// scheduleRoleID is the daily schedule's execution role.
const scheduleRoleID = "ScheduleRole"

// TestScheduleRole: EventBridge Scheduler may assume the schedule's role only
// for a schedule of this account's default group (aws:SourceArn must be a
// schedule group's ARN, not a schedule's: EventBridge Scheduler guide,
// "Confused deputy prevention"), and the role may only start the export state
// machine and send undeliverable starts to the dead-letter queue.
func TestScheduleRole(t *testing.T) {
	tmpl := load(t)
	const group = "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule-group/default"
	cond := trustedService(t, tmpl, scheduleRoleID, "scheduler.amazonaws.com")
	if want := "{StringEquals: {aws:SourceAccount: !Ref AWS::AccountId}, ArnEquals: {aws:SourceArn: !Sub " + group + "}}"; cond != want {
		t.Errorf("%s trust Condition = %s, want %s", scheduleRoleID, cond, want)
	}
	r, _ := tmpl.Resource(scheduleRoleID)
	var got []string
	for _, st := range statements(t, Function{LogicalID: r.LogicalID, Node: r.Node}) {
		s := st.Node
		if effect, _ := Text(Get(s, "Effect")); effect != "Allow" || st.Condition != "" || Get(s, "Condition") != nil {
			t.Errorf("%s statement %s: want an unconditional Allow", scheduleRoleID, flowOf(Get(s, "Sid")))
		}
		got = append(got, strings.Join(list(Get(s, "Action")), " ")+" on "+fmt.Sprint(list(Get(s, "Resource"))))
	}
	want := []string{
		// By the state machine's fixed name: !Ref would be circular.
		"states:StartExecution on [arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-export]",
		// The scheduler writes to its DeadLetterConfig with this role.
		"sqs:SendMessage on [${DeadLetterQueue.Arn}]",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s policy statements (-want +got):\n%s", scheduleRoleID, diff)
	}
	if name, _ := Text(Get(tmpl.Root, "Resources", exportMachineID, "Properties", "Name")); name != "${AWS::StackName}-export" {
		t.Errorf("%s Name = %q: ScheduleRole names the state machine ${AWS::StackName}-export", exportMachineID, name)
	}
}

// snapshotDates counts the snapshot dates (the UTC date of the scheduled
// time) of a daily schedule at hour:minute local time in loc over a year.
func snapshotDates(loc *time.Location, year, hour, minute int) map[string]int {
	n := map[string]int{}
	for d := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() == year; d = d.AddDate(0, 0, 1) {
		at := time.Date(year, d.Month(), d.Day(), hour, minute, 0, 0, loc)
		n[at.UTC().Format(time.DateOnly)]++
	}
	return n
}

// TestScheduleTimezoneWarnsOfDST: the snapshot date is the UTC date of the
// scheduled time, so a schedule near local midnight in a zone with daylight
// saving time exports one date twice and skips another. The description of
// ScheduleTimezone says so, with a good and a bad example, which are checked
// here against the time zone database. (No Rules assertion: Rules cannot read
// a cron expression or a zone's offsets.)
func TestScheduleTimezoneWarnsOfDST(t *testing.T) {
	tmpl := load(t)
	desc, _ := Text(Get(tmpl.Root, "Parameters", "ScheduleTimezone", "Description"))
	for _, want := range []string{"UTC date", "daylight saving", "Europe/London", "cron(0 9 * * ? *)", "cron(30 0 * * ? *)", "2026-03-29", "2026-10-25"} {
		if !strings.Contains(desc, want) {
			t.Errorf("ScheduleTimezone Description lacks %q", want)
		}
	}
	if Get(tmpl.Root, "Rules") != nil {
		t.Error("the template has Rules: check that they refuse only bad ScheduleExpression/ScheduleTimezone pairs, then update this test")
	}
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	bad := snapshotDates(london, 2026, 0, 30) // cron(30 0 * * ? *)
	if bad["2026-03-29"] != 2 || bad["2026-10-25"] != 0 {
		t.Errorf("cron(30 0 * * ? *) in Europe/London: 2026-03-29 exported %d times, 2026-10-25 %d times; the description says 2 and 0",
			bad["2026-03-29"], bad["2026-10-25"])
	}
	good := snapshotDates(london, 2026, 9, 0) // cron(0 9 * * ? *)
	for d := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() == 2026; d = d.AddDate(0, 0, 1) {
		if date := d.Format(time.DateOnly); good[date] != 1 {
			t.Errorf("cron(0 9 * * ? *) in Europe/London exports %s %d times, want once", date, good[date])
		}
	}
}

// ------------------------------------------------------------ state machine

// The export state machine's contract with the function (the step protocol):
// every Task invokes ExportFunction through the Lambda integration, with a
// Payload that names the step.
const (
	exportMachineID   = "ExportStateMachine"
	lambdaInvoke      = "arn:aws:states:::lambda:invoke"
	exportFunctionVar = "${ExportFunctionArn}"
)

// lambdaServiceErrors are the Lambda service errors AWS recommends retrying
// (Step Functions docs, "Handle Lambda service exceptions").
var lambdaServiceErrors = []string{
	"Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException",
	"Lambda.AWSLambdaException", "Lambda.SdkClientException",
}

// chunkCrashErrors are what a crashed or timed-out invocation reports; a
// chunk is idempotent, so it is retried on them.
var chunkCrashErrors = []string{"Runtime.ExitError", "Sandbox.Timedout", "Lambda.Unknown"}

// notRetried are the errors that must fail the run at once: a retry cannot
// fix them (Export.*), or would hide one (States.ALL also matches bugs).
var notRetried = []string{"States.ALL", "Export.Superseded", "Export.InvalidInput", "Export.Unauthorized", "Export.Failed"}

// aslState is one state of the definition, with the Map that runs it ("" at
// the top level).
type aslState struct {
	Name, Map string
	Node      *yaml.Node
}

// aslStates returns every state of a States mapping and of the Maps'
// ItemProcessors (and Parallels' Branches) within, in file order.
func aslStates(t *testing.T, states *yaml.Node, parent string) []aslState {
	t.Helper()
	var out []aslState
	for _, name := range Keys(states) {
		n := Get(states, name)
		out = append(out, aslState{name, parent, n})
		if p := Get(n, "ItemProcessor", "States"); p != nil {
			out = append(out, aslStates(t, p, name)...)
		}
		if b := Get(n, "Iterator", "States"); b != nil {
			out = append(out, aslStates(t, b, name)...)
		}
		for _, br := range seqItems(Get(n, "Branches")) {
			out = append(out, aslStates(t, Get(br, "States"), name)...)
		}
	}
	return out
}

func seqItems(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

// exportMachine returns the state machine resource and its Definition.
func exportMachine(t *testing.T, tmpl *Template) (Resource, *yaml.Node) {
	t.Helper()
	r, ok := tmpl.Resource(exportMachineID)
	if !ok || r.Type != "AWS::Serverless::StateMachine" {
		t.Fatalf("no AWS::Serverless::StateMachine %s", exportMachineID)
	}
	def := Get(r.Properties(), "Definition")
	if def == nil || def.Kind != yaml.MappingNode {
		t.Fatalf("%s has no inline Definition mapping", exportMachineID)
	}
	return r, def
}

// TestStateMachine checks the export state machine's definition against the
// step protocol: Plan, a Distributed Map of units whose child executions
// loop Chunk until the unit is done, Commit; Abort and Failed on errors.
func TestStateMachine(t *testing.T) {
	tmpl := load(t)
	r, def := exportMachine(t, tmpl)
	props := r.Properties()
	for key, want := range map[string]string{
		"Type": "STANDARD", // child executions that loop over 15-minute chunks outlive Express's 5 minutes
		"Name": "!Sub ${AWS::StackName}-export",
	} {
		if got := flowOf(Get(props, key)); got != want {
			t.Errorf("%s %s = %s, want %s", exportMachineID, key, got, want)
		}
	}
	// The substitutions are the function's ARN and where the run records
	// are (the bucket and prefix the functions write to), so the definition
	// can be run as it stands with those values.
	const wantSubs = "{ExportFunctionArn: !GetAtt ExportFunction.Arn, ExportBucket: " + bucketExpr + ", ExportPrefix: !Ref ExportPrefix}"
	if got := flowOf(Get(props, "DefinitionSubstitutions")); got != wantSubs {
		t.Errorf("DefinitionSubstitutions = %s, want %s", got, wantSubs)
	}
	subs := Keys(Get(props, "DefinitionSubstitutions"))
	if c, _ := Text(Get(def, "Comment")); c == "" {
		t.Error("the Definition has no Comment")
	}
	if got, _ := Text(Get(def, "StartAt")); got != "Plan" {
		t.Errorf("StartAt = %q, want Plan", got)
	}
	if diff := cmp.Diff([]string{"Plan", "Units", "ReadFailure", "UseRecordedFailure", "Commit", "Abort", "Failed"}, Keys(Get(def, "States"))); diff != "" {
		t.Errorf("top-level states (-want +got):\n%s", diff)
	}

	// Walk the whole definition: no intrinsics (only DefinitionSubstitutions
	// are resolved in it), and no ItemReader, ItemBatcher or ResultWriter,
	// which the local interpreter of the e2e test does not support.
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		n = deref(n)
		if fn, _, ok := Intrinsic(n); ok {
			t.Errorf("%s: intrinsic %s in the Definition: use DefinitionSubstitutions", path, fn)
			return
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if k == "ItemReader" || k == "ItemBatcher" || k == "ResultWriter" {
					t.Errorf("%s.%s: not supported by the local interpreter (and not needed: units come from the plan)", path, k)
				}
				walk(n.Content[i+1], path+"."+k)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.ScalarNode:
			for _, m := range regexp.MustCompile(`\$\{([^}]*)\}`).FindAllStringSubmatch(n.Value, -1) {
				if !slices.Contains(subs, m[1]) {
					t.Errorf("%s: %s is not a DefinitionSubstitution", path, m[0])
				}
			}
		}
	}
	walk(def, "Definition")

	states := aslStates(t, Get(def, "States"), "")
	byName := map[string]aslState{}
	scopes := map[string][]string{} // Map name ("" top level) -> its states
	for _, s := range states {
		if _, dup := byName[s.Name]; dup {
			t.Errorf("state %s is defined twice", s.Name)
		}
		byName[s.Name] = s
		scopes[s.Map] = append(scopes[s.Map], s.Name)
	}
	// Every transition stays in its scope and reaches a state.
	for _, s := range states {
		targets := []*yaml.Node{Get(s.Node, "Next"), Get(s.Node, "Default")}
		for _, c := range seqItems(Get(s.Node, "Catch")) {
			targets = append(targets, Get(c, "Next"))
		}
		for _, c := range seqItems(Get(s.Node, "Choices")) {
			targets = append(targets, Get(c, "Next"))
		}
		for _, n := range targets {
			if n == nil {
				continue
			}
			if to, _ := Text(n); !slices.Contains(scopes[s.Map], to) {
				t.Errorf("state %s goes to %q, which is not a state of its scope %q", s.Name, to, s.Map)
			}
		}
	}
	state := func(name string) *yaml.Node {
		s, ok := byName[name]
		if !ok {
			t.Fatalf("the Definition has no state %s", name)
		}
		return s.Node
	}
	// check compares a field of a state, in YAML flow form.
	check := func(name, path, want string) {
		t.Helper()
		if got := flowOf(Get(state(name), strings.Split(path, ".")...)); got != want {
			t.Errorf("%s %s = %s, want %s", name, path, got, want)
		}
	}

	// Every Task but ReadFailure is the Lambda integration calling the
	// export function, with the recommended service-error retry, and is
	// caught (itself, or through the Map that runs it).
	serviceRetry := "{ErrorEquals: [" + strings.Join(lambdaServiceErrors, ", ") + "], IntervalSeconds: 2, MaxAttempts: 6, BackoffRate: 2}"
	var tasks []string
	for _, s := range states {
		if typ, _ := Text(Get(s.Node, "Type")); typ != "Task" {
			continue
		}
		tasks = append(tasks, s.Name)
		if s.Name == "ReadFailure" {
			continue
		}
		check(s.Name, "Resource", lambdaInvoke)
		check(s.Name, "Parameters.FunctionName", exportFunctionVar)
		retry := seqItems(Get(s.Node, "Retry"))
		if s.Name == "UnitFailed" {
			// One retrier, of the service errors and the crashes: it only records.
			if len(retry) != 1 || !strings.HasPrefix(flow(retry[0]), "{ErrorEquals: ["+strings.Join(lambdaServiceErrors, ", ")) {
				t.Errorf("UnitFailed Retry = %s, want one retrier that starts with the Lambda service errors", flowOf(Get(s.Node, "Retry")))
			}
		} else if len(retry) == 0 || flow(retry[0]) != serviceRetry {
			t.Errorf("%s: the first Retry must be AWS's for Lambda service errors, %s; got %s", s.Name, serviceRetry, flowOf(Get(s.Node, "Retry")))
		}
		for _, rt := range retry {
			for _, e := range list(Get(rt, "ErrorEquals")) {
				if slices.Contains(notRetried, e) {
					t.Errorf("%s retries %s: it must fail the run at once", s.Name, e)
				}
			}
			if flowOf(Get(rt, "ErrorEquals")) == "[Export.Busy]" {
				continue // a wait for another date's run, checked below
			}
			if n, _ := strconv.Atoi(flowOf(Get(rt, "MaxAttempts"))); n < 1 || n > 6 {
				t.Errorf("%s: Retry %s: MaxAttempts must be 1 to 6", s.Name, flow(rt))
			}
		}
		caught := false
		for _, name := range []string{s.Name, s.Map} {
			if name == "" {
				continue
			}
			for _, c := range seqItems(Get(byName[name].Node, "Catch")) {
				if slices.Contains(list(Get(c, "ErrorEquals")), "States.ALL") {
					caught = true
				}
			}
		}
		if !caught {
			t.Errorf("%s has no Catch of States.ALL, neither itself nor its Map", s.Name)
		}
	}
	slices.Sort(tasks)
	if diff := cmp.Diff([]string{"Abort", "Chunk", "Commit", "Plan", "ReadFailure", "UnitFailed"}, tasks); diff != "" {
		t.Errorf("Task states (-want +got):\n%s", diff)
	}

	// A chunk is idempotent: a crashed, timed-out or throttled one is retried,
	// a bounded number of times with backoff. Plan and Commit retry the same way.
	var crashRetry *yaml.Node
	for _, rt := range seqItems(Get(state("Chunk"), "Retry")) {
		errs := list(Get(rt, "ErrorEquals"))
		if slices.Contains(errs, chunkCrashErrors[0]) {
			crashRetry = rt
		}
	}
	if crashRetry == nil {
		t.Fatalf("Chunk does not retry %s", chunkCrashErrors[0])
	}
	for _, e := range append(chunkCrashErrors, "Lambda.TooManyRequestsException", "Export.Retryable") {
		if !slices.Contains(list(Get(crashRetry, "ErrorEquals")), e) {
			t.Errorf("Chunk retry %s does not cover %s", flow(crashRetry), e)
		}
	}
	attempts, _ := strconv.Atoi(flowOf(Get(crashRetry, "MaxAttempts")))
	backoff, _ := strconv.ParseFloat(flowOf(Get(crashRetry, "BackoffRate")), 64)
	interval, _ := strconv.Atoi(flowOf(Get(crashRetry, "IntervalSeconds")))
	if attempts < 1 || attempts > 5 || backoff < 1.5 || interval < 1 {
		t.Errorf("Chunk retry %s: want 1 to 5 attempts, BackoffRate ≥ 1.5, IntervalSeconds ≥ 1", flow(crashRetry))
	}
	// An out-of-memory exit or a panic: once more from the checkpoint (it
	// is likely to recur), then the unit fails under that name.
	if r := seqItems(Get(state("Chunk"), "Retry")); len(r) != 3 || flow(r[2]) != "{ErrorEquals: [Runtime.OutOfMemory, Export.Panic], IntervalSeconds: 5, MaxAttempts: 1}" {
		t.Errorf("Chunk Retry = %s, want a third retrier of [Runtime.OutOfMemory, Export.Panic], once", flowOf(Get(state("Chunk"), "Retry")))
	}
	// Plan, Commit and Abort (issue 22: it runs while the Map's chunks hold
	// Lambda's concurrency) retry the crashes, throttling, out-of-memory
	// exits and panics like a chunk.
	crash := "{ErrorEquals: [Lambda.TooManyRequestsException, Runtime.ExitError, Runtime.OutOfMemory, Sandbox.Timedout, Lambda.Unknown, Export.Retryable, Export.Panic], IntervalSeconds: 5, MaxAttempts: %d, BackoffRate: 2}"
	check("Plan", "Retry", "["+serviceRetry+", "+fmt.Sprintf(crash, 3)+", {ErrorEquals: [Export.Busy], IntervalSeconds: 600, MaxAttempts: 240, BackoffRate: 1, JitterStrategy: FULL}]")
	check("Commit", "Retry", "["+serviceRetry+", "+fmt.Sprintf(crash, 3)+"]")
	check("Abort", "Retry", "["+serviceRetry+", "+fmt.Sprintf(crash, 5)+"]")
	// Export.Busy waits up to about 20 hours (FULL jitter: half the
	// interval on average) for another date's run: within the DateWindow a
	// scheduled date may be late.
	busyWait := 240 * 600 * time.Second / 2
	if busyWait > 24*time.Hour {
		t.Errorf("Plan waits %s on average for Export.Busy, more than the 24h a scheduled date may be late", busyWait)
	}

	// Plan: the execution input is the trigger, and the execution names the
	// run and dates {}; only the plan's ids go on.
	check("Plan", "Parameters.Payload", "{step: plan, trigger.$: $, execution: {id.$: $$.Execution.Id, start_time.$: $$.Execution.StartTime}}")
	check("Plan", "ResultSelector", "{snapshot_date.$: $.Payload.snapshot_date, run_id.$: $.Payload.run_id, units.$: $.Payload.units, workers.$: $.Payload.workers}")
	check("Plan", "ResultPath", "$.plan")
	check("Plan", "Catch", "[{ErrorEquals: [States.ALL], ResultPath: $.error, Next: Failed}]")
	check("Plan", "Next", "Units")

	// Units: a Distributed Map of standard child executions (Express ones
	// stop at 5 minutes), over the plan's unit ids, as many at once as the
	// plan's workers (MaxConcurrency); the iterations' results are dropped.
	check("Units", "Type", "Map")
	check("Units", "ItemProcessor.ProcessorConfig", "{Mode: DISTRIBUTED, ExecutionType: STANDARD}")
	check("Units", "ItemsPath", "$.plan.units")
	check("Units", "MaxConcurrencyPath", "$.plan.workers")
	check("Units", "MaxConcurrency", "<missing>")
	check("Units", "ItemSelector", "{step: unit, snapshot_date.$: $.plan.snapshot_date, run_id.$: $.plan.run_id, unit.$: $$.Map.Item.Value}")
	if rp := Get(state("Units"), "ResultPath"); rp == nil || rp.Tag != "!!null" {
		t.Errorf("Units ResultPath = %s, want null (discard the per-unit results)", flowOf(rp))
	}
	check("Units", "Catch", "[{ErrorEquals: [States.ALL], ResultPath: $.error, Next: ReadFailure}]")
	check("Units", "Next", "Commit")

	// In each child execution: Chunk until the unit reports done.
	check("Units", "ItemProcessor.StartAt", "Chunk")
	// The item's fields only: the loop's $.chunk is not the function's input (its decoding is strict).
	check("Chunk", "Parameters.Payload", "{step: unit, snapshot_date.$: $.snapshot_date, run_id.$: $.run_id, unit.$: $.unit}")
	check("Chunk", "ResultSelector", "{done.$: $.Payload.done}")
	check("Chunk", "ResultPath", "$.chunk")
	check("Chunk", "Next", "UnitDone?")
	check("UnitDone?", "Type", "Choice")
	check("UnitDone?", "Choices", "[{Variable: $.chunk.done, BooleanEquals: true, Next: UnitFinished}]")
	check("UnitDone?", "Default", "Chunk")
	check("UnitFinished", "Type", "Succeed")
	// {} per unit: the Map's collected output stays small (5,000 units: 15 KB).
	if op := Get(state("UnitFinished"), "OutputPath"); op == nil || op.Tag != "!!null" {
		t.Errorf("UnitFinished OutputPath = %s, want null (an empty output per unit)", flowOf(op))
	}
	check("Chunk", "Catch", "[{ErrorEquals: [States.ALL], ResultPath: $.error, Next: UnitFailed}]")
	check("UnitFailed", "Parameters.Payload", "{step: failed, snapshot_date.$: $.snapshot_date, run_id.$: $.run_id, unit.$: $.unit, error.$: $.error}")
	check("UnitFailed", "ResultPath", "null")
	check("UnitFailed", "Catch", "[{ErrorEquals: [States.ALL], ResultPath: null, Next: UnitError}]")
	check("UnitFailed", "Next", "UnitError")
	check("UnitError", "Type", "Fail")
	check("UnitError", "ErrorPath", "$.error.Error")
	for _, name := range []string{"Chunk", "UnitDone?", "UnitFinished", "UnitFailed", "UnitError"} {
		if byName[name].Map != "Units" {
			t.Errorf("%s must be a state of the Units ItemProcessor", name)
		}
	}

	// ReadFailure: the unit's recorded error straight from S3, so that the
	// execution reports it even when Abort cannot run.
	check("ReadFailure", "Resource", "arn:aws:states:::aws-sdk:s3:getObject")
	check("ReadFailure", "Parameters", "{Bucket: ${ExportBucket}, Key.$: States.Format('${ExportPrefix}/_runs/dt={}/{}/failure.json', $.plan.snapshot_date, $.plan.run_id)}")
	check("ReadFailure", "ResultSelector", "{recorded.$: States.StringToJson($.Body)}")
	check("ReadFailure", "Catch", "[{ErrorEquals: [States.ALL], ResultPath: null, Next: Abort}]")
	check("ReadFailure", "Next", "UseRecordedFailure")
	check("UseRecordedFailure", "Parameters", "{Error.$: $.failure.recorded.error, Cause.$: $.failure.recorded.cause}")
	check("UseRecordedFailure", "ResultPath", "$.error")
	check("UseRecordedFailure", "Next", "Abort")

	check("Commit", "Parameters.Payload", "{step: commit, snapshot_date.$: $.plan.snapshot_date, run_id.$: $.plan.run_id}")
	check("Commit", "OutputPath", "$.Payload")
	check("Commit", "Catch", "[{ErrorEquals: [States.ALL], ResultPath: $.error, Next: Abort}]")
	check("Commit", "End", "true")

	check("Abort", "Parameters.Payload", "{step: abort, snapshot_date.$: $.plan.snapshot_date, run_id.$: $.plan.run_id, error.$: $.error}")
	// Abort replaces the caught error with the run's real one (a Distributed Map reports any failed
	// iteration as States.ExceedToleratedFailureThreshold), which Failed then reports.
	check("Abort", "ResultSelector", "{Error.$: $.Payload.error, Cause.$: $.Payload.cause}")
	check("Abort", "ResultPath", "$.error")
	check("Abort", "Catch", "[{ErrorEquals: [States.ALL], ResultPath: $.abortError, Next: Failed}]")
	check("Abort", "Next", "Failed")

	check("Failed", "Type", "Fail")
	check("Failed", "ErrorPath", "$.error.Error")
	check("Failed", "CausePath", "$.error.Cause")

	// Logs: errors only and no execution data (snapshots are personal data),
	// to a log group with the stack's retention; no tracing.
	for key, want := range map[string]string{
		"Logging": "{Level: ERROR, IncludeExecutionData: false, Destinations: [{CloudWatchLogsLogGroup: {LogGroupArn: !GetAtt ExportStateMachineLogGroup.Arn}}]}",
		"Tracing": "{Enabled: false}",
		// Its own role, whose trust policy names the account; TestStateMachineLeastPrivilege checks it.
		"Role":     "!GetAtt " + exportMachineRoleID + ".Arn",
		"Policies": "<missing>",
	} {
		if got := flowOf(Get(props, key)); got != want {
			t.Errorf("%s %s = %s, want %s", exportMachineID, key, got, want)
		}
	}
	lg, ok := tmpl.Resource("ExportStateMachineLogGroup")
	if !ok || lg.Type != "AWS::Logs::LogGroup" {
		t.Fatal("no AWS::Logs::LogGroup ExportStateMachineLogGroup")
	}
	if got := flowOf(Get(lg.Properties(), "RetentionInDays")); got != "!Ref LogRetentionDays" {
		t.Errorf("ExportStateMachineLogGroup RetentionInDays = %s, want !Ref LogRetentionDays", got)
	}
	if name, _ := Text(Get(lg.Properties(), "LogGroupName")); !strings.HasPrefix(name, "/aws/vendedlogs/states/") {
		t.Errorf("ExportStateMachineLogGroup LogGroupName = %q, want it under /aws/vendedlogs/states/ (AWS's advice for Step Functions logs)", name)
	}
}

// TestMaxConcurrency: the MaxConcurrency parameter sets how many unit workers
// run at once; the function reads it as EXPORT_WORKERS (the plan hands it to
// the Map as workers, and the global rate budget is divided by it).
func TestMaxConcurrency(t *testing.T) {
	tmpl := load(t)
	p := tmpl.Parameters()["MaxConcurrency"]
	if p.Type != "Number" || p.Default != "10" {
		t.Errorf("MaxConcurrency = %s default %q, want Number default 10", p.Type, p.Default)
	}
	for key, want := range map[string]string{"MinValue": "1", "MaxValue": "1000"} {
		if got := flowOf(Get(tmpl.Root, "Parameters", "MaxConcurrency", key)); got != want {
			t.Errorf("MaxConcurrency %s = %s, want %s", key, got, want)
		}
	}
	fn, err := tmpl.Function("ExportFunction")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := fn.Env("EXPORT_WORKERS"); !ok || flow(v.Node) != "!Ref MaxConcurrency" || v.Value != "10" {
		t.Errorf("ExportFunction EXPORT_WORKERS = %s (%q, declared %v), want !Ref MaxConcurrency (10 locally)", flowOf(v.Node), v.Value, ok)
	}
	var group []string
	for _, g := range seqItems(Get(tmpl.Root, "Metadata", "AWS::CloudFormation::Interface", "ParameterGroups")) {
		if label, _ := Text(Get(g, "Label", "default")); label == "Export" {
			group = list(Get(g, "Parameters"))
		}
	}
	if !slices.Contains(group, "MaxConcurrency") {
		t.Errorf("MaxConcurrency is not in the Export parameter group %q", group)
	}
}

// exportMachineRoleID is the state machine's role: an AWS::IAM::Role of its
// own, as AWS::Serverless::StateMachine cannot put a condition in the trust
// policy of the role SAM would generate.
const exportMachineRoleID = exportMachineID + "Role"

// exportMachineRole returns the state machine's role as a Function, for
// statements.
func exportMachineRole(t *testing.T, tmpl *Template) Function {
	t.Helper()
	r, ok := tmpl.Resource(exportMachineRoleID)
	if !ok || r.Type != "AWS::IAM::Role" {
		t.Fatalf("no AWS::IAM::Role %s", exportMachineRoleID)
	}
	return Function{LogicalID: r.LogicalID, Node: r.Node}
}

// trustedService checks that an AWS::IAM::Role may be assumed only by one
// service, for this account (aws:SourceAccount, against the confused deputy),
// and returns the trust statement's condition in flow form.
func trustedService(t *testing.T, tmpl *Template, roleID, service string) string {
	t.Helper()
	sts := seqItems(Get(tmpl.Root, "Resources", roleID, "Properties", "AssumeRolePolicyDocument", "Statement"))
	if len(sts) != 1 {
		t.Fatalf("%s: want one trust statement, got %d", roleID, len(sts))
	}
	st := sts[0]
	for key, want := range map[string]string{
		"Effect":    "Allow",
		"Principal": "{Service: " + service + "}",
		"Action":    "sts:AssumeRole",
		"Condition.StringEquals.aws:SourceAccount": "!Ref AWS::AccountId",
	} {
		if got := flowOf(Get(st, strings.Split(key, ".")...)); got != want {
			t.Errorf("%s trust policy %s = %s, want %s", roleID, key, got, want)
		}
	}
	return flowOf(Get(st, "Condition"))
}

// TestStateMachineLeastPrivilege: the state machine's role may invoke only the
// export function, start only its own child executions and describe and stop
// only its own executions, set up its log delivery, and read (not write) the
// run records under <prefix>/_runs/; nothing else. Only Step Functions, for
// this account, may assume it.
func TestStateMachineLeastPrivilege(t *testing.T) {
	tmpl := load(t)
	r, _ := exportMachine(t, tmpl)
	if got := flowOf(Get(r.Properties(), "Role")); got != "!GetAtt "+exportMachineRoleID+".Arn" {
		t.Errorf("%s Role = %s, want !GetAtt %s.Arn", exportMachineID, got, exportMachineRoleID)
	}
	// aws:SourceArn is left out: AWS does not say which ARN the Distributed
	// Map's child executions present.
	if got := trustedService(t, tmpl, exportMachineRoleID, "states.amazonaws.com"); got != "{StringEquals: {aws:SourceAccount: !Ref AWS::AccountId}}" {
		t.Errorf("%s trust Condition = %s, want aws:SourceAccount only", exportMachineRoleID, got)
	}
	name, _ := Text(Get(r.Properties(), "Name"))
	if name != "${AWS::StackName}-export" {
		t.Fatalf("%s Name = %q, want !Sub ${AWS::StackName}-export: the role names the state machine by it", exportMachineID, name)
	}
	// The ARNs are built from the name, not !Ref ExportStateMachine, which
	// would make the role depend on the state machine that depends on it.
	const arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:"
	logDelivery := []string{
		"logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
		"logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
	}
	want := []string{
		"lambda:InvokeFunction on [${ExportFunction.Arn} ${ExportFunction.Arn}:*]",
		// The Distributed Map starts child executions of this state machine...
		"states:StartExecution on [" + arn + "stateMachine:" + name + "]",
		// ...and describes and stops them: execution:<name>/<map run label>:<id>
		// (AWS, "IAM policies for using Distributed Map states").
		"states:DescribeExecution states:StopExecution on [" + arn + "execution:" + name + "/*]",
		// The page's current example also describes the parent's own executions.
		"states:DescribeExecution on [" + arn + "execution:" + name + ":*]",
		// Log delivery; these actions take no resource (AWS, "Using CloudWatch Logs to log execution history").
		strings.Join(logDelivery, " ") + " on [*]",
		// The run's first recorded failure, read with aws-sdk:s3:getObject.
		"s3:GetObject on [arn:${AWS::Partition}:s3:::${Bucket}/${ExportPrefix}/" + snapshot.RunsDir + "/*]",
		// Unconditioned, so a missing failure.json answers 404, not 403 (TestLeastPrivilege).
		"s3:ListBucket on [arn:${AWS::Partition}:s3:::${Bucket}]",
		// With DataKmsKeyArn, its objects are SSE-KMS (under !If HasDataKmsKey, through S3 only).
		"kms:Decrypt on [${DataKmsKeyArn}]",
	}
	var got []string
	for _, st := range statements(t, exportMachineRole(t, tmpl)) {
		s := st.Node
		where := exportMachineRoleID + " statement " + flowOf(Get(s, "Sid"))
		if effect, _ := Text(Get(s, "Effect")); effect != "Allow" {
			t.Errorf("%s: Effect %q, want Allow", where, effect)
		}
		if Get(s, "NotAction") != nil || Get(s, "NotResource") != nil {
			t.Errorf("%s: use Action and Resource only", where)
		}
		acts := list(Get(s, "Action"))
		switch {
		case slices.ContainsFunc(acts, func(a string) bool { return strings.HasPrefix(a, "kms:") }):
			// Only the data key, only when the stack has one, only through S3.
			via := flowOf(Get(s, "Condition"))
			if st.Condition != "HasDataKmsKey" || via != "{StringEquals: {kms:ViaService: !Sub s3.${AWS::Region}.amazonaws.com}}" {
				t.Errorf("%s: %v must be under !If HasDataKmsKey with kms:ViaService s3.${AWS::Region}.amazonaws.com, got %q and %s", where, acts, st.Condition, via)
			}
		case st.Condition != "" || Get(s, "Condition") != nil:
			t.Errorf("%s is under a condition (%q, %s): only the data key's grant depends on parameters", where, st.Condition, flowOf(Get(s, "Condition")))
		}
		if slices.ContainsFunc(acts, func(a string) bool { return strings.HasPrefix(a, "s3:") }) {
			checkBucketVar(t, where, Get(s, "Resource"))
		}
		got = append(got, strings.Join(acts, " ")+" on "+fmt.Sprint(list(Get(s, "Resource"))))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s policy statements (-want +got):\n%s", exportMachineID, diff)
	}

	// Every IAM grant of the stack is in a policy these tests read: the
	// functions' (TestLeastPrivilege), the state machine's role's and the
	// schedule's role's (TestScheduleRole); no role is brought in from
	// elsewhere.
	for _, res := range tmpl.Resources() {
		if strings.HasPrefix(res.Type, "AWS::IAM::") && (res.Type != "AWS::IAM::Role" || (res.LogicalID != exportMachineRoleID && res.LogicalID != scheduleRoleID)) {
			t.Errorf("%s is an %s that no least-privilege test checks: give permissions through a function's Policies", res.LogicalID, res.Type)
		}
		switch res.Type {
		case FunctionType, "AWS::Serverless::StateMachine":
			if Get(res.Properties(), "Role") != nil && res.LogicalID != exportMachineID {
				t.Errorf("%s has a Role: give its permissions as Policies, which the tests check", res.LogicalID)
			}
			if res.LogicalID != "ExportFunction" && res.LogicalID != "VerifyFunction" && res.LogicalID != exportMachineID {
				t.Errorf("%s is a %s that no least-privilege test checks", res.LogicalID, res.Type)
			}
		}
	}
}

// stepEvents are the sample inputs of each step (events/step-*.json), for
// sam local invoke and cmd/invoke.
var stepEvents = map[string]string{"plan": "Plan", "unit": "Chunk", "commit": "Commit", "abort": "Abort", "failed": "UnitFailed"}

// TestStepEvents: events/step-<step>.json is the input the state machine
// gives the function at that step (the Payload's keys, the unit's from the
// Map's ItemSelector), and events/execution-input.json is a manual start.
func TestStepEvents(t *testing.T) {
	tmpl := load(t)
	_, def := exportMachine(t, tmpl)
	states := map[string]*yaml.Node{}
	for _, s := range aslStates(t, Get(def, "States"), "") {
		states[s.Name] = s.Node
	}
	// cmd/invoke moves every YYYY-MM-DD of an event to today (moveDatesTo).
	date := regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}`)
	for step, stateName := range stepEvents {
		file := "step-" + step + ".json"
		var ev map[string]any
		readJSON(t, filepath.Join(eventsDir, file), &ev)
		if ev["step"] != step {
			t.Errorf("%s: step = %v, want %q", file, ev["step"], step)
		}
		payload := Get(states[stateName], "Parameters", "Payload")
		if stateName == "Chunk" { // "Payload.$": "$", the Map's ItemSelector
			payload = Get(states["Units"], "ItemSelector")
		}
		var wantKeys, gotKeys []string
		for _, k := range Keys(payload) {
			wantKeys = append(wantKeys, strings.TrimSuffix(k, ".$"))
		}
		for k := range ev {
			gotKeys = append(gotKeys, k)
		}
		slices.Sort(wantKeys)
		slices.Sort(gotKeys)
		if diff := cmp.Diff(wantKeys, gotKeys); diff != "" {
			t.Errorf("%s keys differ from the %s state's input to the function (-state machine +event):\n%s", file, stateName, diff)
		}
		if d, ok := ev["snapshot_date"].(string); ok && !date.MatchString(d) {
			t.Errorf("%s: snapshot_date %q is not YYYY-MM-DD", file, d)
		}
		if id, ok := ev["run_id"].(string); ok && date.MatchString(id) {
			t.Errorf("%s: run_id %q holds a YYYY-MM-DD, which cmd/invoke would rewrite", file, id)
		}
	}
	var plan map[string]any
	readJSON(t, filepath.Join(eventsDir, "step-plan.json"), &plan)
	if trigger, ok := plan["trigger"].(map[string]any); !ok {
		t.Errorf("step-plan.json trigger = %v, want an object (the execution's input)", plan["trigger"])
	} else if len(trigger) != 0 {
		t.Errorf("step-plan.json trigger = %v, want {} (today's export)", trigger)
	}
	var abort struct {
		Error map[string]string `json:"error"`
	}
	readJSON(t, filepath.Join(eventsDir, "step-abort.json"), &abort)
	if abort.Error["Error"] == "" || len(abort.Error) != 2 || abort.Error["Cause"] == "" {
		t.Errorf("step-abort.json error = %v, want {Error, Cause} as a Catch passes it", abort.Error)
	}
	var in map[string]string
	readJSON(t, filepath.Join(eventsDir, "execution-input.json"), &in)
	if len(in) != 1 || !date.MatchString(in["snapshot_date"]) {
		t.Errorf("execution-input.json = %v, want {\"snapshot_date\": \"YYYY-MM-DD\"}", in)
	}
}

// ------------------------------------------------------------ functions

func TestFunctionsBuildWithMakefile(t *testing.T) {
	tmpl := load(t)
	g := Get(tmpl.Root, "Globals", "Function")
	for key, want := range map[string]string{"Runtime": "provided.al2023", "Handler": "bootstrap", "CodeUri": "."} {
		if got, _ := Text(Get(g, key)); got != want {
			t.Errorf("Globals.Function.%s = %q, want %q", key, got, want)
		}
	}
	if got := flow(Get(g, "Architectures")); got != "[!Ref Architecture]" {
		t.Errorf("Globals.Function.Architectures = %s, want [!Ref Architecture]", got)
	}
	if p := tmpl.Parameters()["Architecture"]; p.Default != "arm64" {
		t.Errorf("Architecture default = %q, want arm64", p.Default)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tmpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range fns {
		if m, _ := Text(Get(fn.Node, "Metadata", "BuildMethod")); m != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod = %q, want makefile", fn.LogicalID, m)
		}
		target := "build-" + fn.LogicalID
		if !regexp.MustCompile(`(?m)^` + target + `:`).Match(makefile) {
			t.Errorf("the Makefile has no %s target, which sam build runs for %s", target, fn.LogicalID)
		}
		if _, ok := functionDirs[fn.LogicalID]; !ok {
			t.Errorf("%s is not in this test's functionDirs", fn.LogicalID)
		}
	}
	exp, err := tmpl.Function("ExportFunction")
	if err != nil {
		t.Fatal(err)
	}
	if exp.Timeout != 900 || exp.MemorySize != 512 {
		t.Errorf("ExportFunction Timeout, MemorySize = %d, %d; want 900, 512", exp.Timeout, exp.MemorySize)
	}
	// Every function has a log group with retention, named as Lambda names it.
	for _, fn := range fns {
		found := false
		for _, lg := range tmpl.ResourcesOfType("AWS::Logs::LogGroup") {
			name, _ := Text(Get(lg.Properties(), "LogGroupName"))
			if name == "/aws/lambda/${"+fn.LogicalID+"}" && Get(lg.Properties(), "RetentionInDays") != nil {
				found = true
			}
		}
		if !found {
			t.Errorf("%s has no AWS::Logs::LogGroup /aws/lambda/${%s} with RetentionInDays", fn.LogicalID, fn.LogicalID)
		}
	}
}

func TestAlarms(t *testing.T) {
	tmpl := load(t)
	var got []string
	for _, a := range tmpl.ResourcesOfType("AWS::CloudWatch::Alarm") {
		p := a.Properties()
		// A single-metric alarm, or each metric of a metric math alarm.
		metrics := []*yaml.Node{p}
		if m := Get(p, "Metrics"); m != nil {
			metrics = nil
			for _, q := range m.Content {
				if stat := Get(q, "MetricStat", "Metric"); stat != nil {
					metrics = append(metrics, stat)
				}
			}
		}
		for _, m := range metrics {
			ns, _ := Text(Get(m, "Namespace"))
			metric, _ := Text(Get(m, "MetricName"))
			dim, _ := Text(Get(m, "Dimensions", "0", "Value"))
			got = append(got, ns+"/"+metric+" "+dim)
		}
		// Every alarm notifies the topic when there is one.
		if got := flowOf(Get(p, "AlarmActions")); got != "!If [HasAlarmEmail, [!Ref AlarmTopic], !Ref AWS::NoValue]" {
			t.Errorf("%s: AlarmActions = %s, want !If [HasAlarmEmail, [!Ref AlarmTopic], !Ref AWS::NoValue]", a.LogicalID, got)
		}
	}
	for _, want := range []string{
		"AWS/Lambda/Errors ${ExportFunction}",
		"AWS/Lambda/Errors ${VerifyFunction}",
		"AWS/SQS/ApproximateNumberOfMessagesVisible ${DeadLetterQueue.QueueName}",
		"AWS/States/ExecutionsFailed ${ExportStateMachine}",
		"AWS/States/ExecutionsTimedOut ${ExportStateMachine}",
		"AWS/States/ExecutionsAborted ${ExportStateMachine}",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no alarm on %s; alarms: %q", want, got)
		}
	}
	// The verifier's EMF metric, without dimensions (pkg/verify).
	if want := verify.EMFNamespace + "/SnapshotValid "; !slices.Contains(got, want) {
		t.Errorf("no alarm on %s; alarms: %q", want, got)
	}
}

// TestExportExecutionsFailedAlarm: one alarm fires on any execution of the
// export state machine that fails, times out or is aborted: the sum of the
// three AWS/States metrics, per execution of this state machine.
func TestExportExecutionsFailedAlarm(t *testing.T) {
	tmpl := load(t)
	a, ok := tmpl.Resource("ExportExecutionsFailedAlarm")
	if !ok || a.Type != "AWS::CloudWatch::Alarm" {
		t.Fatal("no AWS::CloudWatch::Alarm ExportExecutionsFailedAlarm")
	}
	p := a.Properties()
	ids := map[string]string{} // metric name -> Id
	var expr, exprID string
	returned := 0
	for _, m := range Get(p, "Metrics").Content {
		id, _ := Text(Get(m, "Id"))
		if rd, _ := Text(Get(m, "ReturnData")); rd == "true" {
			returned++
		}
		if e := Get(m, "Expression"); e != nil {
			expr, _ = Text(e)
			exprID = id
			continue
		}
		metric := Get(m, "MetricStat", "Metric")
		name, _ := Text(Get(metric, "MetricName"))
		ns, _ := Text(Get(metric, "Namespace"))
		stat, _ := Text(Get(m, "MetricStat", "Stat"))
		if ns != "AWS/States" || stat != "Sum" {
			t.Errorf("metric %s: namespace %q stat %q, want AWS/States Sum", id, ns, stat)
		}
		// CloudWatch matches the whole dimension set: exactly StateMachineArn.
		if got := flowOf(Get(metric, "Dimensions")); got != "[{Name: StateMachineArn, Value: !Ref ExportStateMachine}]" {
			t.Errorf("metric %s dimensions = %s, want [{Name: StateMachineArn, Value: !Ref ExportStateMachine}]", id, got)
		}
		if rd, _ := Text(Get(m, "ReturnData")); rd != "false" {
			t.Errorf("metric %s must have ReturnData false: the alarm evaluates only the sum", id)
		}
		ids[name] = id
	}
	var want []string
	for _, name := range []string{"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"} {
		id, ok := ids[name]
		if !ok {
			t.Errorf("ExportExecutionsFailedAlarm does not watch AWS/States %s", name)
		}
		want = append(want, id)
	}
	if len(ids) != 3 {
		t.Errorf("metrics %v, want exactly ExecutionsFailed, ExecutionsTimedOut, ExecutionsAborted", ids)
	}
	if w := "SUM([" + strings.Join(want, ", ") + "])"; expr != w || returned != 1 {
		t.Errorf("expression %s = %q (%d series returned), want %q as the only series returned", exprID, expr, returned, w)
	}
	for key, want := range map[string]string{
		"Threshold": "1", "ComparisonOperator": "GreaterThanOrEqualToThreshold",
		"TreatMissingData": "notBreaching", "EvaluationPeriods": "1",
	} {
		if got, _ := Text(Get(p, key)); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
}

// statements returns the IAM statements of the inline policies of a function
// (SAM's Policies: a list of policy documents) or of an AWS::IAM::Role
// (Policies: a list of {PolicyName, PolicyDocument}); an !If contributes both
// branches (except AWS::NoValue), tagged with its condition.
type statement struct {
	Condition string // the !If condition that includes it, or ""
	Node      *yaml.Node
}

func statements(t *testing.T, fn Function) []statement {
	t.Helper()
	var out []statement
	policies := Get(fn.Node, "Properties", "Policies")
	if policies == nil || policies.Kind != yaml.SequenceNode {
		t.Fatalf("%s has no Policies list", fn.LogicalID)
	}
	for _, p := range policies.Content {
		if doc := Get(p, "PolicyDocument"); doc != nil {
			p = doc
		}
		if p.Kind != yaml.MappingNode || Get(p, "Statement") == nil {
			t.Errorf("%s: policy %s is not an inline policy document: SAM policy templates and managed policies are broader than needed", fn.LogicalID, flow(p))
			continue
		}
		for _, s := range Get(p, "Statement").Content {
			if name, arg, ok := Intrinsic(s); ok && name == "Fn::If" {
				cond := arg.Content[0].Value
				for _, branch := range arg.Content[1:] {
					if ref, refArg, isRef := Intrinsic(branch); isRef && ref == "Ref" && refArg.Value == "AWS::NoValue" {
						continue
					}
					out = append(out, statement{cond, deref(branch)})
				}
				continue
			}
			out = append(out, statement{"", s})
		}
	}
	return out
}

// roleStatements returns the IAM statements of each role of the stack that
// may reach the data bucket, by the role's logical ID: the functions' roles,
// which SAM generates from their Policies, and the state machine's.
func roleStatements(t *testing.T, tmpl *Template) map[string][]statement {
	t.Helper()
	out := map[string][]statement{}
	for _, id := range []string{"ExportFunction", "VerifyFunction"} {
		fn, err := tmpl.Function(id)
		if err != nil {
			t.Fatal(err)
		}
		out[id+"Role"] = statements(t, fn)
	}
	out[exportMachineRoleID] = statements(t, exportMachineRole(t, tmpl))
	return out
}

func list(n *yaml.Node) []string {
	n = deref(n)
	if n == nil {
		return nil
	}
	if _, _, fn := Intrinsic(n); !fn && n.Kind == yaml.SequenceNode {
		var out []string
		for _, c := range n.Content {
			s, ok := Text(c)
			if !ok {
				s = flow(c)
			}
			out = append(out, s)
		}
		return out
	}
	s, ok := Text(n)
	if !ok {
		s = flow(n)
	}
	return []string{s}
}

func TestLeastPrivilege(t *testing.T) {
	tmpl := load(t)
	const (
		objectARN   = "arn:${AWS::Partition}:s3:::${Bucket}/${ExportPrefix}/*"
		verifiedARN = "arn:${AWS::Partition}:s3:::${Bucket}/${ExportPrefix}/_verified/*"
		bucketARN   = "arn:${AWS::Partition}:s3:::${Bucket}"
	)
	writeActions := []string{"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
	dataKeyActions := map[string][]string{}
	for _, id := range []string{"ExportFunction", "VerifyFunction"} {
		fn, err := tmpl.Function(id)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, st := range statements(t, fn) {
			s := st.Node
			where := id + " statement " + flow(Get(s, "Sid"))
			if effect, _ := Text(Get(s, "Effect")); effect != "Allow" {
				continue
			}
			acts := list(Get(s, "Action"))
			res := list(Get(s, "Resource"))
			if Get(s, "NotAction") != nil || Get(s, "NotResource") != nil {
				t.Errorf("%s uses NotAction/NotResource", where)
			}
			for _, a := range acts {
				actions = append(actions, a)
				if a == "*" || strings.HasSuffix(a, ":*") || strings.Contains(a, "*") {
					t.Errorf("%s allows the wildcard action %s", where, a)
				}
			}
			for _, r := range res {
				if r == "*" || r == "arn:aws:s3:::*" {
					t.Errorf("%s allows Resource %s", where, r)
				}
			}
			for _, a := range acts {
				switch {
				case a == "s3:ListBucket":
					if len(res) != 1 || res[0] != bucketARN {
						t.Errorf("%s: s3:ListBucket on %q, want only %s", where, res, bucketARN)
					}
					checkBucketVar(t, where, Get(s, "Resource"))
					// S3 answers a missing key 404 only to a caller with
					// s3:ListBucket (else 403), and AWS does not document
					// which s3:prefix that check sees: no condition.
					if c := Get(s, "Condition"); c != nil {
						t.Errorf("%s: s3:ListBucket under Condition %s: a GET or HEAD of a missing key could answer 403, not 404 (objstore.ErrNotExist)", where, flow(c))
					}
				case id == "VerifyFunction" && (a == "s3:PutObject" || a == "s3:DeleteObject"):
					// The verifier writes (and replaces) only its markers.
					if len(res) != 1 || res[0] != verifiedARN {
						t.Errorf("%s: the verifier may write only %s, not %q", where, verifiedARN, res)
					}
					checkBucketVar(t, where, Get(s, "Resource"))
				case strings.HasPrefix(a, "s3:"):
					if len(res) != 1 || res[0] != objectARN {
						t.Errorf("%s: %s on %q, want only %s", where, a, res, objectARN)
					}
					checkBucketVar(t, where, Get(s, "Resource"))
				case strings.HasPrefix(a, "secretsmanager:"):
					if a != "secretsmanager:GetSecretValue" || len(res) != 1 || res[0] != "${WorkOSApiKeySecretArn}" {
						t.Errorf("%s: %s on %q, want only secretsmanager:GetSecretValue on !Ref WorkOSApiKeySecretArn", where, a, res)
					}
					if id == "VerifyFunction" && st.Condition != "VerifySamples" {
						t.Errorf("%s: the verifier may read the secret only when sampling (!If VerifySamples)", where)
					}
				case (a == "kms:Decrypt" || a == "kms:GenerateDataKey") && len(res) == 1 && res[0] == "${DataKmsKeyArn}":
					// The data key, through S3 only, when the stack has one;
					// the verifier only reads.
					via, _ := Text(Get(s, "Condition", "StringEquals", "kms:ViaService"))
					if st.Condition != "HasDataKmsKey" || via != "s3.${AWS::Region}.amazonaws.com" {
						t.Errorf("%s: %s on the data key must be under !If HasDataKmsKey with kms:ViaService s3.${AWS::Region}.amazonaws.com", where, a)
					}
					dataKeyActions[id] = append(dataKeyActions[id], a)
				case a == "kms:Decrypt":
					if len(res) != 1 || res[0] != "${WorkOSApiKeySecretKmsKeyArn}" || Get(s, "Condition", "StringEquals", "kms:ViaService") == nil {
						t.Errorf("%s: kms:Decrypt must be limited to the secret's key through Secrets Manager", where)
					}
				default:
					t.Errorf("%s allows %s, which neither function needs", where, a)
				}
			}
		}
		for _, want := range []string{"s3:GetObject", "s3:ListBucket"} {
			if !slices.Contains(actions, want) {
				t.Errorf("%s lacks %s", id, want)
			}
		}
		for _, a := range writeActions {
			if id == "ExportFunction" && !slices.Contains(actions, a) {
				t.Errorf("ExportFunction lacks %s", a)
			}
			if id == "VerifyFunction" && a != "s3:PutObject" && a != "s3:DeleteObject" && slices.Contains(actions, a) {
				t.Errorf("VerifyFunction must not have %s (it writes and replaces only its markers)", a)
			}
		}
	}

	// With DataKmsKeyArn, the export writes (GenerateDataKey) and reads back
	// (Decrypt, for multipart uploads); the verifier reads, and writes its
	// small markers.
	for id, want := range map[string][]string{
		"ExportFunction": {"kms:Decrypt", "kms:GenerateDataKey"},
		"VerifyFunction": {"kms:Decrypt", "kms:GenerateDataKey"},
	} {
		if diff := cmp.Diff(want, dataKeyActions[id]); diff != "" {
			t.Errorf("%s: actions on DataKmsKeyArn (-want +got):\n%s", id, diff)
		}
	}

	// The created bucket refuses plain HTTP and public access.
	bp := Get(tmpl.Root, "Resources", "DataBucketPolicy", "Properties", "PolicyDocument", "Statement")
	tls := false
	for _, s := range bp.Content {
		effect, _ := Text(Get(s, "Effect"))
		secure, _ := Text(Get(s, "Condition", "Bool", "aws:SecureTransport"))
		if effect == "Deny" && secure == "false" {
			tls = true
		}
	}
	if !tls {
		t.Error("DataBucketPolicy has no Deny on aws:SecureTransport false")
	}
	pab := Get(tmpl.Root, "Resources", "DataBucket", "Properties", "PublicAccessBlockConfiguration")
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if v, _ := Text(Get(pab, k)); v != "true" {
			t.Errorf("DataBucket PublicAccessBlockConfiguration.%s = %q, want true", k, v)
		}
	}
	if Get(tmpl.Root, "Resources", "DataBucket", "Properties", "BucketEncryption") == nil {
		t.Error("DataBucket has no BucketEncryption")
	}
	if v, _ := Text(Get(tmpl.Root, "Resources", "DataBucket", "Properties", "NotificationConfiguration", "EventBridgeConfiguration", "EventBridgeEnabled")); v != "true" {
		t.Error("DataBucket does not send events to EventBridge: the verifier would never run")
	}
}

// iamMatch reports whether an IAM Action or Resource pattern (* any run of
// characters, / included; ? any one character) matches s. Both are compared
// as written (IAM compares actions without regard to case).
func iamMatch(pattern, s string) bool {
	re := regexp.QuoteMeta(pattern)
	re = strings.ReplaceAll(re, `\*`, `.*`)
	re = strings.ReplaceAll(re, `\?`, `.`)
	return regexp.MustCompile(`^` + re + `$`).MatchString(s)
}

// decision evaluates fn's inline policies for action on resource, counting
// only the statements that always apply (no !If and no Condition): "Deny"
// when one denies it, else "Allow" when one allows it, else "" (implicit
// deny).
func decision(t *testing.T, fn Function, action, resource string) string {
	t.Helper()
	allowed := false
	for _, st := range statements(t, fn) {
		s := st.Node
		if st.Condition != "" || Get(s, "Condition") != nil {
			continue
		}
		if !slices.ContainsFunc(list(Get(s, "Action")), func(a string) bool { return iamMatch(a, action) }) ||
			!slices.ContainsFunc(list(Get(s, "Resource")), func(r string) bool { return iamMatch(r, resource) }) {
			continue
		}
		switch effect, _ := Text(Get(s, "Effect")); effect {
		case "Deny":
			return "Deny"
		case "Allow":
			allowed = true
		}
	}
	if allowed {
		return "Allow"
	}
	return ""
}

// TestOnlyVerifyWritesItsMarkers: the export may write and delete anything
// under the prefix but verify's markers, verified and rejected, which it
// could otherwise forge or remove: an explicit Deny on _verified/ wins over
// its Allow. The verifier is not denied, and still writes them.
func TestOnlyVerifyWritesItsMarkers(t *testing.T) {
	tmpl := load(t)
	const verifiedARN = "arn:${AWS::Partition}:s3:::${Bucket}/${ExportPrefix}/" + snapshot.VerifiedDir + "/*"
	object := func(key string) string { return "arn:${AWS::Partition}:s3:::${Bucket}/${ExportPrefix}/" + key }
	const date = "2026-11-28"
	markers := []string{snapshot.VerifiedKey(date), snapshot.RejectedKey(date)}
	data := []string{snapshot.ManifestKey(date), snapshot.PartKey(schema.TableDirectoryUsers, date, "run1", 0), snapshot.PlanKey(date, "run1")}

	export, err := tmpl.Function("ExportFunction")
	if err != nil {
		t.Fatal(err)
	}
	deny := false
	for _, st := range statements(t, export) {
		s := st.Node
		if effect, _ := Text(Get(s, "Effect")); effect != "Deny" {
			continue
		}
		where := "ExportFunction statement " + flow(Get(s, "Sid"))
		acts, res := list(Get(s, "Action")), list(Get(s, "Resource"))
		if !slices.Contains(acts, "s3:PutObject") || !slices.Contains(acts, "s3:DeleteObject") {
			continue
		}
		deny = true
		if st.Condition != "" || Get(s, "Condition") != nil {
			t.Errorf("%s: the Deny of the markers must always apply, not under a condition", where)
		}
		if len(res) != 1 || res[0] != verifiedARN {
			t.Errorf("%s: Deny on %q, want only %s", where, res, verifiedARN)
		}
		checkBucketVar(t, where, Get(s, "Resource"))
	}
	if !deny {
		t.Errorf("ExportFunction has no Deny of s3:PutObject and s3:DeleteObject on %s", verifiedARN)
	}
	for _, key := range markers {
		for action, want := range map[string]string{"s3:PutObject": "Deny", "s3:DeleteObject": "Deny", "s3:GetObject": "Allow"} {
			if got := decision(t, export, action, object(key)); got != want {
				t.Errorf("ExportFunction %s on %s: %q, want %q", action, key, got, want)
			}
		}
	}
	// The Deny is narrow: the export still writes and deletes its data.
	for _, key := range data {
		for _, action := range []string{"s3:PutObject", "s3:DeleteObject"} {
			if got := decision(t, export, action, object(key)); got != "Allow" {
				t.Errorf("ExportFunction %s on %s: %q, want Allow", action, key, got)
			}
		}
	}

	verifyFn, err := tmpl.Function("VerifyFunction")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range statements(t, verifyFn) {
		if effect, _ := Text(Get(st.Node, "Effect")); effect == "Deny" {
			for _, key := range markers {
				for _, r := range list(Get(st.Node, "Resource")) {
					if iamMatch(r, object(key)) {
						t.Errorf("VerifyFunction statement %s denies on %s, one of its markers", flow(Get(st.Node, "Sid")), key)
					}
				}
			}
		}
	}
	for _, key := range markers {
		if got := decision(t, verifyFn, "s3:PutObject", object(key)); got != "Allow" {
			t.Errorf("VerifyFunction s3:PutObject on %s: %q, want Allow", key, got)
		}
	}
}

// ------------------------------------------------------------ logging, retention, encryption, Athena

// TestLoggingConfig: both functions log JSON at the stack's application log
// level through Lambda's LoggingConfig (read by lambdacontext.NewLogHandler),
// not through a LOG_LEVEL variable.
func TestLoggingConfig(t *testing.T) {
	tmpl := load(t)
	lc := Get(tmpl.Root, "Globals", "Function", "LoggingConfig")
	for key, want := range map[string]string{"LogFormat": "JSON", "ApplicationLogLevel": "${ApplicationLogLevel}", "SystemLogLevel": "WARN"} {
		if got, _ := Text(Get(lc, key)); got != want {
			t.Errorf("Globals.Function.LoggingConfig.%s = %q, want %q", key, got, want)
		}
	}
	fns, err := tmpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range fns {
		if Get(fn.Node, "Properties", "LoggingConfig") != nil {
			t.Errorf("%s overrides Globals.Function.LoggingConfig", fn.LogicalID)
		}
	}
	if p := tmpl.Parameters()["ApplicationLogLevel"]; p.Default != "INFO" {
		t.Errorf("ApplicationLogLevel default = %q, want INFO", p.Default)
	}
	// The EMF metric lines carry no level, so Lambda files them as INFO: a
	// level above INFO would drop the metrics that the alarms watch.
	allowed := list(Get(tmpl.Root, "Parameters", "ApplicationLogLevel", "AllowedValues"))
	for _, bad := range []string{"WARN", "ERROR", "FATAL"} {
		if slices.Contains(allowed, bad) {
			t.Errorf("ApplicationLogLevel allows %s, which would drop the EMF metric lines (level INFO)", bad)
		}
	}
	if !slices.Contains(allowed, "INFO") || !slices.Contains(allowed, "DEBUG") {
		t.Errorf("ApplicationLogLevel AllowedValues = %q, want INFO and DEBUG among them", allowed)
	}
}

// condition returns the flow form of a condition's definition.
func condition(tmpl *Template, name string) string {
	n := Get(tmpl.Root, "Conditions", name)
	if n == nil {
		return ""
	}
	return flow(n)
}

// TestSnapshotRetention: SnapshotRetentionDays expires the data prefix of the
// created bucket by a lifecycle rule, and 0 leaves the rule out.
func TestSnapshotRetention(t *testing.T) {
	tmpl := load(t)
	p := tmpl.Parameters()["SnapshotRetentionDays"]
	if p.Type != "Number" || p.Default != "400" {
		t.Errorf("SnapshotRetentionDays = %s default %q, want Number default 400", p.Type, p.Default)
	}
	if v, _ := Text(Get(tmpl.Root, "Parameters", "SnapshotRetentionDays", "MinValue")); v != "0" {
		t.Errorf("SnapshotRetentionDays MinValue = %q, want 0 (keep forever)", v)
	}
	if got := condition(tmpl, "ExpireSnapshots"); got != "!Not [!Equals [!Ref SnapshotRetentionDays, 0]]" {
		t.Errorf("condition ExpireSnapshots = %s, want !Not [!Equals [!Ref SnapshotRetentionDays, 0]]", got)
	}
	var rule *yaml.Node
	for _, r := range Get(tmpl.Root, "Resources", "DataBucket", "Properties", "LifecycleConfiguration", "Rules").Content {
		if fn, arg, ok := Intrinsic(r); ok && fn == "Fn::If" && arg.Content[0].Value == "ExpireSnapshots" {
			if no := flow(arg.Content[2]); no != "!Ref AWS::NoValue" {
				t.Errorf("with SnapshotRetentionDays 0 the rule must be absent (AWS::NoValue), got %s", no)
			}
			rule = deref(arg.Content[1])
		}
	}
	if rule == nil {
		t.Fatal("DataBucket has no lifecycle rule under !If ExpireSnapshots")
	}
	// The prefix ends in a slash: "workos/" must not expire "workos-other/".
	for key, want := range map[string]string{"Status": "Enabled", "Prefix": "${ExportPrefix}/", "ExpirationInDays": "${SnapshotRetentionDays}"} {
		if got, _ := Text(Get(rule, key)); got != want {
			t.Errorf("expire-snapshots %s = %q, want %q", key, got, want)
		}
	}
}

// historyActions rewrite a versioned bucket's history: no role of the stack
// may perform them (TestNoStackRoleRewritesHistory).
var historyActions = []string{
	"s3:DeleteObjectVersion", "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration",
	"s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
}

// TestSnapshotVersioning: SnapshotVersioning (Enabled by default) versions the
// created bucket; noncurrent versions expire after
// NoncurrentVersionRetentionDays and expired delete markers go, in the whole
// bucket, whatever SnapshotVersioning says.
func TestSnapshotVersioning(t *testing.T) {
	tmpl := load(t)
	params := tmpl.Parameters()
	if p := params["SnapshotVersioning"]; p.Type != "String" || p.Default != "Enabled" {
		t.Errorf("SnapshotVersioning = %s default %q, want String default Enabled", p.Type, p.Default)
	}
	if got := flowOf(Get(tmpl.Root, "Parameters", "SnapshotVersioning", "AllowedValues")); got != "[Enabled, Disabled]" {
		t.Errorf("SnapshotVersioning AllowedValues = %s, want [Enabled, Disabled]", got)
	}
	if p := params["NoncurrentVersionRetentionDays"]; p.Type != "Number" || p.Default != "30" {
		t.Errorf("NoncurrentVersionRetentionDays = %s default %q, want Number default 30", p.Type, p.Default)
	}
	if v, _ := Text(Get(tmpl.Root, "Parameters", "NoncurrentVersionRetentionDays", "MinValue")); v != "1" {
		t.Errorf("NoncurrentVersionRetentionDays MinValue = %q, want 1", v)
	}
	// The stack does not touch an existing bucket: the operator must be told.
	for _, name := range []string{"SnapshotVersioning", "SnapshotRetentionDays"} {
		if d, _ := Text(Get(tmpl.Root, "Parameters", name, "Description")); !strings.Contains(d, "ExistingBucketName") {
			t.Errorf("%s Description does not tell what to do with ExistingBucketName", name)
		}
	}
	if d, _ := Text(Get(tmpl.Root, "Parameters", "SnapshotRetentionDays", "Description")); !strings.Contains(d, "NoncurrentVersionRetentionDays") {
		t.Error("SnapshotRetentionDays Description does not say that in a versioned bucket expiry keeps the data NoncurrentVersionRetentionDays longer")
	}
	var storage []string
	for _, g := range seqItems(Get(tmpl.Root, "Metadata", "AWS::CloudFormation::Interface", "ParameterGroups")) {
		if label, _ := Text(Get(g, "Label", "default")); label == "Storage" {
			storage = list(Get(g, "Parameters"))
		}
	}
	for _, name := range []string{"SnapshotVersioning", "NoncurrentVersionRetentionDays"} {
		if !slices.Contains(storage, name) {
			t.Errorf("%s is not in the Storage parameter group %q", name, storage)
		}
	}

	if got := condition(tmpl, "VersionSnapshots"); got != "!Equals [!Ref SnapshotVersioning, Enabled]" {
		t.Errorf("condition VersionSnapshots = %s, want !Equals [!Ref SnapshotVersioning, Enabled]", got)
	}
	bucket := Get(tmpl.Root, "Resources", "DataBucket")
	if c, _ := Text(Get(bucket, "Condition")); c != "CreateBucket" {
		t.Errorf("DataBucket Condition = %q, want CreateBucket", c)
	}
	if got := flowOf(Get(bucket, "Properties", "VersioningConfiguration")); got != "!If [VersionSnapshots, {Status: Enabled}, !Ref AWS::NoValue]" {
		t.Errorf("DataBucket VersioningConfiguration = %s, want !If [VersionSnapshots, {Status: Enabled}, !Ref AWS::NoValue]", got)
	}

	// The rules apply to the whole bucket (no Prefix): Athena results and
	// anything else deleted there leave noncurrent versions too.
	rules := map[string]*yaml.Node{}
	for _, r := range seqItems(Get(bucket, "Properties", "LifecycleConfiguration", "Rules")) {
		if _, _, isFn := Intrinsic(r); isFn {
			continue
		}
		id, _ := Text(Get(r, "Id"))
		rules[id] = r
	}
	for id, want := range map[string]string{
		"expire-noncurrent-versions":    "{Id: expire-noncurrent-versions, Status: Enabled, NoncurrentVersionExpiration: {NoncurrentDays: !Ref NoncurrentVersionRetentionDays}}",
		"remove-expired-delete-markers": "{Id: remove-expired-delete-markers, Status: Enabled, ExpiredObjectDeleteMarker: true}",
	} {
		if got := flowOf(rules[id]); got != want {
			t.Errorf("DataBucket lifecycle rule %s = %s, want %s", id, got, want)
		}
	}
}

// TestNoStackRoleRewritesHistory: no role of the stack may delete object
// versions or change the bucket's versioning, lifecycle or policy, neither
// through its own policies nor, for the created bucket, past the bucket
// policy's explicit Deny, so versioning keeps whatever a run deletes.
func TestNoStackRoleRewritesHistory(t *testing.T) {
	tmpl := load(t)
	for role, sts := range roleStatements(t, tmpl) {
		for _, st := range sts {
			if effect, _ := Text(Get(st.Node, "Effect")); effect != "Allow" {
				continue
			}
			for _, pattern := range list(Get(st.Node, "Action")) {
				for _, a := range historyActions {
					if iamMatch(strings.ToLower(pattern), strings.ToLower(a)) {
						t.Errorf("%s statement %s allows %s (as %s)", role, flowOf(Get(st.Node, "Sid")), a, pattern)
					}
				}
			}
		}
	}

	var deny *yaml.Node
	for _, s := range seqItems(Get(tmpl.Root, "Resources", "DataBucketPolicy", "Properties", "PolicyDocument", "Statement")) {
		if sid, _ := Text(Get(s, "Sid")); sid == "DenyHistoryChangesToStackRoles" {
			deny = s
		}
	}
	if deny == nil {
		t.Fatal("DataBucketPolicy has no statement DenyHistoryChangesToStackRoles")
	}
	if effect, _ := Text(Get(deny, "Effect")); effect != "Deny" {
		t.Errorf("DenyHistoryChangesToStackRoles Effect = %q, want Deny", effect)
	}
	if diff := cmp.Diff(historyActions, list(Get(deny, "Action"))); diff != "" {
		t.Errorf("DenyHistoryChangesToStackRoles actions (-want +got):\n%s", diff)
	}
	if got := flowOf(Get(deny, "Resource")); got != "[!GetAtt DataBucket.Arn, !Sub ${DataBucket.Arn}/*]" {
		t.Errorf("DenyHistoryChangesToStackRoles Resource = %s, want the bucket and its objects", got)
	}
	// Every role of the stack, named by aws:PrincipalArn (a Principal of
	// role ARNs would be checked against IAM while the roles are new).
	if got := flowOf(Get(deny, "Principal")); got != "*" {
		t.Errorf("DenyHistoryChangesToStackRoles Principal = %s, want \"*\" with aws:PrincipalArn", got)
	}
	var want []string
	for role := range roleStatements(t, tmpl) {
		want = append(want, "${"+role+".Arn}")
	}
	got := list(Get(deny, "Condition", "ArnEquals", "aws:PrincipalArn"))
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DenyHistoryChangesToStackRoles aws:PrincipalArn (-roles with S3 access +denied):\n%s", diff)
	}
	// The same roles are an output, for the policy of an existing bucket.
	out := Get(tmpl.Root, "Outputs", "DataRoleArns", "Value")
	if fn, arg, ok := Intrinsic(out); !ok || fn != "Fn::Join" || len(arg.Content) != 2 {
		t.Fatalf("output DataRoleArns = %s, want !Join [\",\", [the roles' ARNs]]", flowOf(out))
	} else {
		listed := list(arg.Content[1])
		slices.Sort(listed)
		if diff := cmp.Diff(want, listed); diff != "" {
			t.Errorf("output DataRoleArns (-roles with S3 access +listed):\n%s", diff)
		}
	}
}

// TestDataKmsKey: DataKmsKeyArn, when set, encrypts the created bucket and the
// Athena results with that key (the functions' key grants are checked by
// TestLeastPrivilege).
func TestDataKmsKey(t *testing.T) {
	tmpl := load(t)
	if p := tmpl.Parameters()["DataKmsKeyArn"]; !p.HasDefault || p.Default != "" {
		t.Errorf("DataKmsKeyArn must default to \"\" (SSE-S3), got %q", p.Default)
	}
	if got := condition(tmpl, "HasDataKmsKey"); got != `!Not [!Equals [!Ref DataKmsKeyArn, ]]` {
		t.Errorf("condition HasDataKmsKey = %s", got)
	}
	sse := Get(tmpl.Root, "Resources", "DataBucket", "Properties", "BucketEncryption", "ServerSideEncryptionConfiguration", "0")
	if got := flow(Get(sse, "ServerSideEncryptionByDefault")); got != "!If [HasDataKmsKey, {SSEAlgorithm: aws:kms, KMSMasterKeyID: !Ref DataKmsKeyArn}, {SSEAlgorithm: AES256}]" {
		t.Errorf("bucket encryption = %s", got)
	}
	if v, _ := Text(Get(sse, "BucketKeyEnabled")); v != "true" {
		t.Error("BucketKeyEnabled must be true (one KMS request per object instead of per part)")
	}
	wg := Get(tmpl.Root, "Resources", "AthenaWorkGroup", "Properties", "WorkGroupConfiguration")
	if got := flow(Get(wg, "ResultConfiguration", "EncryptionConfiguration")); got != "!If [HasDataKmsKey, {EncryptionOption: SSE_KMS, KmsKey: !Ref DataKmsKeyArn}, {EncryptionOption: SSE_S3}]" {
		t.Errorf("Athena result encryption = %s", got)
	}
}

// TestBytesScannedCutoff: the workgroup cancels a query past
// BytesScannedCutoffPerQuery bytes; 0 sets no limit.
func TestBytesScannedCutoff(t *testing.T) {
	tmpl := load(t)
	p := tmpl.Parameters()["BytesScannedCutoffPerQuery"]
	n, err := strconv.ParseInt(p.Default, 10, 64)
	if err != nil || n < 10_000_000 || n > 1_000_000_000_000 {
		t.Errorf("BytesScannedCutoffPerQuery default %q: want a number of bytes from Athena's minimum 10000000 to 1 TB", p.Default)
	}
	if got := condition(tmpl, "HasBytesScannedCutoff"); got != "!Not [!Equals [!Ref BytesScannedCutoffPerQuery, 0]]" {
		t.Errorf("condition HasBytesScannedCutoff = %s", got)
	}
	wg := Get(tmpl.Root, "Resources", "AthenaWorkGroup", "Properties", "WorkGroupConfiguration")
	if got := flow(Get(wg, "BytesScannedCutoffPerQuery")); got != "!If [HasBytesScannedCutoff, !Ref BytesScannedCutoffPerQuery, !Ref AWS::NoValue]" {
		t.Errorf("WorkGroupConfiguration.BytesScannedCutoffPerQuery = %s", got)
	}
	if v, _ := Text(Get(wg, "EnforceWorkGroupConfiguration")); v != "true" {
		t.Error("EnforceWorkGroupConfiguration must be true, or a client could lift the cutoff")
	}
}

// TestUserCountDropAlarm: an alarm on a fall of the export's EMF metric
// Rows_directory_users from the previous day, past VerifyMaxDrop, which is
// also the verifier's VERIFY_MAX_DROP.
func TestUserCountDropAlarm(t *testing.T) {
	tmpl := load(t)
	r, ok := tmpl.Resource("UserCountDropAlarm")
	if !ok || r.Type != "AWS::CloudWatch::Alarm" {
		t.Fatal("no AWS::CloudWatch::Alarm UserCountDropAlarm")
	}
	p := r.Properties()
	var stat, expr *yaml.Node
	for _, m := range Get(p, "Metrics").Content {
		if Get(m, "MetricStat") != nil {
			stat = m
		}
		if Get(m, "Expression") != nil {
			expr = m
		}
	}
	if stat == nil || expr == nil {
		t.Fatalf("UserCountDropAlarm needs a MetricStat and an Expression, got %s", flow(Get(p, "Metrics")))
	}
	metric := Get(stat, "MetricStat", "Metric")
	// The export's EMF line (functions/export): namespace DsyncExport, one
	// Rows_<table> per table, dimension Function=export.
	for key, want := range map[string]string{
		"Namespace":          lambdafn.Namespace,
		"MetricName":         "Rows_" + schema.TableDirectoryUsers,
		"Dimensions.0.Name":  "Function",
		"Dimensions.0.Value": "export",
	} {
		if got, _ := Text(Get(metric, strings.Split(key, ".")...)); got != want {
			t.Errorf("metric %s = %q, want %q", key, got, want)
		}
	}
	if n := len(Get(metric, "Dimensions").Content); n != 1 {
		t.Errorf("%d dimensions, want exactly Function (CloudWatch matches the whole dimension set)", n)
	}
	id, _ := Text(Get(stat, "Id"))
	period, _ := Text(Get(stat, "MetricStat", "Period"))
	if period != "86400" {
		t.Errorf("period %s, want one day (one export a day)", period)
	}
	if rd, _ := Text(Get(stat, "ReturnData")); rd != "false" {
		t.Error("the raw metric must have ReturnData false: an alarm evaluates exactly one series")
	}
	// fall = (previous - current) / previous.
	e, _ := Text(Get(expr, "Expression"))
	if want := fmt.Sprintf("-DIFF(%s) / (%s - DIFF(%s))", id, id, id); e != want {
		t.Errorf("expression %q, want %q (the fall relative to the previous day)", e, want)
	}
	for key, want := range map[string]string{
		"Threshold": "${VerifyMaxDrop}", "ComparisonOperator": "GreaterThanThreshold",
		"TreatMissingData": "notBreaching", "EvaluationPeriods": "2", "DatapointsToAlarm": "1",
	} {
		if got, _ := Text(Get(p, key)); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if got := flow(Get(p, "AlarmActions")); got != "!If [HasAlarmEmail, [!Ref AlarmTopic], !Ref AWS::NoValue]" {
		t.Errorf("AlarmActions = %s", got)
	}
	// The same threshold drives the verifier.
	fn, err := tmpl.Function("VerifyFunction")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := fn.Env("VERIFY_MAX_DROP"); v.Value != "0.2" || flow(v.Node) != "!Ref VerifyMaxDrop" {
		t.Errorf("VerifyFunction VERIFY_MAX_DROP = %s (%q), want !Ref VerifyMaxDrop defaulting to 0.2", flow(v.Node), v.Value)
	}
}

// TestEventsQuarantinedAlarm: an alarm on the export's EMF metric
// EventsQuarantined, with the dimension of its other metrics, fires on any
// event quarantined in a day.
func TestEventsQuarantinedAlarm(t *testing.T) {
	tmpl := load(t)
	r, ok := tmpl.Resource("EventsQuarantinedAlarm")
	if !ok || r.Type != "AWS::CloudWatch::Alarm" {
		t.Fatal("no AWS::CloudWatch::Alarm EventsQuarantinedAlarm")
	}
	p := r.Properties()
	for key, want := range map[string]string{
		"Namespace":          lambdafn.Namespace,
		"MetricName":         "EventsQuarantined",
		"Dimensions.0.Name":  "Function",
		"Dimensions.0.Value": "export",
		"Statistic":          "Sum",
		"Period":             "86400",
		"EvaluationPeriods":  "1",
		"Threshold":          "0",
		"ComparisonOperator": "GreaterThanThreshold",
		"TreatMissingData":   "notBreaching",
		"AlarmDescription": "The export quarantined an event of the Events API it could not decode; " +
			"the directories it names were walked in full. See the manifest's events.quarantined.",
	} {
		if got, _ := Text(Get(p, strings.Split(key, ".")...)); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if n := len(Get(p, "Dimensions").Content); n != 1 {
		t.Errorf("%d dimensions, want exactly Function (CloudWatch matches the whole dimension set)", n)
	}
	if got := flow(Get(p, "AlarmActions")); got != "!If [HasAlarmEmail, [!Ref AlarmTopic], !Ref AWS::NoValue]" {
		t.Errorf("AlarmActions = %s", got)
	}
}

// TestNamedQueriesReadCommittedData: every named query reads the data tables
// through their _latest views, or restricts them to a committed run through
// the snapshots table and "$path" (queries over several dates).
func TestNamedQueriesReadCommittedData(t *testing.T) {
	tmpl := load(t)
	tableRef := regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+([a-z_]+)`)
	data := map[string]bool{}
	for _, st := range schema.Tables() {
		data[st.Name] = true
	}
	queries := tmpl.ResourcesOfType("AWS::Athena::NamedQuery")
	if len(queries) < 5 {
		t.Fatalf("%d named queries, want at least 5", len(queries))
	}
	usesSnapshots := false
	for _, q := range queries {
		name, _ := Text(Get(q.Properties(), "Name"))
		sql, _ := Text(Get(q.Properties(), "QueryString"))
		committedJoin := strings.Contains(sql, schema.TableSnapshots) && strings.Contains(sql, `"$path"`) && strings.Contains(sql, "run_id || '-'")
		for _, m := range tableRef.FindAllStringSubmatch(sql, -1) {
			if m[1] == schema.TableSnapshots {
				usesSnapshots = true
			}
			if data[m[1]] && !committedJoin {
				t.Errorf("named query %q reads %s directly, which may include a snapshot still being written: read %s%s, or join the snapshots table and filter \"$path\" by its run_id",
					name, m[1], m[1], schema.LatestViewSuffix)
			}
		}
		if db, _ := Text(Get(q.Properties(), "Database")); db != "${GlueDatabase}" {
			t.Errorf("named query %q: Database = %q, want !Ref GlueDatabase", name, db)
		}
	}
	if !usesSnapshots {
		t.Error("no named query reads the snapshots table")
	}
}

// TestMakefileHelp: a bare make prints the documented targets, and every
// documented name is a real target.
func TestMakefileHelp(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	mk := string(data)
	if !regexp.MustCompile(`(?m)^\.DEFAULT_GOAL := help$`).MatchString(mk) || !regexp.MustCompile(`(?m)^help:`).MatchString(mk) {
		t.Error("the Makefile's default goal must be help: a bare make must not start the tests")
	}
	documented := regexp.MustCompile(`(?m)^## ([A-Za-z0-9_-]+):`).FindAllStringSubmatch(mk, -1)
	var names []string
	for _, m := range documented {
		names = append(names, m[1])
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m[1]) + `:`).MatchString(mk) {
			t.Errorf("## %s: documents a target the Makefile does not define", m[1])
		}
	}
	for _, want := range []string{"help", "test", "lint", "run", "athena-ddl"} {
		if !slices.Contains(names, want) {
			t.Errorf("target %s has no ## %s: line, so make help does not list it", want, want)
		}
	}
	// A target without a recipe or prerequisites does nothing.
	for _, m := range regexp.MustCompile(`(?m)^([A-Za-z0-9_-]+):[ \t]*\n(?:[^\t]|$)`).FindAllStringSubmatch(mk, -1) {
		t.Errorf("target %s has neither prerequisites nor a recipe", m[1])
	}
	if !strings.Contains(mk, "$(GO) tool staticcheck ./...") || !strings.Contains(mk, ".ci/lambda-deps ./functions/export ./functions/verify") {
		t.Error("make lint must run staticcheck (go tool) and the Lambda dependency check")
	}
}
