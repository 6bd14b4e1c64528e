package export

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

// Trigger kinds recorded in the manifest.
const (
	TriggerEventBridge = "eventbridge" // an EventBridge scheduled rule (aws.events)
	TriggerScheduler   = "scheduler"   // an EventBridge Scheduler input
	TriggerManual      = "manual"      // a hand-written input with snapshot_date
	TriggerNow         = "now"         // no date in the input: today in UTC
)

// Input is the export function's event. One struct accepts every trigger:
//
//   - the EventBridge scheduled event ({"detail-type":"Scheduled Event","time":…});
//   - an EventBridge Scheduler input ({"scheduled_time":"<aws.scheduler.scheduled-time>"});
//   - a manual input ({"snapshot_date":"2026-11-28", "directory_ids":[…], …}).
type Input struct {
	// EventBridge envelope (events.CloudWatchEvent's fields).
	Version    string          `json:"version,omitempty"`
	ID         string          `json:"id,omitempty"`
	DetailType string          `json:"detail-type,omitempty"`
	Source     string          `json:"source,omitempty"`
	Account    string          `json:"account,omitempty"`
	Time       string          `json:"time,omitempty"`
	Region     string          `json:"region,omitempty"`
	Resources  []string        `json:"resources,omitempty"`
	Detail     json.RawMessage `json:"detail,omitempty"`

	// ScheduledTime is set by an EventBridge Scheduler input template.
	ScheduledTime string `json:"scheduled_time,omitempty"`

	// Manual overrides.
	SnapshotDate    string   `json:"snapshot_date,omitempty"`
	DirectoryIDs    []string `json:"directory_ids,omitempty"`
	OrganizationIDs []string `json:"organization_ids,omitempty"`
	MembershipMode  string   `json:"membership_mode,omitempty"`
}

// Resolve returns the snapshot date and trigger kind. The date comes from the
// trigger, so a retry of the same trigger lands in the same partition:
// snapshot_date, else scheduled_time, else the event's time, else now (UTC).
func (in *Input) Resolve(now time.Time) (date, trigger string, err error) {
	switch {
	case in.SnapshotDate != "":
		if _, err := snapshot.ParseDate(in.SnapshotDate); err != nil {
			return "", "", fmt.Errorf("export: input snapshot_date: %w", err)
		}
		return in.SnapshotDate, TriggerManual, nil
	case in.ScheduledTime != "":
		t, err := workos.ParseTime(in.ScheduledTime)
		if err != nil {
			return "", "", fmt.Errorf("export: input scheduled_time (the Scheduler input should be {\"scheduled_time\":\"<aws.scheduler.scheduled-time>\"}): %w", err)
		}
		return t.UTC().Format(snapshot.DateLayout), TriggerScheduler, nil
	case in.Time != "":
		t, err := workos.ParseTime(in.Time)
		if err != nil {
			return "", "", fmt.Errorf("export: event time: %w", err)
		}
		return t.UTC().Format(snapshot.DateLayout), TriggerEventBridge, nil
	}
	return now.UTC().Format(snapshot.DateLayout), TriggerNow, nil
}

// Apply copies the input's overrides onto cfg. A filter given with only blank
// entries is an error, not "everything".
func (in *Input) Apply(cfg *Config) error {
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
	return nil
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
