package workostest

import (
	"context"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// walkCounts counts a directory's users by state and its groups by walking
// the lists with the real client.
func walkCounts(t *testing.T, c *workos.Client, dir string) workos.DirectoryMetadata {
	t.Helper()
	ctx := context.Background()
	asc := workos.ListOptions{Order: workos.OrderAsc, Limit: 100}
	var m workos.DirectoryMetadata
	for _, u := range all(t, c.DirectoryUsers(ctx, &workos.ListDirectoryUsersOptions{ListOptions: asc, Directory: dir})) {
		if u.State == workos.DirectoryUserStateActive {
			m.Users.Active++
		} else {
			m.Users.Inactive++
		}
	}
	m.Groups = int64(len(all(t, c.DirectoryGroups(ctx, &workos.ListDirectoryGroupsOptions{ListOptions: asc, Directory: dir}))))
	return m
}

// TestMetadataTracksState checks that every directory's metadata, listed and
// got, equals the counts of its lists after days of churn with directory
// activations and deletions, silent changes and undecodable events included.
func TestMetadataTracksState(t *testing.T) {
	cfg := churnConfig
	cfg.Directories = 7
	cfg.Metadata = MetadataAll
	f := startFake(t, cfg)
	c := f.workosClient()
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		dirs := all(t, c.Directories(ctx, &workos.ListDirectoriesOptions{ListOptions: workos.ListOptions{Order: workos.OrderAsc}}))
		if len(dirs) == 0 {
			t.Fatalf("%s: no directories", when)
		}
		for _, d := range dirs {
			want := walkCounts(t, c, d.ID)
			if d.Metadata == nil {
				t.Errorf("%s: %s has no metadata with MetadataAll", when, d.ID)
				continue
			}
			if *d.Metadata != want {
				t.Errorf("%s: listed metadata of %s = %+v, the lists have %+v", when, d.ID, *d.Metadata, want)
			}
			got, err := c.GetDirectory(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Metadata == nil || *got.Metadata != want {
				t.Errorf("%s: GET /directories/%s metadata = %+v, the lists have %+v", when, d.ID, got.Metadata, want)
			}
		}
	}
	check("at start")
	res := f.AdvanceWith(10*24*time.Hour, churnOpts)
	if res.ByType[workos.EventUserCreated] == 0 || res.ByType[workos.EventUserDeleted] == 0 || res.ByType[workos.EventDirectoryActivated] == 0 {
		t.Fatalf("too little churn: %v", res.ByType)
	}
	check("after 10 days")
	f.SetHostile(Hostile{Seed: 3, Silent: 0.5, Undecodable: 0.3})
	f.AdvanceWith(5*24*time.Hour, churnOpts)
	if tr := f.HostileTruth(); len(tr.Silent) == 0 || len(tr.Undecodable) == 0 {
		t.Fatalf("no silent or undecodable changes: %d, %d", len(tr.Silent), len(tr.Undecodable))
	}
	check("after 5 hostile days")
}

// TestMetadataModes checks MetadataNone (no directory has metadata, in lists,
// gets and the accessors) and the default mix.
func TestMetadataModes(t *testing.T) {
	cfg := churnConfig
	cfg.Directories = 12
	cfg.Metadata = MetadataNone
	f := startFake(t, cfg)
	c := f.workosClient()
	ctx := context.Background()
	f.AdvanceWith(3*24*time.Hour, churnOpts)
	for _, d := range all(t, c.Directories(ctx, nil)) {
		if d.Metadata != nil {
			t.Errorf("MetadataNone: %s lists metadata %+v", d.ID, *d.Metadata)
		}
		if got, err := c.GetDirectory(ctx, d.ID); err != nil || got.Metadata != nil {
			t.Errorf("MetadataNone: GET %s: %v, metadata %v", d.ID, err, got.Metadata)
		}
	}
	for _, d := range f.Directories() {
		if d.Metadata != nil {
			t.Errorf("MetadataNone: Directories() gives %s metadata", d.ID)
		}
	}
	f.SetMetadata(MetadataMixed)
	with := 0
	for _, d := range all(t, c.Directories(ctx, nil)) {
		if d.Metadata != nil {
			with++
		}
	}
	if n := len(f.Directories()); with == 0 || with == n {
		t.Errorf("MetadataMixed: %d of %d directories have metadata, want some but not all", with, n)
	}
	if _, err := New(Config{Metadata: MetadataNone + 1}); err == nil {
		t.Error("New accepted an unknown MetadataMode")
	}
}
