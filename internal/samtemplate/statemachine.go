package samtemplate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// State machine resource types whose Definition is an inline mapping.
const (
	TypeServerlessStateMachine = "AWS::Serverless::StateMachine"
	TypeStepFunctionsMachine   = "AWS::StepFunctions::StateMachine"
)

// Substitution is one entry of a state machine's DefinitionSubstitutions.
type Substitution struct {
	Name string
	// Value is the template's value node (often !GetAtt or !Ref); an !If
	// is replaced by the branch the parameters' defaults choose (Choose).
	Value *yaml.Node
}

// stateMachine returns the state machine resource logicalID.
func (t *Template) stateMachine(logicalID string) (Resource, error) {
	r, ok := t.Resource(logicalID)
	if !ok {
		return Resource{}, fmt.Errorf("samtemplate: %sno resource %s", t.where(), logicalID)
	}
	if r.Type != TypeServerlessStateMachine && r.Type != TypeStepFunctionsMachine {
		return Resource{}, fmt.Errorf("samtemplate: %sresource %s has type %s, not %s", t.where(), logicalID, r.Type, TypeServerlessStateMachine)
	}
	return r, nil
}

func (t *Template) where() string {
	if t.Path == "" {
		return ""
	}
	return t.Path + ": "
}

// StateMachineSubstitutions returns the DefinitionSubstitutions of the state
// machine logicalID, in file order (none if it has none), each !If decided
// from the parameters' defaults where it can be, as sam local would.
func (t *Template) StateMachineSubstitutions(logicalID string) ([]Substitution, error) {
	r, err := t.stateMachine(logicalID)
	if err != nil {
		return nil, err
	}
	subs := Get(r.Properties(), "DefinitionSubstitutions")
	if subs != nil && subs.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("samtemplate: %s%s: DefinitionSubstitutions is not a mapping", t.where(), logicalID)
	}
	var out []Substitution
	for _, name := range Keys(subs) {
		out = append(out, Substitution{Name: name, Value: t.Choose(Get(subs, name))})
	}
	return out, nil
}

var (
	definitionVar = regexp.MustCompile(`\$\{([^}]*)\}`)
	plainKey      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// StateMachineDefinition returns the inline Definition of the state machine
// logicalID (AWS::Serverless::StateMachine or AWS::StepFunctions::StateMachine)
// as JSON, the Amazon States Language document that Step Functions runs. Keys
// keep their order; integers, floats, booleans and nulls stay JSON numbers,
// booleans and nulls. Every ${Name} in a key or string value is replaced by
// subs[Name], as CloudFormation does with DefinitionSubstitutions.
//
// It fails, naming what is wrong, when the resource or its inline Definition
// is missing, when the Definition holds an intrinsic function (!Sub, !Ref, …:
// use DefinitionSubstitutions) or a value JSON cannot hold, and when a ${…}
// is left that subs does not resolve.
func (t *Template) StateMachineDefinition(logicalID string, subs map[string]string) ([]byte, error) {
	r, err := t.stateMachine(logicalID)
	if err != nil {
		return nil, err
	}
	def := Get(r.Properties(), "Definition")
	if def == nil {
		if Get(r.Properties(), "DefinitionUri") != nil {
			return nil, fmt.Errorf("samtemplate: %s%s has a DefinitionUri, not an inline Definition", t.where(), logicalID)
		}
		return nil, fmt.Errorf("samtemplate: %s%s has no Definition property", t.where(), logicalID)
	}
	if _, _, isFn := Intrinsic(def); isFn || def.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("samtemplate: %s%s: Definition (line %d) is not a YAML mapping", t.where(), logicalID, def.Line)
	}
	c := definitionConverter{subs: subs, unresolved: map[string][]string{}}
	var buf bytes.Buffer
	if err := c.write(&buf, def, "$"); err != nil {
		return nil, fmt.Errorf("samtemplate: %s%s: Definition: %w", t.where(), logicalID, err)
	}
	if len(c.unresolved) > 0 {
		names := make([]string, 0, len(c.unresolved))
		for name := range c.unresolved {
			names = append(names, name)
		}
		slices.Sort(names)
		var parts []string
		for _, name := range names {
			parts = append(parts, fmt.Sprintf("${%s} (at %s)", name, strings.Join(c.unresolved[name], ", ")))
		}
		return nil, fmt.Errorf("samtemplate: %s%s: Definition: unresolved substitution %s: give a value for each", t.where(), logicalID, strings.Join(parts, "; "))
	}
	return buf.Bytes(), nil
}

type definitionConverter struct {
	subs map[string]string
	// unresolved maps a ${name} left in the definition to where it is.
	unresolved map[string][]string
}

func (c *definitionConverter) substitute(s, path string) string {
	return definitionVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if v, ok := c.subs[name]; ok {
			return v
		}
		if len(c.unresolved[name]) < 3 {
			c.unresolved[name] = append(c.unresolved[name], path)
		}
		return m
	})
}

func (c *definitionConverter) write(buf *bytes.Buffer, n *yaml.Node, path string) error {
	n = deref(n)
	if fn, _, isFn := Intrinsic(n); isFn {
		return fmt.Errorf("%s (line %d): intrinsic function %s is not evaluated in a Definition: use DefinitionSubstitutions", path, n.Line, fn)
	}
	switch n.Kind {
	case yaml.MappingNode:
		buf.WriteByte('{')
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := deref(n.Content[i])
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return fmt.Errorf("%s (line %d): unsupported mapping key (merge keys and complex keys have no JSON form)", path, k.Line)
			}
			key := c.substitute(k.Value, path)
			if seen[key] {
				return fmt.Errorf("%s (line %d): duplicate key %q", path, k.Line, key)
			}
			seen[key] = true
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSON(buf, key)
			buf.WriteByte(':')
			if err := c.write(buf, n.Content[i+1], childPath(path, key)); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := c.write(buf, item, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		return c.scalar(buf, n, path)
	default:
		return fmt.Errorf("%s (line %d): unsupported YAML node", path, n.Line)
	}
	return nil
}

func (c *definitionConverter) scalar(buf *bytes.Buffer, n *yaml.Node, path string) error {
	switch n.ShortTag() {
	case "!!str":
		writeJSON(buf, c.substitute(n.Value, path))
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return fmt.Errorf("%s (line %d): integer %s: %w", path, n.Line, n.Value, err)
		}
		buf.WriteString(strconv.FormatInt(i, 10))
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return fmt.Errorf("%s (line %d): number %s: %w", path, n.Line, n.Value, err)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("%s (line %d): %s has no JSON form", path, n.Line, n.Value)
		}
		writeJSON(buf, f)
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return fmt.Errorf("%s (line %d): boolean %s: %w", path, n.Line, n.Value, err)
		}
		writeJSON(buf, b)
	case "!!null":
		buf.WriteString("null")
	default:
		return fmt.Errorf("%s (line %d): value %q of type %s has no JSON form", path, n.Line, n.Value, n.ShortTag())
	}
	return nil
}

// childPath is a readable JSONPath-like location for error messages.
func childPath(path, key string) string {
	if plainKey.MatchString(key) {
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func writeJSON(buf *bytes.Buffer, v any) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	// Strings, finite float64s and bools always encode; Encode appends a
	// newline, which goes.
	enc.Encode(v)
	buf.Truncate(buf.Len() - 1)
}
