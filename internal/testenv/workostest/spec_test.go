package workostest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"go.yaml.in/yaml/v3"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// testdata/workos-openapi-dsync-subset.yaml is the official WorkOS OpenAPI
// spec (MIT), cut down to Directory Sync. Every response shape of the fake is
// validated against its schemas, made strict for the test: objects may not
// carry properties the spec does not list, and date-time formats are checked.

// specSchemas compiles the named component schemas. Enums that the fake
// deliberately violates (rare unknown values, see TestDatasetShape) are
// dropped, and duplicate required entries removed; everything else is the spec
// verbatim.
func specSchemas(t *testing.T, names ...string) map[string]*jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile("testdata/workos-openapi-dsync-subset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, p := range []string{"Directory.type", "Directory.state", "DirectoryUserWithGroups.state"} {
		name, prop, _ := strings.Cut(p, ".")
		props := schemas[name].(map[string]any)["properties"].(map[string]any)
		delete(props[prop].(map[string]any), "enum")
	}
	var strict func(v any)
	strict = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			// The spec lists "list_metadata" twice in required, which the
			// JSON Schema meta-schema rejects; keep one.
			if req, ok := v["required"].([]any); ok {
				v["required"] = slices.Compact(req)
			}
			if _, ok := v["properties"]; ok {
				if _, ok := v["additionalProperties"]; !ok {
					v["additionalProperties"] = false
				}
			}
			for _, c := range v {
				strict(c)
			}
		case []any:
			for _, c := range v {
				strict(c)
			}
		}
	}
	strict(schemas)
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	if err := c.AddResource("spec.json", bytes.NewReader(js)); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*jsonschema.Schema)
	for _, n := range names {
		s, err := c.Compile("spec.json#/components/schemas/" + n)
		if err != nil {
			t.Fatalf("compile %s: %v", n, err)
		}
		out[n] = s
	}
	return out
}

func validate(t *testing.T, s *jsonschema.Schema, what string, body []byte) {
	t.Helper()
	var v any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: invalid JSON: %v\n%s", what, err, body)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("%s does not match the spec: %#v\nbody: %.2000s", what, err, body)
	}
}

var msTimestamp = regexp.MustCompile(`"(created|updated)_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`)

func TestResponsesMatchSpec(t *testing.T) {
	sch := specSchemas(t, "DirectoryList", "Directory", "DirectoryUserList", "DirectoryUserWithGroups",
		"DirectoryGroupList", "DirectoryGroup")
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			// 24 directories cover every directory type plus the unknown
			// one; with legacy groups, a few suffice.
			n := 24
			if legacy {
				n = 3
			}
			f := startFake(t, Config{Seed: 7, Directories: n, UsersPerDirectory: 40, GroupsPerDirectory: 6, LegacyGroups: legacy})
			check := func(schema, path string) []byte {
				body := f.getOK(path, nil)
				validate(t, sch[schema], path, body)
				for _, m := range regexp.MustCompile(`"(created|updated)_at":"[^"]*"`).FindAll(body, -1) {
					if !msTimestamp.Match(m) {
						t.Errorf("%s: timestamp %s is not ISO 8601 UTC with milliseconds", path, m)
					}
				}
				return body
			}
			var dirs list[workos.Directory]
			if err := json.Unmarshal(check("DirectoryList", "directories?limit=100"), &dirs); err != nil {
				t.Fatal(err)
			}
			if len(dirs.Data) != n {
				t.Fatalf("listed %d directories, want %d", len(dirs.Data), n)
			}
			for _, d := range dirs.Data {
				check("Directory", "directories/"+d.ID)
				users := walkAll[idOnly](f, "directory_users?directory="+d.ID)
				check("DirectoryUserList", "directory_users?limit=100&directory="+d.ID)
				for _, u := range users[:3] {
					check("DirectoryUserWithGroups", "directory_users/"+u.ID)
				}
				groups := walkAll[idOnly](f, "directory_groups?directory="+d.ID)
				check("DirectoryGroupList", "directory_groups?limit=100&directory="+d.ID)
				check("DirectoryGroup", "directory_groups/"+groups[0].ID)
				check("DirectoryUserList", "directory_users?group="+groups[0].ID)
				check("DirectoryGroupList", "directory_groups?user="+users[0].ID)
			}
			// Empty lists are envelopes too.
			check("DirectoryList", "directories?organization_id=org_01HXYZ123456789ABCDEFGHJKM")
		})
	}
}

// TestSpecParameters checks the fake's assumptions about the request side of
// the spec, which the Node, Go and Python SDKs are generated from: the paths,
// the query parameter names and the pagination bounds. (The fake answers the
// search, domain, idp_id and email filters with 422: no test uses them.)
func TestSpecParameters(t *testing.T) {
	raw, err := os.ReadFile("testdata/workos-openapi-dsync-subset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name   string         `yaml:"name"`
				In     string         `yaml:"in"`
				Schema map[string]any `yaml:"schema"`
			} `yaml:"parameters"`
			Responses map[string]any `yaml:"responses"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"GET /directories":           {"before", "after", "limit", "order", "organization_id", "search", "domain"},
		"GET /directories/{id}":      {"id"},
		"DELETE /directories/{id}":   {"id"},
		"GET /directory_users":       {"before", "after", "limit", "order", "directory", "group", "idp_id", "email"},
		"GET /directory_users/{id}":  {"id"},
		"GET /directory_groups":      {"before", "after", "limit", "order", "directory", "user"},
		"GET /directory_groups/{id}": {"id"},
		"GET /events":                {"before", "after", "limit", "order", "events", "range_start", "range_end", "organization_id"},
	}
	for ep, params := range want {
		method, path, _ := strings.Cut(ep, " ")
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("spec has no %s", ep)
			continue
		}
		var got []string
		for _, p := range op.Parameters {
			got = append(got, p.Name)
			if p.Name == "limit" && (p.Schema["minimum"] != 1 || p.Schema["maximum"] != 100 || p.Schema["default"] != 10) {
				t.Errorf("%s limit schema %v, the fake assumes 1..100 default 10", ep, p.Schema)
			}
		}
		if !slices.Equal(got, params) {
			t.Errorf("%s parameters = %v, the fake knows %v", ep, got, params)
		}
		if match(method, strings.ReplaceAll(path, "{id}", "x")).handler == nil {
			t.Errorf("the fake does not route %s", ep)
		}
	}
	if _, ok := doc.Paths["/directories/{id}"]["delete"].Responses["202"]; !ok {
		t.Error("spec DELETE /directories/{id} has no 202 response; the fake answers 202")
	}
}
