package schema

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// exportedAtMillis is exportedAt as stored: UTC, milliseconds.
var exportedAtMillis = ts("2026-07-01T01:04:05.678Z")

func TestFromDirectoryUser(t *testing.T) {
	got := fixtureUsers(t)
	want := []DirectoryUser{
		{
			ID:               "directory_user_01E1JG7J09H96KYP8HM9B0G5SJ",
			DirectoryID:      "directory_01ECAZ4NV9QMV47GW873HDCX74",
			OrganizationID:   "org_01EZTR6WYX1A0DSE2CYMGXQ24Y",
			IdpID:            "2836",
			Email:            sp("marcelina.davis@example.com"),
			FirstName:        sp("Marcelina"),
			LastName:         sp("Davis"),
			Name:             sp("Marcelina Davis"),
			State:            "active",
			Username:         sp("mdavis"),
			JobTitle:         sp("Software Engineer"),
			Emails:           sp(`[{"primary":true,"type":"work","value":"marcelina.davis@example.com"}]`),
			RoleSlug:         sp("member"),
			Roles:            []string{"member", "admin"},
			CustomAttributes: sp(`{"department":"Engineering","job_title":"Software Engineer"}`),
			RawAttributes:    sp(`{}`),
			CreatedAt:        ts("2026-01-15T12:00:00Z"),
			UpdatedAt:        ts("2026-01-15T12:00:00Z"),
			ExportedAt:       exportedAtMillis,
		},
		{
			// Nulls and absent fields stay NULL; "" stays "".
			ID:             "directory_user_01E1JG7J09H96KYP8HM9B0G5SK",
			DirectoryID:    "directory_01ECAZ4NV9QMV47GW873HDCX74",
			OrganizationID: "org_01EZTR6WYX1A0DSE2CYMGXQ24Y",
			IdpID:          "",
			State:          "inactive",
			CreatedAt:      ts("2023-04-28T20:05:31.093Z"),
			UpdatedAt:      ts("2023-04-28T20:05:31.093Z"), // +02:00 and microseconds dropped
			ExportedAt:     exportedAtMillis,
		},
		{
			ID:             "directory_user_01HZZZZZZZZZZZZZZZZZZZZZZZ",
			DirectoryID:    "directory_01ECAZ4NV9QMV47GW873HDCX75",
			OrganizationID: "org_01EZTR6WYX1A0DSE2CYMGXQ25Z",
			IdpID:          "00u1ab2cd3EF4gh5i6j7",
			Email:          sp("zoë.山田@例え.jp"),
			FirstName:      sp("Zoë"),
			LastName:       sp("山田 👩‍💻"),
			Name:           sp(`Zoë "Zo" O'Brien-山田`),
			State:          "suspended",
			Emails:         sp(`[]`),
			RoleSlug:       sp("admin"),
			Roles:          []string{},
			// Compacted, otherwise byte for byte as received: number
			// spellings, escapes, key order and HTML characters are kept.
			CustomAttributes: sp(`{"department":"R&D <Research>","cost center":4200,"big":12345678901234567890,"tiny":1e-7,` +
				`"nested":{"manager":{"id":"mgr-1","email":null},"tags":["a",1,false,null,{}]},` +
				`"escaped":"caf\u00e9 \u2603 \ud83d\ude00","empty":"","dotted.key":"x","null_value":null}`),
			RawAttributes: sp(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"active":true}`),
			CreatedAt:     ts("2026-03-01T08:30:00.123Z"),
			UpdatedAt:     ts("2026-03-02T08:30:00Z"),
			ExportedAt:    exportedAtMillis,
		},
		{
			ID:               "directory_user_01J00000000000000000000000",
			DirectoryID:      "directory_01ECAZ4NV9QMV47GW873HDCX75",
			OrganizationID:   "org_01EZTR6WYX1A0DSE2CYMGXQ25Z",
			IdpID:            "a@b",
			Email:            sp(""),
			State:            "provisioning", // unknown states are kept verbatim
			CustomAttributes: sp(`{}`),
			RawAttributes:    sp(`{}`),
			CreatedAt:        ts("2026-06-30T23:59:59.999Z"),
			UpdatedAt:        ts("2026-06-30T23:59:59.999Z"),
			ExportedAt:       exportedAtMillis,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromDirectoryUser (-want +got):\n%s", diff)
	}
	for _, r := range got {
		for _, tm := range []time.Time{r.CreatedAt, r.UpdatedAt, r.ExportedAt} {
			if tm.Location() != time.UTC {
				t.Errorf("%s: time %v is not in UTC", r.ID, tm)
			}
		}
	}
}

func TestFromDirectory(t *testing.T) {
	got := fixtureDirectories(t)
	want := []Directory{
		{
			ID:                    "directory_01ECAZ4NV9QMV47GW873HDCX74",
			OrganizationID:        "org_01EHZNVPK3SFK441A1RGBFSHRT",
			ExternalKey:           "sPa12dwRQ",
			Type:                  "gsuite directory",
			State:                 "linked",
			Name:                  "Foo Corp",
			Domain:                sp("foo-corp.com"),
			MetadataUsersActive:   ip(42),
			MetadataUsersInactive: ip(3),
			MetadataGroups:        ip(5),
			CreatedAt:             ts("2026-01-15T12:00:00Z"),
			UpdatedAt:             ts("2026-01-15T12:00:00Z"),
			ExportedAt:            exportedAtMillis,
		},
		{
			ID:             "directory_01ECAZ4NV9QMV47GW873HDCX75",
			OrganizationID: "org_01EZTR6WYX1A0DSE2CYMGXQ25Z",
			ExternalKey:    "Bär-ключ",
			Type:           "new provider v9",
			State:          "invalid_credentials",
			Name:           "Ünïcödé 株式会社",
			CreatedAt:      ts("2024-02-29T00:00:00Z"),
			UpdatedAt:      ts("2024-02-29T01:02:03.004Z"),
			ExportedAt:     exportedAtMillis,
		},
		{
			ID:                    "directory_01ECAZ4NV9QMV47GW873HDCX76",
			OrganizationID:        "org_01EZTR6WYX1A0DSE2CYMGXQ26A",
			ExternalKey:           "",
			Type:                  "okta scim v2.0",
			State:                 "deleting",
			Name:                  "",
			Domain:                sp(""),
			MetadataUsersActive:   ip(0),
			MetadataUsersInactive: ip(0),
			MetadataGroups:        ip(0),
			CreatedAt:             ts("2025-12-31T23:59:59.999Z"),
			UpdatedAt:             ts("2026-01-01T00:00:00Z"),
			ExportedAt:            exportedAtMillis,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromDirectory (-want +got):\n%s", diff)
	}
}

func TestFromDirectoryGroup(t *testing.T) {
	got := fixtureGroups(t)
	want := []DirectoryGroup{
		{
			ID:             "directory_group_01E1JJS84MFPPQ3G655FHTKX6Z",
			IdpID:          "02grqrue4294w24",
			DirectoryID:    "directory_01ECAZ4NV9QMV47GW873HDCX74",
			OrganizationID: "org_01EZTR6WYX1A0DSE2CYMGXQ24Y",
			Name:           "Developers",
			RawAttributes:  sp("{}"),
			CreatedAt:      ts("2026-01-15T12:00:00Z"),
			UpdatedAt:      ts("2026-01-15T12:00:00Z"),
			ExportedAt:     exportedAtMillis,
		},
		{
			ID:             "directory_group_01E1JJS84MFPPQ3G655FHTKX7A",
			IdpID:          "cn=Équipe Ω,ou=groups,dc=example,dc=com",
			DirectoryID:    "directory_01ECAZ4NV9QMV47GW873HDCX75",
			OrganizationID: "org_01EZTR6WYX1A0DSE2CYMGXQ25Z",
			Name:           "Équipe Ω 🚀",
			CreatedAt:      ts("2023-04-28T20:05:31.093Z"),
			UpdatedAt:      ts("2023-04-28T20:05:31Z"),
			ExportedAt:     exportedAtMillis,
		},
		{
			ID:             "directory_group_01E1JJS84MFPPQ3G655FHTKX7B",
			IdpID:          "g-3",
			DirectoryID:    "directory_01ECAZ4NV9QMV47GW873HDCX75",
			OrganizationID: "org_01EZTR6WYX1A0DSE2CYMGXQ25Z",
			Name:           "",
			RawAttributes:  sp(`{"members":["u1","u2"],"displayName":"G 3"}`),
			CreatedAt:      ts("2026-02-01T00:00:00.001Z"),
			UpdatedAt:      ts("2026-02-01T00:00:00.002Z"),
			ExportedAt:     exportedAtMillis,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromDirectoryGroup (-want +got):\n%s", diff)
	}
}

func TestNewMembership(t *testing.T) {
	d := workos.Directory{ID: "directory_1", OrganizationID: "org_1"}
	got := NewMembership(&d, "directory_group_1", "directory_user_1", exportedAt)
	want := DirectoryGroupMembership{
		DirectoryID: "directory_1", OrganizationID: "org_1", GroupID: "directory_group_1",
		UserID: "directory_user_1", ExportedAt: exportedAtMillis,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewMembership (-want +got):\n%s", diff)
	}
}

func TestMappingEdgeCases(t *testing.T) {
	t.Run("zero timestamps become the epoch", func(t *testing.T) {
		got := FromDirectoryGroup(&workos.DirectoryGroup{ID: "directory_group_1"}, time.Time{})
		epoch := time.Unix(0, 0).UTC()
		for _, tm := range []time.Time{got.CreatedAt, got.UpdatedAt, got.ExportedAt} {
			if !tm.Equal(epoch) {
				t.Errorf("zero time mapped to %v, want %v", tm, epoch)
			}
		}
	})
	t.Run("JSON text", func(t *testing.T) {
		for _, tc := range []struct {
			raw  string
			want *string
		}{
			{"", nil},
			{"null", nil},
			{"  null \n", nil},
			{"{}", sp("{}")},
			{"[ ]", sp("[]")},
			{`"just a string"`, sp(`"just a string"`)},
			{"{\n  \"a\" : [ 1 , 2 ],\n  \"b\": \"x y\"\n}", sp(`{"a":[1,2],"b":"x y"}`)},
			{`{"html":"<b>&</b>"}`, sp(`{"html":"<b>&</b>"}`)},
			{"{\"bad\":\"\xff\"}", sp("{\"bad\":\"\uFFFD\"}")},
		} {
			u := workos.DirectoryUser{CustomAttributes: json.RawMessage(tc.raw)}
			got := FromDirectoryUser(&u, exportedAt).CustomAttributes
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("custom_attributes %q (-want +got):\n%s", tc.raw, diff)
			}
		}
	})
	t.Run("emails", func(t *testing.T) {
		u := workos.DirectoryUser{Emails: []workos.DirectoryUserEmail{{Value: sp("a&b@x.io")}, {Primary: new(bool), Type: sp("home")}}}
		got := FromDirectoryUser(&u, exportedAt).Emails
		want := `[{"value":"a&b@x.io"},{"primary":false,"type":"home","value":null}]`
		if got == nil || *got != want {
			t.Errorf("emails = %v, want %s", got, want)
		}
	})
	t.Run("rows do not alias the WorkOS object", func(t *testing.T) {
		u := workos.DirectoryUser{Email: sp("a@x.io")}
		r := FromDirectoryUser(&u, exportedAt)
		*u.Email = "changed"
		if *r.Email != "a@x.io" {
			t.Errorf("row email changed with the source to %q", *r.Email)
		}
	})
}
