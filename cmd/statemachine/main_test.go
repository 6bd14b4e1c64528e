package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestRunPlaceholders(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--template", "testdata/template.yaml"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var def struct {
		States struct {
			Work struct {
				Parameters struct {
					FunctionName string
					Payload      map[string]any
				}
			}
		}
	}
	if err := json.Unmarshal(out.Bytes(), &def); err != nil {
		t.Fatalf("output %s: %v", out.String(), err)
	}
	p := def.States.Work.Parameters
	if p.FunctionName != "arn:aws:lambda:us-east-1:123456789012:function:dsync-export-export" {
		t.Errorf("FunctionName = %q", p.FunctionName)
	}
	if p.Payload["bucket"] != "dsync-export-data" || p.Payload["prefix"] != "exports" || p.Payload["n"] != 3.0 {
		t.Errorf("Payload = %v, want the bucket's placeholder name, the parameter's default and the number 3", p.Payload)
	}
	if !strings.HasPrefix(out.String(), "{\n  \"StartAt\": \"Work\",") || !strings.HasSuffix(out.String(), "}\n") {
		t.Errorf("output is not indented JSON in the template's key order:\n%s", out.String())
	}
}

func TestRunSubs(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"--template", "testdata/template.yaml", "--sub", "ExportFunctionArn=fn", "--sub", "Prefix=p=q"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `"FunctionName": "fn"`) || !strings.Contains(out.String(), `"prefix": "p=q"`) {
		t.Errorf("--sub not applied:\n%s", out.String())
	}

	// A substitution that cannot be evaluated offline needs --sub.
	out.Reset()
	errOut.Reset()
	if code := run([]string{"--template", "testdata/template.yaml", "--resource", "Opaque"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "no placeholder for Region (Fn::Sub cannot be evaluated offline): pass --sub Region=VALUE") {
		t.Errorf("exit %d, stderr %q: want a request for --sub Region=VALUE", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"--template", "testdata/template.yaml", "--resource", "Opaque", "--sub", "Region=eu-west-1"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), `"Result": "eu-west-1"`) {
		t.Errorf("exit %d, output %s, stderr %s", code, out.String(), errOut.String())
	}
}

func TestRunErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--template", "testdata/template.yaml", "--resource", "Missing"}, 1, "no resource Missing"},
		{[]string{"--template", "testdata/nope.yaml"}, 1, "nope.yaml"},
		{[]string{"--sub", "novalue"}, 2, "want Name=Value"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String(), tc.want) || out.Len() != 0 {
			t.Errorf("run(%q) = %d, stderr %q, stdout %q; want %d and %q", tc.args, code, errOut.String(), out.String(), tc.code, tc.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"--help"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "Usage: statemachine") {
		t.Errorf("--help: %d, %q", code, errOut.String())
	}
}
