// Package workos is a small client for the WorkOS Directory Sync API: it lists
// and gets directories, directory users and directory groups.
//
// List methods come in two forms: a page method (ListDirectoryUsers) that
// returns the cursor, so a long export can checkpoint it, and an iterator
// (DirectoryUsers) built on it:
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
// prefixes and limits must be 1..100 (errors match ErrInvalidArgument).
//
// Requests are paced on the client side (by default 4 per second per directory
// on /directory_users and 100 per second overall; see RateLimits) and GET and
// DELETE are retried on 408, 429, 5xx and network errors, including bodies cut
// short, with capped exponential backoff and jitter. Retry-After, in seconds or
// as an HTTP date, overrides the backoff up to a cap. Non-2xx answers are
// *APIError; see IsNotFound, IsRateLimited and IsUnauthorized. Stats counts
// requests, pages, retries, 429s and network errors.
package workos
