// Package workos is a small client for the WorkOS Directory Sync API: it lists
// and gets directories, directory users and directory groups, and lists the
// Directory Sync events of the Events API (ListEvents, EventPages, Events),
// whose payloads Event.Payload decodes into typed structs.
//
// List methods come in three forms: a page method (ListDirectoryUsers) that
// returns one page and its cursor, so a long export can checkpoint it; a page
// iterator (DirectoryUserPages) that follows the cursors; and an item
// iterator (DirectoryUsers) built on the page iterator:
//
//	c, err := workos.NewClient(os.Getenv("WORKOS_API_KEY"))
//	if err != nil {
//		return err
//	}
//	for u, err := range c.DirectoryUsers(ctx, &workos.ListDirectoryUsersOptions{Directory: dirID}) {
//		if err != nil {
//			return err // *workos.APIError, *workos.DecodeError, a wrapped ctx.Err() or a network error
//		}
//		fmt.Println(u.ID, u.State)
//	}
//
// Every list request sends limit (100 unless set) and an explicit order (desc
// unless set). Arguments are checked before any request: IDs need their
// prefixes and limits must be 1..100 (errors match ErrInvalidArgument). The
// iterators remember every cursor of a walk and stop with an error matching
// ErrRepeatedCursor when the API hands one back again, instead of looping. A
// list page without a data array is a *DecodeError, not an empty page.
//
// Requests are paced on the client side (by default 4 per second per directory
// on /directory_users and 100 per second overall; see RateLimits) and GET and
// DELETE are retried on 408, 429, 5xx and network errors, including bodies cut
// short, with capped exponential backoff and jitter. Retry-After, in seconds or
// as an HTTP date, overrides the backoff up to a cap. Non-2xx answers are
// *APIError; see IsNotFound, IsRateLimited, IsUnauthorized and IsForbidden.
// No redirect is followed: a 3xx is an *APIError naming its Location, so the
// API key is never sent to another host or port. The API key is removed from
// every error the client returns. Stats counts requests, pages, retries, 429s
// and network errors.
package workos
