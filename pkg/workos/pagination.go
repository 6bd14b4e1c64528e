package workos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// listPage fetches one page of r. A page without a data array ({"object":"list"}
// or "data": null) is a *DecodeError, not an empty page: an empty list is
// "data": [], and taking a malformed answer for one would commit a snapshot
// without rows.
func listPage[T any](ctx context.Context, c *Client, r request) (*Page[T], error) {
	var page *Page[T]
	resp, err := c.do(ctx, r, func(b []byte) error {
		p := new(Page[T])
		if err := json.Unmarshal(b, p); err != nil {
			return err
		}
		if p.Data == nil {
			return errNoData
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

var errNoData = errors.New(`the list has no "data" array (want "data": [...], empty or not)`)

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

// pages iterates over the pages of one list, starting from lo. build turns
// the pagination options into the request of the list (its path and
// filters). It follows after cursors, or before cursors when lo.Before is set
// and lo.After is not, and stops when the cursor is null, a page is empty, or
// yield returns false. On an error it yields it once and stops.
//
// It remembers every cursor of the walk: a cursor that comes back, right away
// (A→A) or after a cycle (A→B→A), would loop forever, so it ends the walk with
// an error that matches ErrRepeatedCursor and names the endpoint and the
// cursor. It checks a page's next cursor before it yields the page: the page
// that carries a repeated cursor is itself a repeat, and its items are not
// yielded again. Every list iterator of the package is built on it.
func pages[T any](ctx context.Context, c *Client, lo ListOptions, build func(ListOptions) (request, error)) iter.Seq2[*Page[T], error] {
	return func(yield func(*Page[T], error) bool) {
		backward := lo.Before != "" && lo.After == ""
		seen := map[string]bool{}
		if backward {
			seen[lo.Before] = true
		} else if lo.After != "" {
			seen[lo.After] = true
		}
		for n := 1; ; n++ {
			r, err := build(lo)
			if err != nil {
				yield(nil, c.scrub(err))
				return
			}
			page, err := listPage[T](ctx, c, r)
			if err != nil {
				yield(nil, err)
				return
			}
			next, ok := page.NextAfter()
			if backward {
				next, ok = page.NextBefore()
			}
			// A cursor is the ID of its page's last item: a page whose
			// cursor was already seen ends where an earlier page did, so it
			// repeats it. Refuse it before yielding it, so that a caller
			// does not walk its items a second time.
			if ok && seen[next] {
				yield(nil, c.scrub(&cursorError{endpoint: r.describe(), cursor: next, requestID: page.RequestID, pages: n}))
				return
			}
			if !yield(page, nil) || !ok {
				return
			}
			seen[next] = true
			if backward {
				lo.Before = next
			} else {
				lo.After = next
			}
		}
	}
}

// items iterates over the items of the pages of seq.
func items[T any](seq iter.Seq2[*Page[T], error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for page, err := range seq {
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
		}
	}
}

// ErrRepeatedCursor is matched (with errors.Is) by the error a list iterator
// ends with when the API hands back a cursor it already gave in the same walk.
var ErrRepeatedCursor = errors.New("workos: the API repeated a cursor")

// cursorError is a page whose next cursor was already followed in this walk:
// the page repeats an earlier one and was not yielded, and following its
// cursor again would loop forever.
type cursorError struct {
	endpoint, cursor, requestID string
	pages                       int
}

func (e *cursorError) Error() string {
	rid := e.requestID
	if rid == "" {
		rid = "none"
	}
	return fmt.Sprintf("workos: %s: the API returned the cursor %q, already followed in this walk (page %d, request_id: %s): "+
		"the page repeats an earlier one and was not used; stopping, as following it would loop forever; report the request id to WorkOS support", e.endpoint, e.cursor, e.pages, rid)
}

func (e *cursorError) Is(target error) bool { return target == ErrRepeatedCursor }

func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}
