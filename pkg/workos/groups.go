package workos

import (
	"context"
	"iter"
	"net/http"
)

// ListDirectoryGroupsOptions filter and paginate ListDirectoryGroups.
type ListDirectoryGroupsOptions struct {
	ListOptions
	// Directory keeps the groups of one directory (directory_…).
	Directory string
	// User keeps the groups one user belongs to (directory_user_…), the
	// replacement for the deprecated DirectoryUser.Groups.
	User string
}

func (o *ListDirectoryGroupsOptions) request() (request, error) {
	var opts ListDirectoryGroupsOptions
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
	if opts.User != "" {
		if err := checkID(kindUser, "the user filter", opts.User); err != nil {
			return request{}, err
		}
	}
	setIf(q, "directory", opts.Directory)
	setIf(q, "user", opts.User)
	return request{method: http.MethodGet, path: "directory_groups", query: q}, nil
}

// ListDirectoryGroups returns one page of directory groups. opts may be nil.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory-group/list
func (c *Client) ListDirectoryGroups(ctx context.Context, opts *ListDirectoryGroupsOptions) (*Page[DirectoryGroup], error) {
	r, err := opts.request()
	if err != nil {
		return nil, c.scrub(err)
	}
	return listPage[DirectoryGroup](ctx, c, r)
}

// DirectoryGroupPages iterates over the pages of the list ListDirectoryGroups returns, from
// opts (which may be nil) on. It walks the after cursors from opts.After, or
// the before cursors when only opts.Before is set. On an error, a cursor the
// API repeats (see ErrRepeatedCursor) included, it yields the error once and
// stops.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory-group/list
func (c *Client) DirectoryGroupPages(ctx context.Context, opts *ListDirectoryGroupsOptions) iter.Seq2[*Page[DirectoryGroup], error] {
	var o ListDirectoryGroupsOptions
	if opts != nil {
		o = *opts
	}
	return pages[DirectoryGroup](ctx, c, o.ListOptions, func(lo ListOptions) (request, error) {
		o.ListOptions = lo
		return o.request()
	})
}

// DirectoryGroups iterates over every directory group matching opts (which may be nil),
// page by page as DirectoryGroupPages fetches them. On an error it yields the error
// once and stops.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory-group/list
func (c *Client) DirectoryGroups(ctx context.Context, opts *ListDirectoryGroupsOptions) iter.Seq2[DirectoryGroup, error] {
	return items(c.DirectoryGroupPages(ctx, opts))
}

// GetDirectoryGroup returns the directory group with the given ID (directory_group_…).
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory-group/get
func (c *Client) GetDirectoryGroup(ctx context.Context, id string) (*DirectoryGroup, error) {
	if err := checkID(kindGroup, "directory group ID", id); err != nil {
		return nil, c.scrub(err)
	}
	return getObject[DirectoryGroup](ctx, c, request{method: http.MethodGet, path: objectPath("directory_groups", id)})
}
