// Package workostest is a fake WorkOS Directory Sync API for tests,
// benchmarks, the local demo and development without a WorkOS account.
//
// It speaks the wire format of the official WorkOS OpenAPI spec, so any
// WorkOS SDK pointed at it works unchanged (for the Node SDK:
// new WorkOS(key, {apiHostname: "127.0.0.1", port: 4100, https: false})):
//
//	GET    /directories            filter organization_id
//	GET    /directories/{id}
//	DELETE /directories/{id}       202, empty body; deletes its users and groups
//	GET    /directory_users        filters directory, group
//	GET    /directory_users/{id}
//	GET    /directory_groups       filters directory, user
//	GET    /directory_groups/{id}
//	GET    /events                 filters events (required), range_start,
//	                               range_end, organization_id
//	POST   /_fake/advance          with Config.ControlEndpoint only (not WorkOS)
//	POST   /_fake/hostile          with Config.ControlEndpoint only (not WorkOS)
//	GET    /_fake/hostile          with Config.ControlEndpoint only (not WorkOS)
//
// The spec's search and domain filters of /directories and idp_id and email
// filters of /directory_users, which no test uses, are answered with 422.
//
// Usage:
//
//	srv, err := workostest.New(workostest.Config{Directories: 2, UsersPerDirectory: 500, GroupsPerDirectory: 8})
//	if err != nil {
//		return err
//	}
//	baseURL, err := srv.Start("127.0.0.1:0") // "http://127.0.0.1:PORT/"
//	defer srv.Close()
//	// Point a client at baseURL with the key workostest.DefaultAPIKey, then
//	// compare what it exported with srv.Users(dirID), srv.Groups(dirID) and
//	// srv.Memberships(dirID).
//
// In a test, workostest.Start(t, cfg) does the same and closes the server
// when the test ends.
//
// # Data
//
// The dataset is a pure function of Config.Seed and the sizes: nothing is
// stored, every page is generated when served, and the same seed serves the
// same bytes. A directory of 1,000,000 users costs memory proportional to its
// groups only, and a page of 100 users takes well under a millisecond of CPU
// at any depth. IDs look like WorkOS IDs (prefix plus a 26-character ULID
// whose time part is created_at) and encode their position, so a cursor
// decodes back to its place; IDs the server did not mint are rejected.
//
// Directories cycle through every directory type and state of the spec, with
// rare unknown values ("future scim v3.0", "paused"); some have no domain or
// no metadata, and organizations own one to three directories. Users have
// ASCII and unicode names, unique lower-case e-mails (some null), the
// deprecated emails, job_title and username fields, custom attributes of
// every JSON type, roles, and mostly "active" states with some "inactive",
// "suspended" and rare "pending_review". Each user is in 0–3 groups; some
// groups are empty. Memberships are arithmetic progressions over user
// indices, so members of a group are listed from any cursor at the same cost.
// Directory metadata counts are computed on first use, in time proportional
// to the directory's users (a few milliseconds per million), then kept
// exact through every change as deltas; Config.Metadata gives every
// directory metadata (MetadataAll) or none (MetadataNone).
//
// # Pagination
//
// limit is 1..100 (default 10) and order asc, desc or normal (default desc);
// anything else, or a cursor that is not an ID of the listed kind, is 422.
// Lists are ordered by created_at, then id. after=X returns the items nearest
// X in the "after direction" (newer for asc and normal, older for desc);
// before=X those nearest X the other way. list_metadata.after is the page's
// last item in the after direction when more follow, and list_metadata.before
// its last item in the other direction when more lie there; both are null
// otherwise. So for asc and desc, follow after to walk forwards; for normal,
// which lists newest first, follow before to walk towards older items.
//
// # Time and events
//
// The fake has a simulated clock (Server.Now; Config.Now, by default 06:00
// UTC on the day after the dataset's newest timestamp). Server.Advance moves
// it forward and changes the directories as a provider would, at a given
// churn: users updated, created and deleted, memberships added and removed,
// groups created, renamed and deleted, and now and then a directory deleted
// or a new one activated. Each change is applied to what the lists and the
// accessors serve and emits the event WorkOS would (Server.Events has them
// all), so replaying the events onto the state before Advance gives the
// state after it. Deleting a user, group or directory emits only its own
// deleted event: consumers cascade to its memberships (and a directory's
// users and groups). The changes are stored as an overlay keyed by object
// index, so memory grows with the changes, not with the users, and a fake
// that is never advanced costs nothing extra. Created users and groups are
// listed after the generated ones, so each directory's lists stay in
// created_at order; the lists without a directory filter go directory by
// directory, as before.
//
// GET /events serves the events of the last 30 days (workos.EventRetention)
// with the pagination of the other lists (default desc; list_metadata has
// after only, as in the spec's EventList). events is required: repeated
// parameters and comma-separated lists both work. range_start is inclusive
// and range_end exclusive. Event IDs are "event_" and a ULID of created_at
// and a sequence number, so they sort chronologically and any well-formed
// event ID, even of an expired event, is a valid after or before cursor.
// Event payloads are as in the spec: users without the deprecated groups
// array, user.deleted with state "inactive" and updated_at the deletion
// time, directories in dsync.activated with state "active" (the list says
// "linked") and in dsync.deleted with state "deleting".
//
// # Hostile events
//
// Config.Hostile (or Server.SetHostile, or POST /_fake/hostile) makes GET
// /events misbehave as the real one is reported to, and worse, reproducibly
// from a seed: the last two events of each page swapped, after=X
// answered from X itself, created_at a day early on some events, some events
// emitted with data that does not decode (though still naming their
// directory), some user creates and deletes emitting no event at all, and
// some events served twice. The changes are applied to the state whatever
// their events look like, so the state is that of a fake without hostile
// modes given the same calls, and the metadata counts reveal silent changes.
// Server.HostileTruth (GET /_fake/hostile) lists what the modes did.
//
// # Failures
//
// Config.RateLimit enforces the documented limits (on /events, the
// per-key limit only) and Config.Faults injects
// 5xx HTML pages, 429s, connection resets and truncated bodies, from a seeded
// generator so that a run is reproducible given the order of requests.
// Server.Stats counts requests, pages, 429s and faults per endpoint.
package workostest
