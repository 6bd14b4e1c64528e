package workostest

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

var idPattern = regexp.MustCompile(`^(org|directory|directory_user|directory_group)_[0-7][0-9A-HJKMNP-TV-Z]{25}$`)

func TestDatasetShapeDirectories(t *testing.T) {
	// 105 = 21 types × 5 states: every combination appears.
	f := startFake(t, Config{Seed: 21, Directories: 110, UsersPerDirectory: 3, GroupsPerDirectory: 2})
	dirs := walkAll[workos.Directory](f, "directories")
	types, states := map[workos.DirectoryType]int{}, map[workos.DirectoryState]int{}
	orgs := map[string]int{}
	noDomain, noMeta := 0, 0
	for i, d := range dirs {
		types[d.Type]++
		states[d.State]++
		orgs[d.OrganizationID]++
		if !idPattern.MatchString(d.ID) || !idPattern.MatchString(d.OrganizationID) || !strings.HasPrefix(d.OrganizationID, "org_") {
			t.Errorf("malformed IDs %s %s", d.ID, d.OrganizationID)
		}
		if i > 0 && (d.ID <= dirs[i-1].ID || !d.CreatedAt.After(dirs[i-1].CreatedAt.Time)) {
			t.Errorf("directory %d not created after %d", i, i-1)
		}
		if d.UpdatedAt.Before(d.CreatedAt.Time) {
			t.Errorf("%s updated before created", d.ID)
		}
		if d.Domain == nil {
			noDomain++
		}
		if d.Metadata == nil {
			noMeta++
		} else if m := d.Metadata; m.Users.Active+m.Users.Inactive != 3 || m.Groups != 2 {
			t.Errorf("%s metadata %+v, want 3 users and 2 groups", d.ID, *m)
		}
		if d.Name == "" || len(d.ExternalKey) != 16 {
			t.Errorf("%s: name %q external_key %q", d.ID, d.Name, d.ExternalKey)
		}
	}
	for _, ty := range workos.DirectoryTypes {
		if types[ty] == 0 {
			t.Errorf("no directory of type %q", ty)
		}
	}
	for _, st := range workos.DirectoryStates {
		if states[st] == 0 {
			t.Errorf("no directory in state %q", st)
		}
	}
	if n := types[unknownDirectoryType]; n == 0 || n > len(dirs)/10 {
		t.Errorf("%d directories of the unknown type, want a few", n)
	}
	if n := states[unknownDirectoryState]; n == 0 || n > len(dirs)/10 {
		t.Errorf("%d directories in the unknown state, want a few", n)
	}
	if noDomain == 0 || noDomain > len(dirs)/2 || noMeta == 0 || noMeta > len(dirs)/2 {
		t.Errorf("%d without domain, %d without metadata: want some, not most", noDomain, noMeta)
	}
	shared := 0
	for _, n := range orgs {
		if n > 1 {
			shared++
		}
	}
	if shared == 0 {
		t.Error("no organization owns several directories")
	}
}

func TestDatasetShapeUsers(t *testing.T) {
	f := startFake(t, Config{Seed: 22, Directories: 1, UsersPerDirectory: 3000, GroupsPerDirectory: 40})
	d := f.Directories()[0]
	users := walkAll[workos.DirectoryUser](f, "directory_users?directory="+d.ID)
	count := map[string]int{}
	jsonTypes := map[string]bool{}
	var active, inactive int64
	for i, u := range users {
		if !idPattern.MatchString(u.ID) || u.DirectoryID != d.ID || u.OrganizationID != d.OrganizationID || u.IdpID == "" {
			t.Fatalf("user %d: bad IDs %+v", i, u)
		}
		if i > 0 && (u.ID <= users[i-1].ID || !u.CreatedAt.After(users[i-1].CreatedAt.Time)) {
			t.Fatalf("user %d not created after %d", i, i-1)
		}
		if u.UpdatedAt.Before(u.CreatedAt.Time) || u.CreatedAt.Before(d.CreatedAt.Time) {
			t.Fatalf("user %d: times out of order", i)
		}
		count["state "+string(u.State)]++
		if u.State == workos.DirectoryUserStateActive {
			active++
		} else {
			inactive++
		}
		if u.Email == nil {
			count["null email"]++
		}
		if u.FirstName != nil && !isASCII(*u.FirstName) {
			count["unicode first name"]++
		}
		if u.LastName == nil {
			count["null last name"]++
		}
		if u.Name != nil && u.FirstName != nil && u.LastName != nil && *u.Name != *u.FirstName+" "+*u.LastName {
			count["family-name-first name"]++
		}
		count["emails "+map[bool]string{true: "empty", false: "present"}[len(u.Emails) == 0]]++
		if u.JobTitle == nil {
			count["null job_title"]++
		}
		if u.Username == nil {
			count["null username"]++
		}
		if u.Role == nil {
			count["no role"]++
		}
		switch {
		case u.Roles == nil:
			count["no roles"]++
		case len(u.Roles) == 0:
			count["empty roles"]++
		case len(u.Roles) > 1:
			count["several roles"]++
		}
		if string(u.RawAttributes) != "{}" {
			count["raw attributes"]++
		}
		var custom map[string]any
		if err := json.Unmarshal(u.CustomAttributes, &custom); err != nil {
			t.Fatalf("custom_attributes %s: %v", u.CustomAttributes, err)
		}
		if len(custom) == 0 {
			jsonTypes["{}"] = true
		}
		for _, v := range custom {
			jsonTypes[jsonType(v)] = true
			if m, ok := v.(map[string]any); ok && len(m) == 0 {
				jsonTypes["nested {}"] = true
			}
			if s, ok := v.(string); ok && !isASCII(s) {
				jsonTypes["unicode"] = true
			}
		}
		if len(u.Groups) != 0 {
			t.Fatal("groups not empty without LegacyGroups")
		}
	}
	n := len(users)
	for _, want := range []struct {
		what     string
		min, max int // per thousand
	}{
		{"state active", 700, 950}, {"state inactive", 30, 200}, {"state suspended", 5, 100},
		{"state " + unknownUserState, 1, 20}, {"null email", 5, 80}, {"unicode first name", 50, 600},
		{"null last name", 5, 100}, {"family-name-first name", 1, 200}, {"emails empty", 50, 400},
		{"emails present", 500, 1000}, {"null job_title", 50, 400}, {"null username", 50, 400},
		{"no role", 50, 300}, {"no roles", 20, 200}, {"empty roles", 20, 200}, {"several roles", 20, 200},
		{"raw attributes", 1, 60},
	} {
		if c := count[want.what] * 1000 / n; c < want.min || c > want.max {
			t.Errorf("%s: %d‰ of users, want %d‰..%d‰", want.what, c, want.min, want.max)
		}
	}
	for _, ty := range []string{"string", "number", "bool", "null", "object", "array", "{}", "nested {}", "unicode"} {
		if !jsonTypes[ty] {
			t.Errorf("custom_attributes never hold %s", ty)
		}
	}
	if m := d.Metadata; m == nil || m.Users.Active != active || m.Users.Inactive != inactive || m.Groups != 40 {
		t.Errorf("metadata %+v, users have %d active %d inactive", d.Metadata, active, inactive)
	}
	groups := walkAll[workos.DirectoryGroup](f, "directory_groups?directory="+d.ID)
	names := map[string]bool{}
	unicode := false
	for _, g := range groups {
		if names[g.Name] {
			t.Errorf("duplicate group name %q", g.Name)
		}
		names[g.Name] = true
		unicode = unicode || !isASCII(g.Name)
		if g.UpdatedAt.Before(g.CreatedAt.Time) || g.IdpID == "" || string(g.RawAttributes) != "{}" {
			t.Errorf("group %+v", g)
		}
	}
	if !unicode || !names["Engineering"] {
		t.Errorf("group names lack Engineering or unicode: %v", names)
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	case []any:
		return "array"
	}
	return "object"
}

func isASCII(s string) bool { return utf8.RuneCountInString(s) == len(s) }

func TestSizes(t *testing.T) {
	f := startFake(t, Config{Directories: 4, UsersPerDirectory: 99, Sizes: func(d int) (int, int) { return d * 10, 3 - d }})
	for i, d := range f.Directories() {
		u, g, _ := f.Counts(d.ID)
		if u != i*10 || g != 3-i {
			t.Errorf("directory %d: %d users %d groups, want %d and %d", i, u, g, i*10, 3-i)
		}
		ids, _, _ := f.page("directory_users?limit=100&directory=" + d.ID)
		if len(ids) != i*10 {
			t.Errorf("directory %d lists %d users", i, len(ids))
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Directories: -1}, "must not be negative"},
		{Config{UsersPerDirectory: -1}, "must not be negative"},
		{Config{Directories: maxDirectories + 1}, "Directories is 10001"},
		{Config{Directories: 1, UsersPerDirectory: maxUsersPerDirectory + 1}, "users"},
		{Config{Directories: 2, Sizes: func(d int) (int, int) { return 1, -d }}, "directory 1 has -1 groups"},
		{Config{Latency: -1}, "Latency"},
		{Config{Faults: Faults{ServerError: 1.5}}, "Faults.ServerError"},
		{Config{Faults: Faults{Reset: -0.1}}, "Faults.Reset"},
		{Config{Faults: Faults{ServerError: 0.6, Truncate: 0.6}}, "add up to"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "workostest: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error mentioning %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := New(Config{}); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}

func TestIDCodec(t *testing.T) {
	c := idCodec{seed: 99}
	for _, tc := range []struct {
		k      kind
		ms     int64
		d, idx uint32
	}{{kindUser, 1700000000123, 0, 0}, {kindGroup, 1, 1<<24 - 1, 1<<32 - 1}, {kindDirectory, 1<<48 - 1, 12345, 0}} {
		id := c.id(tc.k, tc.ms, tc.d, tc.idx)
		ms, d, idx, ok := c.decode(tc.k, id)
		if !ok || ms != tc.ms || d != tc.d || idx != tc.idx {
			t.Errorf("decode(%s) = %d %d %d %v, want %+v", id, ms, d, idx, ok, tc)
		}
		for _, other := range []kind{kindOrg, kindDirectory, kindUser, kindGroup} {
			if _, _, _, ok := c.decode(other, id); ok != (other == tc.k) {
				t.Errorf("decode(%v, %s) ok = %v", other, id, ok)
			}
		}
		if _, _, _, ok := (idCodec{seed: 98}).decode(tc.k, id); ok {
			t.Errorf("%s decodes with another seed", id)
		}
		if _, _, _, ok := c.decode(tc.k, strings.ToLower(id)); ok {
			t.Errorf("lower-case %s decodes", id)
		}
	}
	// Crockford sorting equals numeric sorting, so IDs sort by time.
	a, b := c.id(kindUser, 1000, 5, 5), c.id(kindUser, 1001, 0, 0)
	if !(a < b) || !slices.IsSorted([]string{c.id(kindUser, 31, 0, 0), c.id(kindUser, 32, 0, 0)}) {
		t.Error("IDs do not sort by timestamp")
	}
}

func TestAppendTime(t *testing.T) {
	for _, ms := range []int64{0, 1, 951782400000, 951868799999, 1709164800123, 4102444800000, 253402300799999} {
		checkTime(t, ms)
	}
	for x := range uint64(20000) {
		checkTime(t, int64(mix(x)%253402300799999))
	}
}

func checkTime(t *testing.T, ms int64) {
	t.Helper()
	want := `"` + time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") + `"`
	if got := string(appendTime(nil, ms)); got != want {
		t.Fatalf("appendTime(%d) = %s, want %s", ms, got, want)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `"Quoted" \ Backslash`, "tab\tnew\nline\r\x00\x1f", "Zoë 李 🚨", "bad \xff utf8", "</script>&"} {
		var got string
		if err := json.Unmarshal(appendString(nil, s), &got); err != nil {
			t.Errorf("appendString(%q) is not JSON: %v", s, err)
			continue
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); got != want {
			t.Errorf("appendString(%q) decodes to %q", s, got)
		}
	}
}
