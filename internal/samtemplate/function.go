package samtemplate

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// FunctionType is the resource type of a SAM function.
const FunctionType = "AWS::Serverless::Function"

// Function is an AWS::Serverless::Function with the template's Globals
// applied to the properties read here.
type Function struct {
	LogicalID string
	// Timeout is the function timeout in seconds (SAM's default is 3).
	Timeout int
	// MemorySize is the memory in MB, resolved from a parameter default when
	// it is a !Ref (SAM's default is 128).
	MemorySize int
	// Environment lists the declared environment variables in order.
	Environment []EnvVar
	// LogFormat and LogLevel are the function's LoggingConfig (LogFormat,
	// ApplicationLogLevel), resolved from parameter defaults; "" when unset.
	// Lambda hands them to the runtime as AWS_LAMBDA_LOG_FORMAT and
	// AWS_LAMBDA_LOG_LEVEL.
	LogFormat, LogLevel string
	// Node is the function's resource mapping.
	Node *yaml.Node
}

// EnvVar is one declared environment variable.
type EnvVar struct {
	Name string
	// Value is the value as sam local would see it without parameter
	// overrides: a literal, or a parameter default (see Template.Resolve).
	Value string
	// Resolved is false when the value depends on something only known at
	// deploy time (a resource, a condition, a parameter without default);
	// Value is then "".
	Resolved bool
	// Node is the value as written.
	Node *yaml.Node
}

// Functions returns the template's SAM functions in file order.
func (t *Template) Functions() ([]Function, error) {
	var out []Function
	for _, r := range t.ResourcesOfType(FunctionType) {
		f, err := t.function(r)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Function returns the SAM function with the given logical ID.
func (t *Template) Function(logicalID string) (Function, error) {
	r, ok := t.Resource(logicalID)
	if !ok || r.Type != FunctionType {
		return Function{}, fmt.Errorf("samtemplate: no %s named %s in the template", FunctionType, logicalID)
	}
	return t.function(r)
}

// FunctionProperty returns a function property, falling back to
// Globals.Function.
func (t *Template) FunctionProperty(f Function, name string) *yaml.Node {
	if n := Get(f.Node, "Properties", name); n != nil {
		return n
	}
	return Get(t.Root, "Globals", "Function", name)
}

func (t *Template) function(r Resource) (Function, error) {
	f := Function{LogicalID: r.LogicalID, Node: r.Node, Timeout: 3, MemorySize: 128}
	number := func(name string, dst *int) error {
		n := t.FunctionProperty(f, name)
		if n == nil {
			return nil
		}
		s, ok := t.Resolve(n)
		if !ok {
			return fmt.Errorf("samtemplate: %s: %s at line %d cannot be resolved offline", r.LogicalID, name, n.Line)
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("samtemplate: %s: %s %q is not a number", r.LogicalID, name, s)
		}
		*dst = v
		return nil
	}
	if err := number("Timeout", &f.Timeout); err != nil {
		return Function{}, err
	}
	if err := number("MemorySize", &f.MemorySize); err != nil {
		return Function{}, err
	}
	if lc := t.FunctionProperty(f, "LoggingConfig"); lc != nil {
		for name, dst := range map[string]*string{"LogFormat": &f.LogFormat, "ApplicationLogLevel": &f.LogLevel} {
			if n := Get(lc, name); n != nil {
				v, ok := t.Resolve(n)
				if !ok {
					return Function{}, fmt.Errorf("samtemplate: %s: LoggingConfig.%s at line %d cannot be resolved offline", r.LogicalID, name, n.Line)
				}
				*dst = v
			}
		}
	}
	seen := map[string]bool{}
	for _, vars := range []*yaml.Node{
		Get(t.Root, "Globals", "Function", "Environment", "Variables"),
		Get(r.Node, "Properties", "Environment", "Variables"),
	} {
		for _, name := range Keys(vars) {
			n := Get(vars, name)
			v, ok := t.Resolve(n)
			ev := EnvVar{Name: name, Value: v, Resolved: ok, Node: n}
			if seen[name] { // the function's own value overrides Globals
				for i := range f.Environment {
					if f.Environment[i].Name == name {
						f.Environment[i] = ev
					}
				}
				continue
			}
			seen[name] = true
			f.Environment = append(f.Environment, ev)
		}
	}
	return f, nil
}

// Env returns the declared variable name, and whether it is declared.
func (f Function) Env(name string) (EnvVar, bool) {
	for _, v := range f.Environment {
		if v.Name == name {
			return v, true
		}
	}
	return EnvVar{}, false
}
