package samtemplate

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template is a parsed SAM/CloudFormation template. Intrinsic functions,
// short (!Sub) or long (Fn::Sub:), are kept unevaluated in the YAML nodes.
type Template struct {
	// Path is the file the template was loaded from ("" for Parse).
	Path string
	// Root is the template's top-level mapping.
	Root *yaml.Node
}

// Load reads and parses the template at path.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %s: %w", path, errors.Unwrap(err))
	}
	t.Path = path
	return t, nil
}

// Parse parses a template.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("samtemplate: %w", errNotMapping)
	}
	return &Template{Root: doc.Content[0]}, nil
}

var errNotMapping = errors.New("the template is not a YAML mapping")

// Get follows a path of mapping keys (or sequence indexes, as decimal
// strings) from n and returns the node found, or nil.
func Get(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		n = deref(n)
		if n == nil {
			return nil
		}
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					next = n.Content[i+1]
					break
				}
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
		default:
			return nil
		}
	}
	return deref(n)
}

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// Keys returns the keys of a mapping node, in order.
func Keys(n *yaml.Node) []string {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	keys := make([]string, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

// Intrinsic reports whether n is an intrinsic function call and returns its
// long name ("Ref", "Fn::Sub", "Fn::If", "Fn::GetAtt", "Condition", …) and its
// argument node. Both !Sub x and {"Fn::Sub": x} are recognised.
func Intrinsic(n *yaml.Node) (name string, arg *yaml.Node, ok bool) {
	n = deref(n)
	if n == nil {
		return "", nil, false
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		fn := strings.TrimPrefix(n.Tag, "!")
		if fn != "Ref" && fn != "Condition" {
			fn = "Fn::" + fn
		}
		arg := *n
		arg.Tag = ""
		switch n.Kind {
		case yaml.ScalarNode:
			arg.Tag = "!!str"
		case yaml.SequenceNode:
			arg.Tag = "!!seq"
		case yaml.MappingNode:
			arg.Tag = "!!map"
		}
		return fn, &arg, true
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		k := n.Content[0].Value
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, deref(n.Content[1]), true
		}
	}
	return "", nil, false
}

// Text returns the string form of a value: a scalar's value; for !Ref X,
// "${X}"; for !GetAtt A.B, "${A.B}"; for !Sub, its format string (with ${!x}
// escapes kept). ok is false for other values (lists, maps, !If, …).
func Text(n *yaml.Node) (s string, ok bool) {
	n = deref(n)
	if n == nil {
		return "", false
	}
	if fn, arg, isFn := Intrinsic(n); isFn {
		switch fn {
		case "Ref":
			return "${" + arg.Value + "}", arg.Kind == yaml.ScalarNode
		case "Fn::GetAtt":
			if arg.Kind == yaml.ScalarNode {
				return "${" + arg.Value + "}", true
			}
			if arg.Kind == yaml.SequenceNode && len(arg.Content) == 2 {
				return "${" + arg.Content[0].Value + "." + arg.Content[1].Value + "}", true
			}
		case "Fn::Sub":
			if arg.Kind == yaml.ScalarNode {
				return arg.Value, true
			}
			if arg.Kind == yaml.SequenceNode && len(arg.Content) == 2 && deref(arg.Content[0]).Kind == yaml.ScalarNode {
				return deref(arg.Content[0]).Value, true
			}
		}
		return "", false
	}
	if n.Kind == yaml.ScalarNode {
		return n.Value, true
	}
	return "", false
}

// SubVariables returns the variable map of a two-argument !Sub [format, {…}],
// or nil.
func SubVariables(n *yaml.Node) map[string]*yaml.Node {
	fn, arg, ok := Intrinsic(n)
	if !ok || fn != "Fn::Sub" || arg.Kind != yaml.SequenceNode || len(arg.Content) != 2 {
		return nil
	}
	m := deref(arg.Content[1])
	if m.Kind != yaml.MappingNode {
		return nil
	}
	vars := make(map[string]*yaml.Node, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		vars[m.Content[i].Value] = deref(m.Content[i+1])
	}
	return vars
}

// Parameter is a template parameter.
type Parameter struct {
	Name       string
	Type       string
	Default    string
	HasDefault bool
}

// Parameters returns the template's parameters by name.
func (t *Template) Parameters() map[string]Parameter {
	params := map[string]Parameter{}
	ps := Get(t.Root, "Parameters")
	for _, name := range Keys(ps) {
		p := Parameter{Name: name}
		p.Type, _ = Text(Get(ps, name, "Type"))
		if d := Get(ps, name, "Default"); d != nil && d.Kind == yaml.ScalarNode {
			p.Default, p.HasDefault = d.Value, true
		}
		params[name] = p
	}
	return params
}

// Resource is one resource of the template.
type Resource struct {
	LogicalID string
	Type      string
	// Node is the resource's mapping (Type, Properties, Metadata, …).
	Node *yaml.Node
}

// Properties returns the resource's Properties mapping, or nil.
func (r Resource) Properties() *yaml.Node { return Get(r.Node, "Properties") }

// Resources returns the template's resources in file order.
func (t *Template) Resources() []Resource {
	rs := Get(t.Root, "Resources")
	var out []Resource
	for _, id := range Keys(rs) {
		n := Get(rs, id)
		typ, _ := Text(Get(n, "Type"))
		out = append(out, Resource{LogicalID: id, Type: typ, Node: n})
	}
	return out
}

// Resource returns the resource with the given logical ID.
func (t *Template) Resource(logicalID string) (Resource, bool) {
	for _, r := range t.Resources() {
		if r.LogicalID == logicalID {
			return r, true
		}
	}
	return Resource{}, false
}

// ResourcesOfType returns the resources of one type, in file order.
func (t *Template) ResourcesOfType(typ string) []Resource {
	var out []Resource
	for _, r := range t.Resources() {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

var subRef = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// Resolve evaluates a value the way sam local does without parameter
// overrides, as far as it can offline: scalars as they are, !Ref to a
// parameter's default, and !Sub of parameter defaults (${!x} becomes ${x}).
// ok is false for anything else: pseudo parameters, resources, !If, !GetAtt.
func (t *Template) Resolve(n *yaml.Node) (s string, ok bool) {
	n = deref(n)
	if n == nil {
		return "", false
	}
	fn, arg, isFn := Intrinsic(n)
	if !isFn {
		if n.Kind == yaml.ScalarNode {
			return n.Value, true
		}
		return "", false
	}
	params := t.Parameters()
	switch fn {
	case "Ref":
		p, found := params[arg.Value]
		if !found || !p.HasDefault {
			return "", false
		}
		return p.Default, true
	case "Fn::Sub":
		format, isText := Text(n)
		if !isText {
			return "", false
		}
		vars := SubVariables(n)
		resolved := true
		out := subRef.ReplaceAllStringFunc(format, func(m string) string {
			name := m[2 : len(m)-1]
			if v, found := vars[name]; found {
				if s, ok := t.Resolve(v); ok {
					return s
				}
			} else if p, found := params[name]; found && p.HasDefault {
				return p.Default
			}
			resolved = false
			return m
		})
		if !resolved {
			return "", false
		}
		return strings.ReplaceAll(out, "${!", "${"), true
	}
	return "", false
}

// Condition evaluates the template's condition name the way sam local does
// without parameter overrides: from the parameters' defaults. ok is false when
// it cannot: an unknown or circular condition, a value Resolve cannot
// evaluate, or a function other than Fn::Equals, Fn::Not, Fn::And, Fn::Or and
// Condition.
func (t *Template) Condition(name string) (value, ok bool) {
	return t.condition(name, map[string]bool{})
}

func (t *Template) condition(name string, seen map[string]bool) (value, ok bool) {
	n := Get(t.Root, "Conditions", name)
	if n == nil || seen[name] {
		return false, false
	}
	seen[name] = true
	defer delete(seen, name)
	return t.evalCondition(n, seen)
}

func (t *Template) evalCondition(n *yaml.Node, seen map[string]bool) (value, ok bool) {
	fn, arg, isFn := Intrinsic(n)
	if !isFn {
		return false, false
	}
	if fn == "Condition" {
		if arg.Kind != yaml.ScalarNode {
			return false, false
		}
		return t.condition(arg.Value, seen)
	}
	if arg.Kind != yaml.SequenceNode {
		return false, false
	}
	args := arg.Content
	switch fn {
	case "Fn::Equals":
		if len(args) != 2 {
			return false, false
		}
		a, okA := t.Resolve(args[0])
		b, okB := t.Resolve(args[1])
		return a == b, okA && okB
	case "Fn::Not":
		if len(args) != 1 {
			return false, false
		}
		v, ok := t.evalCondition(args[0], seen)
		return ok && !v, ok
	case "Fn::And", "Fn::Or":
		if len(args) == 0 {
			return false, false
		}
		and := fn == "Fn::And"
		for _, a := range args {
			v, ok := t.evalCondition(a, seen)
			if !ok {
				return false, false
			}
			if v != and {
				return v, true
			}
		}
		return and, true
	}
	return false, false
}

// Choose returns the branch of an !If (Fn::If) that the parameters' defaults
// select (see Condition), following nested !Ifs, or n itself when it is no
// !If or its condition cannot be decided offline.
func (t *Template) Choose(n *yaml.Node) *yaml.Node {
	for {
		fn, arg, isFn := Intrinsic(n)
		if !isFn || fn != "Fn::If" || arg.Kind != yaml.SequenceNode || len(arg.Content) != 3 {
			return n
		}
		v, ok := t.Condition(deref(arg.Content[0]).Value)
		if !ok {
			return n
		}
		if v {
			n = arg.Content[1]
		} else {
			n = arg.Content[2]
		}
	}
}
