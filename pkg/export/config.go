package export

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/parquetfile"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// MembershipAuto chooses by_group or by_user per directory from its counts.
// The other membership modes are the routes of pkg/snapshot (RouteByGroup,
// RouteByUser, RouteLegacy), which force that route for every directory.
const MembershipAuto = "auto"

// MembershipModes lists the valid membership modes.
var MembershipModes = []string{MembershipAuto, snapshot.RouteByGroup, snapshot.RouteByUser, snapshot.RouteLegacy}

// Config tunes an export. The zero value is not valid; start from DefaultConfig.
type Config struct {
	// Concurrency is how many directories a chunk walks at once.
	Concurrency int
	// UserRouteParallelism is how many /directory_groups?user= walks run at
	// once within one directory on the by_user membership route.
	UserRouteParallelism int
	// MembershipMode is auto, by_group, by_user or legacy.
	MembershipMode string
	// OrganizationIDs and DirectoryIDs restrict the export; empty means all.
	OrganizationIDs []string
	DirectoryIDs    []string
	// Order is the list order sent to WorkOS. asc walks oldest first, so
	// records created during the run are still reached at the tail.
	Order workos.Order
	// DeadlineMargin is how long before the context deadline a chunk stops
	// walking, so that it closes its parts and writes its checkpoint (or, in
	// Run, fails cleanly) and is never killed by the Lambda timeout mid-write.
	DeadlineMargin time.Duration
	// PerDirectoryRate and GlobalRate are the WorkOS limits the client paces
	// itself to (requests/s); the route choice uses them for its estimates.
	PerDirectoryRate float64
	GlobalRate       float64
	// Writer configures the Parquet writers.
	Writer parquetfile.Options
	// ProgressEvery is how often a running export logs a progress line
	// (0: never).
	ProgressEvery time.Duration
	// Mode is auto (incremental where safe), full or incremental (fail
	// where a full walk is needed).
	Mode string
	// FullEvery is how often each directory is walked in full anyway (the
	// reconcile that repairs what events miss); 0: never.
	FullEvery time.Duration
	// EventsMargin is the safety margin inside the Events API's 30-day
	// retention: a base whose cursor is older than retention minus it gets
	// a full walk.
	EventsMargin time.Duration
	// EventsSettle is how long before now the event read ends: WorkOS
	// holds fresh events back from cursor reads for a few seconds, so an
	// event still held back is read by the next run, not skipped.
	EventsSettle time.Duration
}

// DefaultConfig returns the defaults chosen by measurement (see README).
func DefaultConfig() Config {
	return Config{
		Concurrency:          32,
		UserRouteParallelism: 8,
		MembershipMode:       MembershipAuto,
		Order:                workos.OrderAsc,
		DeadlineMargin:       60 * time.Second,
		PerDirectoryRate:     4,
		GlobalRate:           100,
		ProgressEvery:        30 * time.Second,
		Mode:                 ModeAuto,
		FullEvery:            7 * 24 * time.Hour,
		EventsMargin:         48 * time.Hour,
		EventsSettle:         2 * time.Minute,
	}
}

// Problem is one invalid field of a Config. Field is the Config field's
// name; callers map it to where the value came from (an environment variable
// or an input field) so the message names what to fix.
type Problem struct {
	Field   string
	Message string
}

// Check is the one place the export's configuration is checked: it returns
// every problem at once.
func (c Config) Check() []Problem {
	var ps []Problem
	bad := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if c.Concurrency < 1 || c.Concurrency > 1000 {
		bad("Concurrency", "%d must be a whole number from 1 to 1000", c.Concurrency)
	}
	if c.UserRouteParallelism < 1 || c.UserRouteParallelism > 100 {
		bad("UserRouteParallelism", "%d must be a whole number from 1 to 100", c.UserRouteParallelism)
	}
	if !slices.Contains(MembershipModes, c.MembershipMode) {
		bad("MembershipMode", "%q must be one of %s", c.MembershipMode, strings.Join(MembershipModes, ", "))
	}
	if c.Order != workos.OrderAsc && c.Order != workos.OrderDesc {
		bad("Order", "%q must be asc or desc", c.Order)
	}
	for _, id := range c.DirectoryIDs {
		if !strings.HasPrefix(id, workos.DirectoryIDPrefix) || strings.HasPrefix(id, workos.DirectoryUserIDPrefix) || strings.HasPrefix(id, workos.DirectoryGroupIDPrefix) {
			bad("DirectoryIDs", "%q is not a directory ID: it must start with %q (not %q or %q)", id, workos.DirectoryIDPrefix, workos.DirectoryUserIDPrefix, workos.DirectoryGroupIDPrefix)
		}
	}
	for _, id := range c.OrganizationIDs {
		if !strings.HasPrefix(id, "org_") {
			bad("OrganizationIDs", "%q is not an organization ID: it must start with \"org_\"", id)
		}
	}
	if c.DeadlineMargin < 0 {
		bad("DeadlineMargin", "%s must not be negative", c.DeadlineMargin)
	}
	if c.PerDirectoryRate < 0 {
		bad("PerDirectoryRate", "%g must be 0 (off) or a positive number of requests per second", c.PerDirectoryRate)
	}
	if c.GlobalRate < 0 {
		bad("GlobalRate", "%g must be 0 (off) or a positive number of requests per second", c.GlobalRate)
	}
	if c.ProgressEvery < 0 {
		bad("ProgressEvery", "%s must not be negative", c.ProgressEvery)
	}
	if !slices.Contains(Modes, c.Mode) {
		bad("Mode", "%q must be one of %s", c.Mode, strings.Join(Modes, ", "))
	}
	if c.FullEvery < 0 {
		bad("FullEvery", "%s must be 0 (never) or a positive duration such as 168h (7 days)", c.FullEvery)
	}
	if c.EventsMargin < eventsReadSafety || c.EventsMargin >= workos.EventRetention {
		bad("EventsMargin", "%s must be at least %s and less than the Events API's retention of %s", c.EventsMargin, eventsReadSafety, workos.EventRetention)
	}
	if c.EventsSettle < 0 || c.EventsSettle > eventsClockSkew {
		bad("EventsSettle", "%s must be from 0s to %s", c.EventsSettle, eventsClockSkew)
	}
	return ps
}

// Validate returns nil, or one error listing every problem of Check, each
// named with the Config field.
func (c Config) Validate() error {
	ps := c.Check()
	if len(ps) == 0 {
		return nil
	}
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Field + ": " + p.Message
	}
	return fmt.Errorf("export: invalid config: %s", strings.Join(msgs, "; "))
}
