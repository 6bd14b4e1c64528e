package workos

import (
	"context"
	"iter"
	"net/http"
)

// ListDirectoryUsersOptions filter and paginate ListDirectoryUsers. Always set
// Directory (or Group): WorkOS rate-limits /directory_users per directory, and
// the behaviour without either filter is undocumented.
type ListDirectoryUsersOptions struct {
	ListOptions
	// Directory keeps the users of one directory (directory_…). It also keys
	// the client's per-directory rate limiter.
	Directory string
	// Group keeps the members of one group (directory_group_…).
	Group string
	// IdpID keeps the user with this identity-provider ID. Requires Directory.
	IdpID string
	// Email keeps the users with this primary email. Requires Directory.
	Email string
}

func (o *ListDirectoryUsersOptions) request() (request, error) {
	var opts ListDirectoryUsersOptions
	if o != nil {
		opts = *o
	}
	q, err := opts.ListOptions.query()
	if err != nil {
		return request{}, err
	}
	if opts.Directory != "" {
		if err := checkID(kindDirectory, "the directory filter", opts.Directory); err != nil {
			return request{}, err
		}
	}
	if opts.Group != "" {
		if err := checkID(kindGroup, "the group filter", opts.Group); err != nil {
			return request{}, err
		}
	}
	if opts.Directory == "" && (opts.IdpID != "" || opts.Email != "") {
		return request{}, invalidArg("the idp_id and email filters of /directory_users require the directory filter: set Directory too")
	}
	setIf(q, "directory", opts.Directory)
	setIf(q, "group", opts.Group)
	setIf(q, "idp_id", opts.IdpID)
	setIf(q, "email", opts.Email)
	return request{method: http.MethodGet, path: "directory_users", query: q, perDir: true, perDirKey: opts.Directory}, nil
}

// ListDirectoryUsers returns one page of directory users. opts may be nil.
// Each attempt waits for the per-directory rate limiter of opts.Directory.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory-user/list
func (c *Client) ListDirectoryUsers(ctx context.Context, opts *ListDirectoryUsersOptions) (*Page[DirectoryUser], error) {
	r, err := opts.request()
	if err != nil {
		return nil, c.scrub(err)
	}
	return listPage[DirectoryUser](ctx, c, r)
}

// DirectoryUserPages iterates over the pages of the list ListDirectoryUsers returns, from
// opts (which may be nil) on. It walks the after cursors from opts.After, or
// the before cursors when only opts.Before is set. On an error, a cursor the
// API repeats (see ErrRepeatedCursor) included, it yields the error once and
// stops.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory-user/list
func (c *Client) DirectoryUserPages(ctx context.Context, opts *ListDirectoryUsersOptions) iter.Seq2[*Page[DirectoryUser], error] {
	var o ListDirectoryUsersOptions
	if opts != nil {
		o = *opts
	}
	return pages[DirectoryUser](ctx, c, o.ListOptions, func(lo ListOptions) (request, error) {
		o.ListOptions = lo
		return o.request()
	})
}

// DirectoryUsers iterates over every directory user matching opts (which may be nil),
// page by page as DirectoryUserPages fetches them. On an error it yields the error
// once and stops.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory-user/list
func (c *Client) DirectoryUsers(ctx context.Context, opts *ListDirectoryUsersOptions) iter.Seq2[DirectoryUser, error] {
	return items(c.DirectoryUserPages(ctx, opts))
}

// GetDirectoryUser returns the directory user with the given ID (directory_user_…).
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory-user/get
func (c *Client) GetDirectoryUser(ctx context.Context, id string) (*DirectoryUser, error) {
	if err := checkID(kindUser, "directory user ID", id); err != nil {
		return nil, c.scrub(err)
	}
	return getObject[DirectoryUser](ctx, c, request{method: http.MethodGet, path: objectPath("directory_users", id)})
}
