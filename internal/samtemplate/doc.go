// Package samtemplate reads the SAM template (template.yaml) so tests and
// tools can check it against the code: the Glue tables against pkg/schema,
// the declared environment variables against what the functions read, the IAM
// statements against least privilege. It also gives cmd/invoke the function
// settings that sam local invoke would use (timeout, memory, environment).
//
// CloudFormation intrinsics (!Sub, !Ref, !If, !GetAtt, and their Fn:: long
// forms) are kept as YAML nodes; Text gives their string form, Resolve
// evaluates what can be evaluated offline from parameter defaults, and
// Condition and Choose decide conditions and !If the same way.
//
// Usage:
//
//	t, err := samtemplate.Load("template.yaml")
//	tables, err := t.GlueTables()
//	for _, c := range tables["directory_users"].Columns {
//		fmt.Println(c.Name, c.Type)
//	}
//	fn, err := t.Function("ExportFunction") // fn.Timeout, fn.Environment
package samtemplate
