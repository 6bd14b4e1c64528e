// Command statemachine prints the Amazon States Language definition of a
// state machine of template.yaml as JSON, with its DefinitionSubstitutions
// replaced, for tools that read ASL (make lint-asl runs asl-validator on it).
//
// Usage:
//
//	go run ./cmd/statemachine [--template template.yaml] [--resource ExportStateMachine] [--sub Name=Value ...]
//
// Without --sub, every key of the resource's DefinitionSubstitutions gets a
// placeholder: a made-up ARN or name of the resource it references, in
// us-east-1 of account 123456789012 (for !GetAtt ExportFunction.Arn,
// arn:aws:lambda:us-east-1:123456789012:function:dsync-export-export), or its
// value when it is a literal or a parameter's default. --sub Name=Value sets
// or overrides one; a value that cannot be made up offline (e.g. !Sub of
// ${AWS::Region}) must be given so.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/dsync-export/dsync-export/internal/samtemplate"
)

// The placeholder stack.
const (
	placeholderStack   = "dsync-export"
	placeholderRegion  = "us-east-1"
	placeholderAccount = "123456789012"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// subFlags collects repeated --sub Name=Value flags.
type subFlags map[string]string

func (s subFlags) String() string { return "" }

func (s subFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want Name=Value, got %q", v)
	}
	s[name] = value
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("statemachine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	templatePath := fs.String("template", "template.yaml", "the SAM template")
	resource := fs.String("resource", "ExportStateMachine", "logical ID of the AWS::Serverless::StateMachine")
	subs := subFlags{}
	fs.Var(subs, "sub", "`Name=Value` for ${Name} in the definition (repeatable); overrides the placeholder")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: statemachine [--template template.yaml] [--resource ExportStateMachine] [--sub Name=Value ...]")
		fmt.Fprintln(stderr, "Prints the state machine's definition (ASL JSON) with its DefinitionSubstitutions replaced.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "statemachine: unexpected argument %q: every option is a flag, see --help\n", fs.Arg(0))
		return 2
	}
	def, err := definition(*templatePath, *resource, subs)
	if err != nil {
		fmt.Fprintln(stderr, "statemachine:", err)
		return 1
	}
	if _, err := stdout.Write(def); err != nil {
		fmt.Fprintf(stderr, "statemachine: writing output: %v\n", err)
		return 1
	}
	return 0
}

// definition returns the indented definition, with placeholders for the
// substitutions that subs does not give.
func definition(templatePath, resource string, subs map[string]string) ([]byte, error) {
	t, err := samtemplate.Load(templatePath)
	if err != nil {
		return nil, err
	}
	declared, err := t.StateMachineSubstitutions(resource)
	if err != nil {
		return nil, err
	}
	all := map[string]string{}
	for _, s := range declared {
		if v, ok := subs[s.Name]; ok {
			all[s.Name] = v
			continue
		}
		v, err := placeholder(t, s)
		if err != nil {
			return nil, err
		}
		all[s.Name] = v
	}
	for name, v := range subs {
		all[name] = v
	}
	def, err := t.StateMachineDefinition(resource, all)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, def, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// placeholder is the value a DefinitionSubstitutions entry would have in the
// placeholder stack.
func placeholder(t *samtemplate.Template, s samtemplate.Substitution) (string, error) {
	fn, _, isFn := samtemplate.Intrinsic(s.Value)
	if fn == "Ref" || fn == "Fn::GetAtt" {
		text, _ := samtemplate.Text(s.Value) // ${Logical} or ${Logical.Attribute}
		ref := strings.TrimSuffix(strings.TrimPrefix(text, "${"), "}")
		id, attr, _ := strings.Cut(ref, ".")
		if r, ok := t.Resource(id); ok {
			if v, ok := resourcePlaceholder(r, attr); ok {
				return v, nil
			}
			return "", fmt.Errorf("no placeholder for %s (%s of a %s): pass --sub %s=VALUE", s.Name, text, r.Type, s.Name)
		}
	}
	if v, ok := t.Resolve(s.Value); ok {
		return v, nil
	}
	what := "its value"
	if isFn {
		what = fn
	}
	return "", fmt.Errorf("no placeholder for %s (%s cannot be evaluated offline): pass --sub %s=VALUE", s.Name, what, s.Name)
}

// resourcePlaceholder is a made-up ARN or name of r (attr "" for !Ref) in
// the placeholder stack, named <stack>-<logical ID without its type suffix,
// kebab-case>. (CloudFormation's generated names differ; only the shape
// matters to a validator.)
func resourcePlaceholder(r samtemplate.Resource, attr string) (string, bool) {
	switch r.Type {
	case "AWS::Serverless::Function", "AWS::Lambda::Function":
		name := physicalName(r.LogicalID, "Function")
		if attr == "Arn" {
			return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", placeholderRegion, placeholderAccount, name), true
		}
		if attr == "" {
			return name, true
		}
	case samtemplate.TypeServerlessStateMachine, samtemplate.TypeStepFunctionsMachine:
		arn := fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", placeholderRegion, placeholderAccount, physicalName(r.LogicalID, "StateMachine"))
		if attr == "" || attr == "Arn" {
			return arn, true
		}
	case "AWS::S3::Bucket":
		name := physicalName(r.LogicalID, "Bucket")
		if attr == "Arn" {
			return "arn:aws:s3:::" + name, true
		}
		if attr == "" {
			return name, true
		}
	case "AWS::SNS::Topic":
		if attr == "" || attr == "TopicArn" {
			return fmt.Sprintf("arn:aws:sns:%s:%s:%s", placeholderRegion, placeholderAccount, physicalName(r.LogicalID, "Topic")), true
		}
	}
	return "", false
}

var wordBoundary = regexp.MustCompile(`([a-z0-9])([A-Z])`)

// physicalName is <stack>-<kebab-case logical ID without suffix>:
// ExportFunction -> dsync-export-export.
func physicalName(logicalID, suffix string) string {
	base := logicalID
	if trimmed := strings.TrimSuffix(logicalID, suffix); trimmed != "" {
		base = trimmed
	}
	return placeholderStack + "-" + strings.ToLower(wordBoundary.ReplaceAllString(base, "$1-$2"))
}
