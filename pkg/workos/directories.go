package workos

import (
	"context"
	"iter"
	"net/http"
)

// ListDirectoriesOptions filter and paginate ListDirectories. The zero value
// lists every directory of the environment, 100 per page, newest first.
type ListDirectoriesOptions struct {
	ListOptions
	// OrganizationID keeps the directories of one organization (org_…).
	OrganizationID string
	// Search matches text against directory names.
	Search string
	// Domain keeps the directories of a domain. Deprecated by WorkOS.
	Domain string
}

func (o *ListDirectoriesOptions) request() (request, error) {
	var opts ListDirectoriesOptions
	if o != nil {
		opts = *o
	}
	q, err := opts.ListOptions.query()
	if err != nil {
		return request{}, err
	}
	if opts.OrganizationID != "" {
		if err := checkID(kindOrganization, "the organization_id filter", opts.OrganizationID); err != nil {
			return request{}, err
		}
	}
	setIf(q, "organization_id", opts.OrganizationID)
	setIf(q, "search", opts.Search)
	setIf(q, "domain", opts.Domain)
	return request{method: http.MethodGet, path: "directories", query: q}, nil
}

// ListDirectories returns one page of directories. opts may be nil.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory/list
func (c *Client) ListDirectories(ctx context.Context, opts *ListDirectoriesOptions) (*Page[Directory], error) {
	r, err := opts.request()
	if err != nil {
		return nil, c.scrub(err)
	}
	return listPage[Directory](ctx, c, r)
}

// DirectoryPages iterates over the pages of the list ListDirectories returns, from
// opts (which may be nil) on. It walks the after cursors from opts.After, or
// the before cursors when only opts.Before is set. On an error, a cursor the
// API repeats (see ErrRepeatedCursor) included, it yields the error once and
// stops.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory/list
func (c *Client) DirectoryPages(ctx context.Context, opts *ListDirectoriesOptions) iter.Seq2[*Page[Directory], error] {
	var o ListDirectoriesOptions
	if opts != nil {
		o = *opts
	}
	return pages[Directory](ctx, c, o.ListOptions, func(lo ListOptions) (request, error) {
		o.ListOptions = lo
		return o.request()
	})
}

// Directories iterates over every directory matching opts (which may be nil),
// page by page as DirectoryPages fetches them. On an error it yields the error
// once and stops.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory/list
func (c *Client) Directories(ctx context.Context, opts *ListDirectoriesOptions) iter.Seq2[Directory, error] {
	return items(c.DirectoryPages(ctx, opts))
}

// GetDirectory returns the directory with the given ID (directory_…).
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory/get
func (c *Client) GetDirectory(ctx context.Context, id string) (*Directory, error) {
	if err := checkID(kindDirectory, "directory ID", id); err != nil {
		return nil, c.scrub(err)
	}
	return getObject[Directory](ctx, c, request{method: http.MethodGet, path: objectPath("directories", id)})
}

// DeleteDirectory permanently deletes a directory and its users and groups. Any
// 2xx status is success (the spec lists 200 and 202; some docs say 204).
//
// DELETE is idempotent, so it is retried like GET on 408, 429, 5xx and network
// errors. If an earlier attempt deleted the directory but its response was
// lost, a retry answers 404: callers may treat IsNotFound as already deleted.
//
// WorkOS API docs: https://workos.com/docs/reference/directory-sync/directory/delete
func (c *Client) DeleteDirectory(ctx context.Context, id string) error {
	if err := checkID(kindDirectory, "directory ID", id); err != nil {
		return c.scrub(err)
	}
	_, err := c.do(ctx, request{method: http.MethodDelete, path: objectPath("directories", id)}, nil)
	return err
}
