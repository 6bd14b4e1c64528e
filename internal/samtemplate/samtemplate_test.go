package samtemplate

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const small = `
Transform: AWS::Serverless-2016-10-31
Parameters:
  Prefix: {Type: String, Default: exports}
  Size: {Type: Number, Default: 256}
  NoDefault: {Type: String}
Globals:
  Function:
    Timeout: 30
    Environment:
      Variables:
        SHARED: from-globals
        OVERRIDDEN: globals
Resources:
  Bucket:
    Type: AWS::S3::Bucket
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: !Ref Size
      Environment:
        Variables:
          LITERAL: "x"
          EMPTY: ""
          REF: !Ref Prefix
          SUB: !Sub "s3://b/${Prefix}/dt=${!dt}/"
          SUBLIST: !Sub ["${A}/${Prefix}", {A: !Ref Prefix}]
          LONG: {"Fn::Sub": "${Prefix}-long"}
          NODEFAULT: !Ref NoDefault
          PSEUDO: !Sub "${AWS::Region}"
          RESOURCE: !Ref Bucket
          IF: !If [Cond, a, b]
          OVERRIDDEN: function
  Table:
    Type: AWS::Glue::Table
    Properties:
      TableInput:
        Name: t
        Parameters:
          storage.location.template: !Sub
            - "s3://${B}/${Prefix}/t/dt=${!dt}/"
            - B: !GetAtt Bucket.Arn
        PartitionKeys: [{Name: dt, Type: string}]
        StorageDescriptor:
          Location: !Sub "s3://x/${Prefix}/t/"
          Columns:
            - {Name: id, Type: string, Comment: "the ID"}
            - {Name: n, Type: bigint}
`

func TestFunctionEnvironmentResolution(t *testing.T) {
	tmpl, err := Parse([]byte(small))
	if err != nil {
		t.Fatal(err)
	}
	fn, err := tmpl.Function("Fn")
	if err != nil {
		t.Fatal(err)
	}
	if fn.Timeout != 30 || fn.MemorySize != 256 {
		t.Errorf("Timeout, MemorySize = %d, %d; want 30 (Globals), 256 (parameter default)", fn.Timeout, fn.MemorySize)
	}
	type kv struct {
		Name, Value string
		Resolved    bool
	}
	var got []kv
	for _, v := range fn.Environment {
		got = append(got, kv{v.Name, v.Value, v.Resolved})
	}
	want := []kv{
		{"SHARED", "from-globals", true},
		{"OVERRIDDEN", "function", true},
		{"LITERAL", "x", true},
		{"EMPTY", "", true},
		{"REF", "exports", true},
		{"SUB", "s3://b/exports/dt=${dt}/", true},
		{"SUBLIST", "exports/exports", true},
		{"LONG", "exports-long", true},
		{"NODEFAULT", "", false},
		{"PSEUDO", "", false},
		{"RESOURCE", "", false},
		{"IF", "", false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
	if _, ok := fn.Env("MISSING"); ok {
		t.Error("Env(MISSING) found a variable")
	}
	if _, err := tmpl.Function("Bucket"); err == nil || !strings.Contains(err.Error(), "no AWS::Serverless::Function named Bucket") {
		t.Errorf("Function(Bucket) error = %v", err)
	}
}

func TestGlueTablesAndText(t *testing.T) {
	tmpl, err := Parse([]byte(small))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := tmpl.GlueTables()
	if err != nil {
		t.Fatal(err)
	}
	got := tables["t"]
	if got.LogicalID != "Table" {
		t.Fatalf("tables = %v, want table t from resource Table", tables)
	}
	if want := "s3://${B}/${Prefix}/t/dt=${!dt}/"; got.Parameters["storage.location.template"] != want {
		t.Errorf("location template = %q, want %q", got.Parameters["storage.location.template"], want)
	}
	if want := "s3://x/${Prefix}/t/"; got.Location != want {
		t.Errorf("Location = %q, want %q", got.Location, want)
	}
	wantCols := []Column{{Name: "id", Type: "string", Comment: "the ID"}, {Name: "n", Type: "bigint"}}
	if diff := cmp.Diff(wantCols, got.Columns); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Column{{Name: "dt", Type: "string"}}, got.PartitionKeys); diff != "" {
		t.Errorf("partition keys (-want +got):\n%s", diff)
	}
	vars := SubVariables(Get(got.Node, "Parameters", "storage.location.template"))
	if s, _ := Text(vars["B"]); s != "${Bucket.Arn}" {
		t.Errorf("Sub variable B = %q, want ${Bucket.Arn}", s)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"- a\n- b\n", "not a YAML mapping"},
		{"a: [\n", "samtemplate: "},
		{"Resources:\n  T:\n    Type: AWS::Glue::Table\n    Properties: {}\n", "T has no TableInput"},
		{"Resources:\n  T:\n    Type: AWS::Glue::Table\n    Properties:\n      TableInput:\n        Name: t\n        StorageDescriptor:\n          Columns: [{Name: !Ref X}]\n", "needs a literal Name and Type"},
	} {
		tmpl, err := Parse([]byte(tc.doc))
		if err == nil {
			_, err = tmpl.GlueTables()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error = %v, want it to contain %q", tc.doc, err, tc.want)
		}
	}
	if _, err := Load("testdata/does-not-exist.yaml"); err == nil || !strings.HasPrefix(err.Error(), "samtemplate: ") {
		t.Errorf("Load(missing) error = %v", err)
	}
}

const conditions = `
Parameters:
  Existing: {Type: String, Default: ""}
  Days: {Type: Number, Default: 30}
  NoDefault: {Type: String}
Conditions:
  Create: !Equals [!Ref Existing, ""]
  Expire: !Not [!Equals [!Ref Days, 0]]
  Both: !And [!Condition Create, !Condition Expire]
  Either: {"Fn::Or": [{"Fn::Equals": [!Ref Days, 1]}, {"Condition": "Create"}]}
  Neither: !Not [!Or [!Condition Create, !Condition Expire]]
  Unknown: !Equals [!Ref NoDefault, x]
  Pseudo: !Equals [!Ref AWS::Region, us-east-1]
  Loop: !Not [!Condition Loop]
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Condition: Create
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionSubstitutions:
        Name: !If [Create, !Ref Bucket, !Ref Existing]
        Nested: !If [Neither, a, !If [Both, b, c]]
        Undecided: !If [Unknown, a, b]
        Plain: !Ref Days
      Definition: {StartAt: P, States: {P: {Type: Pass, End: true}}}
`

func TestConditionFromDefaults(t *testing.T) {
	tmpl, err := Parse([]byte(conditions))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		value, ok bool
	}{
		{"Create", true, true},
		{"Expire", true, true},
		{"Both", true, true},
		{"Either", true, true},
		{"Neither", false, true},
		{"Unknown", false, false}, // no default
		{"Pseudo", false, false},  // known only at deploy time
		{"Loop", false, false},
		{"Missing", false, false},
	} {
		if v, ok := tmpl.Condition(c.name); v != c.value || ok != c.ok {
			t.Errorf("Condition(%s) = %v, %v; want %v, %v", c.name, v, ok, c.value, c.ok)
		}
	}

	subs, err := tmpl.StateMachineSubstitutions("Machine")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range subs {
		got[s.Name] = flowOf(s.Value)
	}
	want := map[string]string{
		"Name":      "!Ref Bucket", // the branch the defaults choose
		"Nested":    "b",
		"Undecided": "!If [Unknown, a, b]", // kept when the defaults cannot decide
		"Plain":     "!Ref Days",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("substitutions (-want +got):\n%s", diff)
	}
}
