package samtemplate

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// GlueTableType is the resource type of a Glue table.
const GlueTableType = "AWS::Glue::Table"

// Column is a Glue column (or partition key) as written in the template.
type Column struct {
	Name    string
	Type    string
	Comment string
}

// GlueTable is an AWS::Glue::Table of the template, with its values in Text
// form (a !Sub is its format string, a !Ref X is "${X}").
type GlueTable struct {
	LogicalID   string
	Name        string
	Description string
	TableType   string
	// Parameters are the table parameters (classification, projection.*,
	// storage.location.template, …).
	Parameters           map[string]string
	PartitionKeys        []Column
	Columns              []Column
	Location             string
	InputFormat          string
	OutputFormat         string
	SerializationLibrary string

	// Node is the table's TableInput mapping.
	Node *yaml.Node
}

// GlueTables returns the template's Glue tables by table name.
func (t *Template) GlueTables() (map[string]GlueTable, error) {
	tables := map[string]GlueTable{}
	for _, r := range t.ResourcesOfType(GlueTableType) {
		in := Get(r.Properties(), "TableInput")
		if in == nil {
			return nil, fmt.Errorf("samtemplate: %s has no TableInput", r.LogicalID)
		}
		g := GlueTable{LogicalID: r.LogicalID, Node: in, Parameters: map[string]string{}}
		var err error
		text := func(n *yaml.Node, what string) string {
			s, ok := Text(n)
			if !ok && err == nil && n != nil {
				err = fmt.Errorf("samtemplate: %s: %s is not a string (line %d)", r.LogicalID, what, n.Line)
			}
			return s
		}
		g.Name = text(Get(in, "Name"), "Name")
		g.Description = text(Get(in, "Description"), "Description")
		g.TableType = text(Get(in, "TableType"), "TableType")
		params := Get(in, "Parameters")
		for _, k := range Keys(params) {
			g.Parameters[k] = text(Get(params, k), "Parameters."+k)
		}
		sd := Get(in, "StorageDescriptor")
		g.Location = text(Get(sd, "Location"), "Location")
		g.InputFormat = text(Get(sd, "InputFormat"), "InputFormat")
		g.OutputFormat = text(Get(sd, "OutputFormat"), "OutputFormat")
		g.SerializationLibrary = text(Get(sd, "SerdeInfo", "SerializationLibrary"), "SerializationLibrary")
		if err != nil {
			return nil, err
		}
		if g.PartitionKeys, err = columns(r.LogicalID, Get(in, "PartitionKeys")); err != nil {
			return nil, err
		}
		if g.Columns, err = columns(r.LogicalID, Get(sd, "Columns")); err != nil {
			return nil, err
		}
		if g.Name == "" {
			return nil, fmt.Errorf("samtemplate: %s has no table name", r.LogicalID)
		}
		if _, dup := tables[g.Name]; dup {
			return nil, fmt.Errorf("samtemplate: two Glue tables are named %s", g.Name)
		}
		tables[g.Name] = g
	}
	return tables, nil
}

func columns(id string, seq *yaml.Node) ([]Column, error) {
	if seq == nil {
		return nil, nil
	}
	if seq.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("samtemplate: %s: columns at line %d are not a list", id, seq.Line)
	}
	cols := make([]Column, 0, len(seq.Content))
	for _, n := range seq.Content {
		var c Column
		var ok [3]bool
		c.Name, ok[0] = Text(Get(n, "Name"))
		c.Type, ok[1] = Text(Get(n, "Type"))
		c.Comment, ok[2] = Text(Get(n, "Comment"))
		if !ok[0] || !ok[1] || (Get(n, "Comment") != nil && !ok[2]) {
			return nil, fmt.Errorf("samtemplate: %s: column at line %d needs a literal Name and Type", id, n.Line)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// PrestoViewText returns the JSON text of a view's ViewOriginalText written
// as Athena stores it, "/* Presto View: <base64 JSON> */", in the template's
// form:
//
//	!Join ["", ["/* Presto View: ", {Fn::Base64: !Sub "<JSON>"}, " */"]]
//
// The JSON is the !Sub format string, its variables unresolved.
func PrestoViewText(n *yaml.Node) (string, error) {
	fn, arg, ok := Intrinsic(n)
	if !ok || fn != "Fn::Join" || arg.Kind != yaml.SequenceNode || len(arg.Content) != 2 {
		return "", fmt.Errorf("samtemplate: ViewOriginalText must be !Join [\"\", [\"/* Presto View: \", {Fn::Base64: !Sub JSON}, \" */\"]]")
	}
	sep, _ := Text(arg.Content[0])
	parts := deref(arg.Content[1])
	if sep != "" || parts.Kind != yaml.SequenceNode || len(parts.Content) != 3 {
		return "", fmt.Errorf("samtemplate: ViewOriginalText at line %d: want !Join with \"\" and three parts", n.Line)
	}
	head, _ := Text(parts.Content[0])
	tail, _ := Text(parts.Content[2])
	if head != "/* Presto View: " || tail != " */" {
		return "", fmt.Errorf("samtemplate: ViewOriginalText at line %d: want the parts \"/* Presto View: \" and \" */\" around the base64 JSON, got %q and %q", n.Line, head, tail)
	}
	b64, b64Arg, ok := Intrinsic(parts.Content[1])
	if !ok || b64 != "Fn::Base64" {
		return "", fmt.Errorf("samtemplate: ViewOriginalText at line %d: the middle part must be Fn::Base64", n.Line)
	}
	if sub, _, isSub := Intrinsic(b64Arg); isSub && sub != "Fn::Sub" {
		return "", fmt.Errorf("samtemplate: ViewOriginalText at line %d: Fn::Base64 of %s, want a !Sub or a literal", n.Line, sub)
	}
	s, ok := Text(b64Arg)
	if !ok {
		return "", fmt.Errorf("samtemplate: ViewOriginalText at line %d: Fn::Base64 needs a !Sub string", n.Line)
	}
	return s, nil
}
