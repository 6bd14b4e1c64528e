package workos

import (
	"context"
	"encoding/json"
	"iter"
	"net/url"
	"strconv"
)

// Order is the sort order of a list by creation time.
type Order string

// Orders accepted by the list endpoints. The client always sends one
// explicitly, because the server's default has changed between spec versions.
const (
	// OrderAsc lists oldest first; records created during a walk appear at its tail.
	OrderAsc Order = "asc"
	// OrderDesc lists newest first, the SDKs' default and ours.
	OrderDesc Order = "desc"
	// OrderNormal is descending with reversed cursor semantics: before fetches
	// older records and after newer ones.
	OrderNormal Order = "normal"
)

// DefaultLimit is the page size sent when ListOptions.Limit is 0: the API's maximum.
const DefaultLimit = 100

// ListOptions are the pagination parameters common to every list endpoint.
type ListOptions struct {
	// Limit is the page size, 1..100; 0 means DefaultLimit (100).
	Limit int
	// Order is the sort order; "" means OrderDesc. It is always sent.
	Order Order
	// Before and After are object IDs (cursors) from a previous page's
	// ListMetadata. Send After to get the page after that object.
	Before, After string
}

// query validates the options and returns the pagination query values.
func (o ListOptions) query() (url.Values, error) {
	limit := o.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > 100 {
		return nil, invalidArg("limit %d out of range: want 1..100, or 0 for the default of %d", o.Limit, DefaultLimit)
	}
	order := o.Order
	if order == "" {
		order = OrderDesc
	}
	switch order {
	case OrderAsc, OrderDesc, OrderNormal:
	default:
		return nil, invalidArg("unknown order %q: want %q, %q or %q", o.Order, OrderAsc, OrderDesc, OrderNormal)
	}
	if err := checkCursor("before", o.Before); err != nil {
		return nil, err
	}
	if err := checkCursor("after", o.After); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("limit", strconv.Itoa(limit))
	q.Set("order", string(order))
	setIf(q, "before", o.Before)
	setIf(q, "after", o.After)
	return q, nil
}

// Page is one page of a list endpoint.
type Page[T any] struct {
	Object       string       `json:"object"` // "list"
	Data         []T          `json:"data"`
	ListMetadata ListMetadata `json:"list_metadata"`
	// RequestID is the X-Request-ID of the response that carried the page.
	RequestID string `json:"-"`
}

// NextAfter returns the cursor to pass as ListOptions.After for the next page,
// and whether there is one: false when list_metadata.after is null or empty
// or the page has no data.
func (p *Page[T]) NextAfter() (string, bool) {
	return nextCursor(p.ListMetadata.After, len(p.Data))
}

// NextBefore returns the cursor to pass as ListOptions.Before to walk the other
// way, and whether there is one: false when list_metadata.before is null or
// empty or the page has no data.
func (p *Page[T]) NextBefore() (string, bool) {
	return nextCursor(p.ListMetadata.Before, len(p.Data))
}

func nextCursor(c *string, n int) (string, bool) {
	if c == nil || *c == "" || n == 0 {
		return "", false
	}
	return *c, true
}

// listPage fetches one page of path with query q.
func listPage[T any](ctx context.Context, c *Client, r request) (*Page[T], error) {
	var page *Page[T]
	resp, err := c.do(ctx, r, func(b []byte) error {
		p := new(Page[T])
		if err := json.Unmarshal(b, p); err != nil {
			return err
		}
		page = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	page.RequestID = resp.requestID
	c.pages.Add(1)
	return page, nil
}

// getObject fetches one object.
func getObject[T any](ctx context.Context, c *Client, r request) (*T, error) {
	var out *T
	_, err := c.do(ctx, r, func(b []byte) error {
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			return err
		}
		out = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// walk iterates over every item of a list, page by page, starting from lo.
// It follows after cursors, or before cursors when lo.Before is set and
// lo.After is not. It yields an error once and stops; it stops when the
// cursor is null, a page is empty, or yield returns false.
func walk[T any](ctx context.Context, lo ListOptions, fetch func(context.Context, ListOptions) (*Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		backward := lo.Before != "" && lo.After == ""
		for {
			page, err := fetch(ctx, lo)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range page.Data {
				if !yield(item, nil) {
					return
				}
			}
			var next string
			var ok bool
			if backward {
				next, ok = page.NextBefore()
			} else {
				next, ok = page.NextAfter()
			}
			if !ok {
				return
			}
			prev := lo.After
			if backward {
				prev = lo.Before
			}
			if next == prev {
				var zero T
				yield(zero, &cursorError{cursor: next, requestID: page.RequestID})
				return
			}
			if backward {
				lo.Before = next
			} else {
				lo.After = next
			}
		}
	}
}

// cursorError is a page whose next cursor equals the one just sent; following
// it would loop forever.
type cursorError struct{ cursor, requestID string }

func (e *cursorError) Error() string {
	return "workos: the API returned the cursor " + strconv.Quote(e.cursor) +
		" it was sent (request_id: " + e.requestID + "): stopping to avoid an endless walk; report the request id to WorkOS support"
}

func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}
