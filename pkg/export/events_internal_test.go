package export

import (
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// TestEventsReadStart: where a run's events read starts and ends, as a pure
// function of its base's record, its date and the clock (eventsFromBase,
// then eventsRange): the base's cursor; a range_start for a quiet account
// whose last event expired; a restart from the retention's start for no
// base or an expired cursor; the base's record carried by a rerun of its
// date; and an end always after the cursor.
func TestEventsReadStart(t *testing.T) {
	now := time.Date(2026, 12, 8, 2, 0, 0, 0, time.UTC)
	const settle = 2 * time.Minute
	day := 24 * time.Hour
	cursor := func(after string, afterAge, checkedAge time.Duration) snapshot.EventCursor {
		c := snapshot.EventCursor{After: after, CheckedAt: now.Add(-checkedAge)}
		if after != "" {
			c.AfterTime = now.Add(-afterAge)
		}
		return c
	}
	baseOf := func(date string, through snapshot.EventCursor) *base {
		return &base{m: &snapshot.Manifest{SnapshotDate: date, RunID: "20261207T020000.000Z-000001",
			Events: &snapshot.EventsManifest{Through: through, Files: []snapshot.File{{Key: "directory_events/dt=2026-12-07/x.parquet"}}}}}
	}
	retentionStart := now.Add(-workos.EventRetention + eventsReadSafety)
	for _, tc := range []struct {
		name                  string
		b                     *base
		date                  string
		wantAfter             string
		wantRangeStart        time.Time
		wantRangeEnd          time.Time
		wantRestart           string
		wantCarried, wantBase bool
		wantSkip              string
	}{
		{name: "no base: the chain starts at the retention's start", b: nil, date: "2026-12-08",
			wantRangeStart: retentionStart, wantRangeEnd: now.Add(-settle), wantRestart: RestartFirst},
		{name: "a base without events: a first chain", b: &base{m: &snapshot.Manifest{SnapshotDate: "2026-12-07", RunID: "20261207T020000.000Z-000001"}}, date: "2026-12-08",
			wantRangeStart: retentionStart, wantRangeEnd: now.Add(-settle), wantRestart: RestartFirst},
		{name: "yesterday's cursor: after its last event", b: baseOf("2026-12-07", cursor("event_01X", 25*time.Hour, day)), date: "2026-12-08",
			wantAfter: "event_01X", wantRangeEnd: now.Add(-settle), wantBase: true, wantSkip: "event_01X"},
		{name: "a quiet account: the last event expired, the check did not", b: baseOf("2026-12-07", cursor("event_01Q", 40*day, day)), date: "2026-12-08",
			wantRangeStart: now.Add(-day - eventsClockSkew), wantRangeEnd: now.Add(-settle), wantBase: true, wantSkip: "event_01Q"},
		{name: "a cursor past the retention: the chain restarts", b: baseOf("2026-11-01", cursor("event_01O", 37*day, 37*day)), date: "2026-12-08",
			wantRangeStart: retentionStart, wantRangeEnd: now.Add(-settle), wantRestart: RestartRetention, wantSkip: "event_01O"},
		{name: "a rerun of the base's date carries its record on", b: baseOf("2026-12-08", cursor("event_01R", time.Hour, time.Hour)), date: "2026-12-08",
			wantAfter: "event_01R", wantRangeEnd: now.Add(-settle), wantCarried: true, wantSkip: "event_01R"},
		{name: "a cursor checked after now minus settle: the read ends just after it", b: baseOf("2026-12-07", cursor("event_01N", time.Minute, time.Minute)), date: "2026-12-08",
			wantAfter: "event_01N", wantRangeEnd: now.Add(-time.Minute + time.Millisecond), wantBase: true, wantSkip: "event_01N"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep, through := eventsFromBase(tc.b, tc.date)
			opts := eventsRange(ep, through, now, settle)
			if opts.After != tc.wantAfter || !opts.RangeStart.Equal(tc.wantRangeStart) || !opts.RangeEnd.Equal(tc.wantRangeEnd) {
				t.Errorf("read after %q from %s to %s, want after %q from %s to %s", opts.After, opts.RangeStart, opts.RangeEnd, tc.wantAfter, tc.wantRangeStart, tc.wantRangeEnd)
			}
			if ep.Restart != tc.wantRestart || ep.Restarted != (tc.wantRestart != "") {
				t.Errorf("restart %q (restarted %v), want %q", ep.Restart, ep.Restarted, tc.wantRestart)
			}
			if (ep.CarriedFrom != "") != tc.wantCarried || (ep.BaseRunID != "") != tc.wantBase {
				t.Errorf("carried from %q, base run %q: want carried %v, base %v", ep.CarriedFrom, ep.BaseRunID, tc.wantCarried, tc.wantBase)
			}
			if tc.wantCarried && len(ep.Files) != 1 {
				t.Errorf("a rerun carries %d files of its date's record, want 1", len(ep.Files))
			}
			if through.After != tc.wantSkip {
				t.Errorf("skips ids through %q, want %q", through.After, tc.wantSkip)
			}
			if ep.Link != snapshot.ChainLinkKey(through, ep.Restarted) {
				t.Errorf("chain link %s, want the key of where the read began", ep.Link)
			}
			if !opts.RangeEnd.After(through.CheckedAt) {
				t.Errorf("the read ends at %s, not after the cursor's check at %s", opts.RangeEnd, through.CheckedAt)
			}
		})
	}
}
