package workos

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func TestValidationBeforeAnyRequest(t *testing.T) {
	c, mux := setup(t)
	var hits atomic.Int32
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		t.Errorf("request sent despite invalid arguments: %s %s", r.Method, r.URL)
	})
	ctx := context.Background()
	lo := func(l ListOptions) *ListDirectoryUsersOptions {
		return &ListDirectoryUsersOptions{ListOptions: l, Directory: dirID}
	}
	tests := []struct {
		name string
		call func() error
		want string // in the error
	}{
		{"limit 101", func() error { _, err := c.ListDirectoryUsers(ctx, lo(ListOptions{Limit: 101})); return err }, "limit 101 out of range: want 1..100"},
		{"limit -1", func() error {
			_, err := c.ListDirectories(ctx, &ListDirectoriesOptions{ListOptions: ListOptions{Limit: -1}})
			return err
		}, "limit -1 out of range"},
		{"unknown order", func() error { _, err := c.ListDirectoryUsers(ctx, lo(ListOptions{Order: "random"})); return err }, `unknown order "random"`},
		{"cursor with newline", func() error {
			_, err := c.ListDirectoryUsers(ctx, lo(ListOptions{After: "directory_user_1\n"}))
			return err
		}, "after cursor"},
		{"get directory with user ID", func() error { _, err := c.GetDirectory(ctx, userID1); return err }, "is a directory user ID, not a directory ID"},
		{"get directory with group ID", func() error { _, err := c.GetDirectory(ctx, groupID); return err }, "is a directory group ID, not a directory ID"},
		{"get directory with org ID", func() error { _, err := c.GetDirectory(ctx, orgID); return err }, `want the prefix "directory_"`},
		{"get directory empty", func() error { _, err := c.GetDirectory(ctx, ""); return err }, "directory ID is empty"},
		{"get directory prefix only", func() error { _, err := c.GetDirectory(ctx, "directory_"); return err }, "is malformed"},
		{"get directory path traversal", func() error { _, err := c.GetDirectory(ctx, "directory_../../x"); return err }, "is malformed"},
		{"delete directory with user ID", func() error { return c.DeleteDirectory(ctx, userID1) }, "is a directory user ID"},
		{"get user with directory ID", func() error { _, err := c.GetDirectoryUser(ctx, dirID); return err }, `want the prefix "directory_user_"`},
		{"get user with group ID", func() error { _, err := c.GetDirectoryUser(ctx, groupID); return err }, "is not a directory user ID"},
		{"get group with user ID", func() error { _, err := c.GetDirectoryGroup(ctx, userID1); return err }, `want the prefix "directory_group_"`},
		{"directory filter with user ID", func() error {
			_, err := c.ListDirectoryUsers(ctx, &ListDirectoryUsersOptions{Directory: userID1})
			return err
		}, "the directory filter"},
		{"group filter with directory ID", func() error {
			_, err := c.ListDirectoryUsers(ctx, &ListDirectoryUsersOptions{Directory: dirID, Group: dirID})
			return err
		}, "the group filter"},
		{"idp_id without directory", func() error {
			_, err := c.ListDirectoryUsers(ctx, &ListDirectoryUsersOptions{IdpID: "2836"})
			return err
		}, "require the directory filter"},
		{"email without directory", func() error {
			_, err := c.ListDirectoryUsers(ctx, &ListDirectoryUsersOptions{Group: groupID, Email: "a@example.com"})
			return err
		}, "require the directory filter"},
		{"user filter with group ID", func() error {
			_, err := c.ListDirectoryGroups(ctx, &ListDirectoryGroupsOptions{User: groupID})
			return err
		}, "the user filter"},
		{"groups directory filter with group ID", func() error {
			_, err := c.ListDirectoryGroups(ctx, &ListDirectoryGroupsOptions{Directory: groupID})
			return err
		}, "is a directory group ID"},
		{"organization filter", func() error {
			_, err := c.ListDirectories(ctx, &ListDirectoriesOptions{OrganizationID: dirID})
			return err
		}, `want the prefix "org_"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
			if !strings.HasPrefix(err.Error(), "workos: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want the workos: prefix and %q", err, tt.want)
			}
		})
	}
	if hits.Load() != 0 || c.Stats().Requests != 0 {
		t.Errorf("requests sent: %d (stats %+v)", hits.Load(), c.Stats())
	}
}

func TestValidArgumentsAccepted(t *testing.T) {
	ok := []struct {
		k  idKind
		id string
	}{
		{kindDirectory, dirID},
		{kindDirectory, "directory_123"},
		{kindDirectory, "directory_users_team"}, // not the directory_user_ prefix
		{kindUser, userID1},
		{kindGroup, groupID},
		{kindOrganization, orgID},
	}
	for _, tt := range ok {
		if err := checkID(tt.k, "id", tt.id); err != nil {
			t.Errorf("checkID(%s, %q) = %v", tt.k.name, tt.id, err)
		}
	}
	for _, l := range []int{0, 1, 100} {
		q, err := ListOptions{Limit: l}.query()
		want := map[int]string{0: "100", 1: "1", 100: "100"}[l]
		if err != nil || q.Get("limit") != want || q.Get("order") != "desc" {
			t.Errorf("Limit %d: query %v, %v", l, q, err)
		}
	}
	for _, o := range []Order{OrderAsc, OrderDesc, OrderNormal} {
		if q, err := (ListOptions{Order: o}).query(); err != nil || q.Get("order") != string(o) {
			t.Errorf("Order %q: query %v, %v", o, q, err)
		}
	}
}
