package workos

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTimeLenientForms(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{`"2026-01-15T12:00:00.000Z"`, time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)},
		{`"2026-01-15T12:00:00Z"`, time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)},
		{`"2026-01-15T12:00:00.123456789Z"`, time.Date(2026, 1, 15, 12, 0, 0, 123456789, time.UTC)},
		{`"2023-04-28 20:05:31.093"`, time.Date(2023, 4, 28, 20, 5, 31, 93_000_000, time.UTC)},
		{`"2023-04-28 20:05:31"`, time.Date(2023, 4, 28, 20, 5, 31, 0, time.UTC)},
		{`"2026-01-15T14:00:00+02:00"`, time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)},
		{`"2026-01-15T07:00:00.5-05:00"`, time.Date(2026, 1, 15, 12, 0, 0, 500_000_000, time.UTC)},
		{`"2026-01-15T14:00:00+0200"`, time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)},
		{`"2026-01-15 14:00:00+02:00"`, time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)},
		{`"2026-01-15T12:00:00"`, time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)},
		{`"2026-01-15"`, time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)},
		{`null`, time.Time{}},
		{`""`, time.Time{}},
	}
	for _, tt := range tests {
		var got Time
		if err := json.Unmarshal([]byte(tt.in), &got); err != nil {
			t.Errorf("Unmarshal(%s): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) || (!got.IsZero() && got.Location() != time.UTC) {
			t.Errorf("Unmarshal(%s) = %v, want %v in UTC", tt.in, got.Time, tt.want)
		}
	}
	for _, bad := range []string{`"yesterday"`, `1700000000`, `"2026-13-01T00:00:00Z"`} {
		var got Time
		err := json.Unmarshal([]byte(bad), &got)
		if err == nil || !strings.HasPrefix(err.Error(), "workos: ") {
			t.Errorf("Unmarshal(%s) = %v, want a workos: error", bad, err)
		}
	}
}

func TestTimeMarshalRoundTrip(t *testing.T) {
	in := Time{time.Date(2026, 1, 15, 14, 0, 0, 123_000_000, time.FixedZone("x", 2*3600))}
	b, err := json.Marshal(in)
	if err != nil || string(b) != `"2026-01-15T12:00:00.123Z"` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var back Time
	if err := json.Unmarshal(b, &back); err != nil || !back.Equal(in.Time) {
		t.Errorf("round trip = %v, %v", back, err)
	}
}

// TestNullEmptyAbsent checks that the three states of nullable fields survive
// decoding: null and absent are nil, "" is a pointer to "".
func TestNullEmptyAbsent(t *testing.T) {
	var u DirectoryUser
	body := `{"id":"directory_user_1","email":null,"first_name":"","emails":[],"roles":null,
		"custom_attributes":{"b":1,  "a":[true,null]},"groups":null,"future_field":{"x":1},"state":"brand_new"}`
	if err := json.Unmarshal([]byte(body), &u); err != nil {
		t.Fatal(err)
	}
	want := DirectoryUser{
		ID:               "directory_user_1",
		Email:            nil,
		FirstName:        ptr(""),
		LastName:         nil,
		Emails:           []DirectoryUserEmail{},
		Roles:            nil,
		State:            "brand_new",
		CustomAttributes: json.RawMessage(`{"b":1,  "a":[true,null]}`),
		RawAttributes:    nil,
		Groups:           nil,
	}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("decode mismatch (-want +got):\n%s", diff)
	}
}

// TestFixturesDecodeStrictlyEnough decodes every fixture into its type and
// checks that the known fields are all read (unknown ones are ignored).
func TestFixturesDecode(t *testing.T) {
	decode := map[string]func([]byte) error{
		"directories.json":      func(b []byte) error { return json.Unmarshal(b, new(Page[Directory])) },
		"directory.json":        func(b []byte) error { return json.Unmarshal(b, new(Directory)) },
		"directory_users.json":  func(b []byte) error { return json.Unmarshal(b, new(Page[DirectoryUser])) },
		"directory_user.json":   func(b []byte) error { return json.Unmarshal(b, new(DirectoryUser)) },
		"directory_groups.json": func(b []byte) error { return json.Unmarshal(b, new(Page[DirectoryGroup])) },
		"directory_group.json":  func(b []byte) error { return json.Unmarshal(b, new(DirectoryGroup)) },
		"events.json":           func(b []byte) error { return json.Unmarshal(b, new(Page[Event])) },
	}
	entries, err := testdata.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		f, ok := decode[e.Name()]
		if !ok {
			t.Errorf("fixture %s has no decoder in this test", e.Name())
			continue
		}
		if err := f(fixture(t, e.Name())); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
	}
}
