package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Trigger kinds recorded in the manifest.
const (
	TriggerEventBridge = "eventbridge" // an EventBridge scheduled rule (source aws.events, detail-type "Scheduled Event")
	TriggerScheduler   = "scheduler"   // an EventBridge Scheduler input {"scheduled_time": …}
	TriggerManual      = "manual"      // a hand-written input with snapshot_date
	TriggerNow         = "now"         // an input without a date: today in UTC
)

// The EventBridge scheduled event's source and detail-type.
const (
	scheduledSource     = "aws.events"
	scheduledDetailType = "Scheduled Event"
)

// DateWindow is how long after its scheduled time a scheduled trigger may
// still export its date: the scheduler's own retries, and a plan that
// waited for another date's run (ErrBusy). WorkOS keeps no history, so a
// snapshot can only describe now: a manual snapshot_date other than today
// (UTC) needs force, and a date after today is always refused (Athena's
// projection range ends at today, UTC).
const DateWindow = 24 * time.Hour

// Input is the export function's event. It accepts exactly three shapes:
//
//   - the EventBridge scheduled event ({"source":"aws.events","detail-type":"Scheduled Event","time":…});
//   - an EventBridge Scheduler input ({"scheduled_time":"<aws.scheduler.scheduled-time>"});
//   - a manual input ({"snapshot_date":"2026-11-28", "directory_ids":[…], "force":true, …}), or {} for today.
//
// Any other event (an S3 notification, a rule with another source) is refused.
type Input struct {
	// The EventBridge envelope, present only on the scheduled event.
	events.CloudWatchEvent

	// ScheduledTime is set by an EventBridge Scheduler input template.
	ScheduledTime string `json:"scheduled_time,omitempty"`

	// SnapshotDate is the partition to write (YYYY-MM-DD). It must be today
	// (UTC) unless Force is set.
	SnapshotDate string `json:"snapshot_date,omitempty"`
	// Force accepts a snapshot_date other than today, or a scheduled time
	// more than DateWindow ago (never a date outside the Athena projection
	// range).
	Force bool `json:"force,omitempty"`

	// Filters and the membership mode override the function's configuration.
	DirectoryIDs    []string `json:"directory_ids,omitempty"`
	OrganizationIDs []string `json:"organization_ids,omitempty"`
	MembershipMode  string   `json:"membership_mode,omitempty"`
	// Mode overrides EXPORT_MODE: "full" walks every directory (a reconcile
	// on demand), "auto" or "incremental".
	Mode string `json:"mode,omitempty"`
}

// isEnvelope reports whether the input carries any EventBridge envelope field.
func (in *Input) isEnvelope() bool { return !blank(reflect.ValueOf(in.CloudWatchEvent)) }

// isEmpty reports whether no field of the input is set, the envelope's
// included: a step of a state machine execution takes the trigger's fields
// only under "trigger" (plan) or not at all.
func (in *Input) isEmpty() bool { return blank(reflect.ValueOf(*in)) }

// blank reports whether v holds nothing: a zero value, an empty slice or
// map, a zero time.Time (in any location), or a struct whose fields are all
// blank. It walks the fields rather than naming them, so isEnvelope and
// isEmpty stay right when Input or events.CloudWatchEvent gains one.
func blank(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() && v.CanInterface() {
			return v.Interface().(time.Time).IsZero()
		}
		for i := range v.NumField() {
			if !blank(v.Field(i)) {
				return false
			}
		}
		return true
	}
	return v.IsZero()
}

// Resolve returns the snapshot date and trigger kind, refusing unknown event
// shapes and dates that cannot describe now. The date comes from the
// trigger, so a retry of the same trigger lands in the same partition:
// snapshot_date, else scheduled_time, else the scheduled event's time, else
// today (UTC) at started, when the execution started (zero: now), so that a
// plan retried across midnight keeps its date.
//
//   - A scheduled trigger exports the UTC date of its scheduled time, for
//     DateWindow after it (force lifts that limit).
//   - A manual snapshot_date must be today at started, unless force is set.
//   - No date is after today, or before the projection's start.
func (in *Input) Resolve(now, started time.Time, projectionStart string) (date, trigger string, err error) {
	if started.IsZero() {
		started = now
	}
	var at time.Time
	switch {
	case in.isEnvelope():
		if in.Source != scheduledSource || in.DetailType != scheduledDetailType {
			return "", "", fmt.Errorf("export: the event has source %q and detail-type %q: the export takes only an EventBridge %q event from %s, an EventBridge Scheduler input {\"scheduled_time\":…}, or a manual input {\"snapshot_date\":\"YYYY-MM-DD\"}; check the rule or schedule that targets this function",
				in.Source, in.DetailType, scheduledDetailType, scheduledSource)
		}
		if in.ScheduledTime != "" || in.SnapshotDate != "" {
			return "", "", fmt.Errorf("export: a scheduled event must not also carry scheduled_time or snapshot_date: use one trigger shape")
		}
		if in.Time.IsZero() {
			return "", "", fmt.Errorf("export: the scheduled event has no time: EventBridge always sets it, so check what sent this event")
		}
		at, trigger = in.Time, TriggerEventBridge
	case in.ScheduledTime != "":
		if in.SnapshotDate != "" {
			return "", "", fmt.Errorf("export: the input has both scheduled_time and snapshot_date: keep one")
		}
		t, err := workos.ParseTime(in.ScheduledTime)
		if err != nil {
			return "", "", fmt.Errorf("export: input scheduled_time (the Scheduler input should be {\"scheduled_time\":\"<aws.scheduler.scheduled-time>\"}): %w", err)
		}
		at, trigger = t, TriggerScheduler
	case in.SnapshotDate != "":
		if _, err := snapshot.ParseDate(in.SnapshotDate); err != nil {
			return "", "", fmt.Errorf("export: input snapshot_date: %w", err)
		}
		date, trigger = in.SnapshotDate, TriggerManual
	default:
		at, trigger = started, TriggerNow
	}
	if !at.IsZero() {
		date = at.UTC().Format(schema.PartitionFormat)
	}
	if err := CheckDate(date, now, projectionStart); err != nil {
		return "", "", err
	}
	if today := started.UTC().Format(schema.PartitionFormat); trigger == TriggerManual && date != today && !in.Force {
		return "", "", fmt.Errorf("export: snapshot_date %s is not today (%s UTC): WorkOS keeps no history, so the snapshot would hold today's data under another date; leave the date out to export today, or set \"force\": true in the input to write today's data under %s on purpose", date, today, date)
	}
	// A trigger is late when its scheduled time (or its execution's start)
	// is more than DateWindow ago: a scheduled time later today is harmless
	// (CheckDate refuses a later date).
	if trigger == TriggerManual || trigger == TriggerNow {
		at = started
	}
	if late := now.Sub(at); late > DateWindow && !in.Force {
		return "", "", fmt.Errorf("export: the trigger was scheduled or started at %s, %s ago, more than the %s an export may be late (the scheduler's retries, a wait for another date's run): its data would be today's under the date %s; start a new export for today, or set \"force\": true to write today's data under %s on purpose",
			at.UTC().Format(time.RFC3339), late.Round(time.Minute), DateWindow, date, date)
	}
	return date, trigger, nil
}

// CheckDate refuses a snapshot date that no query would see: outside the
// Athena projection range that starts at projectionStart ("" for
// schema.DefaultProjectionStart) and ends at today (UTC).
func CheckDate(date string, now time.Time, projectionStart string) error {
	d, err := snapshot.ParseDate(date)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	projectionStart = cmp.Or(projectionStart, schema.DefaultProjectionStart)
	start, err := snapshot.ParseDate(projectionStart)
	if err != nil {
		return fmt.Errorf("export: projection start: %w", err)
	}
	today := now.UTC().Truncate(24 * time.Hour)
	if d.Before(start) {
		return fmt.Errorf("export: snapshot date %s is before the Athena projection range, which starts at %s, so no query would see it; WorkOS keeps no history, so a snapshot can only describe now: leave the date out to export today", date, projectionStart)
	}
	if d.After(today) {
		return fmt.Errorf("export: snapshot date %s is in the future (today is %s UTC): Athena's projection range ends at today (UTC), so no query would see it until then; leave the date out to export today", date, today.Format(schema.PartitionFormat))
	}
	return nil
}

// Apply copies the input's overrides onto cfg. A filter given with only blank
// entries is an error, not "everything". cfg is checked as a whole by
// export.Config.Validate afterwards.
func (in *Input) Apply(cfg *export.Config) error {
	if len(in.DirectoryIDs) > 0 {
		if cfg.DirectoryIDs = trimAll(in.DirectoryIDs); len(cfg.DirectoryIDs) == 0 {
			return fmt.Errorf("export: input directory_ids has only blank entries: list directory IDs or leave it out to export every directory")
		}
	}
	if len(in.OrganizationIDs) > 0 {
		if cfg.OrganizationIDs = trimAll(in.OrganizationIDs); len(cfg.OrganizationIDs) == 0 {
			return fmt.Errorf("export: input organization_ids has only blank entries: list organization IDs or leave it out to export every organization")
		}
	}
	if in.MembershipMode != "" {
		cfg.MembershipMode = in.MembershipMode
	}
	if in.Mode != "" {
		cfg.Mode = in.Mode
	}
	return nil
}

// DecodeInput decodes an input event strictly: an unknown field is an error
// that names it, so a typo ("snapshot_dt") is not silently ignored.
func DecodeInput(b []byte) (Input, error) {
	var in Input
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Input{}, fmt.Errorf("export: the input is not a valid export event: %w", err)
	}
	return in, nil
}

func trimAll(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
