package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/dsync-export/dsync-export/pkg/export"
)

func TestBlankFiltersInInputAreRefused(t *testing.T) {
	cfg := export.DefaultConfig()
	for _, in := range []Input{{DirectoryIDs: []string{"", " "}}, {OrganizationIDs: []string{"  "}}} {
		if err := in.Apply(&cfg); err == nil || !strings.Contains(err.Error(), "blank") {
			t.Errorf("Apply(%+v) = %v, want a blank-entries error", in, err)
		}
	}
	in := Input{DirectoryIDs: []string{" directory_01ABC "}, MembershipMode: "by_user"}
	if err := in.Apply(&cfg); err != nil || cfg.DirectoryIDs[0] != "directory_01ABC" || cfg.MembershipMode != "by_user" {
		t.Errorf("Apply: %v, cfg %+v", err, cfg)
	}
}

func TestInputResolve(t *testing.T) {
	now := time.Date(2026, 11, 28, 23, 59, 0, 0, time.UTC)
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	sched := func(ts string) Input {
		return Input{CloudWatchEvent: events.CloudWatchEvent{Source: "aws.events", DetailType: "Scheduled Event", Time: at(ts)}}
	}
	for _, tc := range []struct {
		name        string
		in          Input
		date, trig  string
		wantErrPart []string
	}{
		{name: "manual", in: Input{SnapshotDate: "2026-11-28"}, date: "2026-11-28", trig: TriggerManual},
		{name: "manual tomorrow", in: Input{SnapshotDate: "2026-11-29"}, wantErrPart: []string{"2026-11-29", "future"}},
		{name: "manual tomorrow forced", in: Input{SnapshotDate: "2026-11-29", Force: true}, wantErrPart: []string{"2026-11-29", "future"}},
		// Issue 22: the slack is the scheduler's only; a manual date other
		// than today needs force, even yesterday, a minute before midnight.
		{name: "manual yesterday", in: Input{SnapshotDate: "2026-11-27"}, wantErrPart: []string{"2026-11-27", "not today", "force"}},
		{name: "manual yesterday forced", in: Input{SnapshotDate: "2026-11-27", Force: true}, date: "2026-11-27", trig: TriggerManual},
		{name: "scheduler", in: Input{ScheduledTime: "2026-11-28T02:00:00Z"}, date: "2026-11-28", trig: TriggerScheduler},
		{name: "scheduled event", in: sched("2026-11-28T00:30:00Z"), date: "2026-11-28", trig: TriggerEventBridge},
		{name: "scheduled event 24h ago", in: sched("2026-11-27T23:59:00Z"), date: "2026-11-27", trig: TriggerEventBridge},
		{name: "scheduled event 24h01 ago", in: sched("2026-11-27T23:58:00Z"), wantErrPart: []string{"2026-11-27", "more than the 24h0m0s", "force"}},
		{name: "scheduled event 24h01 ago forced", in: func() Input { in := sched("2026-11-27T23:58:00Z"); in.Force = true; return in }(), date: "2026-11-27", trig: TriggerEventBridge},
		{name: "scheduler in the future", in: Input{ScheduledTime: "2026-11-29T01:00:00Z"}, wantErrPart: []string{"2026-11-29", "future"}},
		{name: "scheduler ahead of the clock", in: Input{ScheduledTime: "2026-11-28T23:59:30Z"}, date: "2026-11-28", trig: TriggerScheduler},
		{name: "empty", in: Input{}, date: "2026-11-28", trig: TriggerNow},
		{name: "bad date", in: Input{SnapshotDate: "2026-13-01"}, wantErrPart: []string{"2026-13-01"}},
		{name: "bad scheduled_time", in: Input{ScheduledTime: "tomorrow"}, wantErrPart: []string{"scheduled_time"}},
		{name: "both dates", in: Input{SnapshotDate: "2026-11-28", ScheduledTime: "2026-11-28T02:00:00Z"}, wantErrPart: []string{"keep one"}},
		// Item 2: a date that cannot describe now.
		{name: "before projection", in: Input{SnapshotDate: "2020-01-01"}, wantErrPart: []string{"2020-01-01", "projection range"}},
		{name: "before projection forced", in: Input{SnapshotDate: "2020-01-01", Force: true}, wantErrPart: []string{"projection range"}},
		{name: "far future", in: Input{SnapshotDate: "2099-12-31"}, wantErrPart: []string{"2099-12-31", "future"}},
		{name: "far future forced", in: Input{SnapshotDate: "2099-12-31", Force: true}, wantErrPart: []string{"future"}},
		{name: "a week ago", in: Input{SnapshotDate: "2026-11-21"}, wantErrPart: []string{"2026-11-21", "not today", "force"}},
		{name: "a week ago forced", in: Input{SnapshotDate: "2026-11-21", Force: true}, date: "2026-11-21", trig: TriggerManual},
		{name: "old scheduler retry", in: Input{ScheduledTime: "2026-11-20T02:00:00Z"}, wantErrPart: []string{"2026-11-20", "more than the"}},
		// Item 20: only the known trigger shapes.
		{name: "zero-time S3 event", in: Input{CloudWatchEvent: events.CloudWatchEvent{Source: "aws.s3", DetailType: "Object Created", Time: time.Time{}}}, wantErrPart: []string{`"aws.s3"`, `"Object Created"`}},
		{name: "S3 event", in: Input{CloudWatchEvent: events.CloudWatchEvent{Source: "aws.s3", DetailType: "Object Created", Time: at("2026-11-28T02:00:00Z")}}, wantErrPart: []string{`"aws.s3"`, `"Object Created"`}},
		{name: "time and id only", in: Input{CloudWatchEvent: events.CloudWatchEvent{ID: "x", Time: at("2026-11-28T00:00:00Z")}}, wantErrPart: []string{`source ""`}},
		{name: "scheduled event with zero time", in: Input{CloudWatchEvent: events.CloudWatchEvent{Source: "aws.events", DetailType: "Scheduled Event"}}, wantErrPart: []string{"no time"}},
		{name: "scheduled event of 2020", in: sched("2020-01-01T02:00:00Z"), wantErrPart: []string{"projection range"}},
	} {
		date, trig, err := tc.in.Resolve(now, time.Time{}, "")
		if tc.wantErrPart != nil {
			if err == nil {
				t.Errorf("%s: resolved to %s %s, want an error", tc.name, date, trig)
				continue
			}
			for _, w := range tc.wantErrPart {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: err %v, want mention of %q", tc.name, err, w)
				}
			}
			continue
		}
		if err != nil || date != tc.date || trig != tc.trig {
			t.Errorf("%s: got %q %q %v, want %q %q", tc.name, date, trig, err, tc.date, tc.trig)
		}
	}
	// An S3 notification decoded from JSON is refused as well.
	in, err := DecodeInput([]byte(`{"version":"0","source":"aws.s3","detail-type":"Object Created","time":"0001-01-01T00:00:00Z","detail":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := in.Resolve(now, time.Time{}, ""); err == nil || !strings.Contains(err.Error(), "aws.s3") {
		t.Errorf("S3 event JSON: err %v", err)
	}
	// A stack whose projection starts later refuses dates before its start.
	if _, _, err := (&Input{SnapshotDate: "2026-11-27", Force: true}).Resolve(now, time.Time{}, "2026-11-28"); err == nil || !strings.Contains(err.Error(), "starts at 2026-11-28") {
		t.Errorf("date before a configured projection start: err %v", err)
	}
	const DateWindowPlus = DateWindow + time.Minute
	// Issue 22: {} and a manual date resolve at the execution's start, so a
	// plan retried across midnight keeps its date.
	started := time.Date(2026, 11, 27, 23, 59, 30, 0, time.UTC)
	later := time.Date(2026, 11, 28, 0, 0, 30, 0, time.UTC)
	if date, _, err := (&Input{}).Resolve(later, started, ""); err != nil || date != "2026-11-27" {
		t.Errorf("{} retried across midnight: %q %v, want the execution's date 2026-11-27", date, err)
	}
	if date, _, err := (&Input{SnapshotDate: "2026-11-27"}).Resolve(later, started, ""); err != nil || date != "2026-11-27" {
		t.Errorf("today's manual date retried across midnight: %q %v, want 2026-11-27 without force", date, err)
	}
	// An execution's plan retried (or waiting for another date) more than
	// DateWindow after its start is refused.
	if _, _, err := (&Input{}).Resolve(started.Add(DateWindowPlus), started, ""); err == nil || !strings.Contains(err.Error(), "force") {
		t.Errorf("{} resolved a day and a minute after its execution started: %v, want a refusal naming force", err)
	}
	if _, err := DecodeInput([]byte(`{"snapshot_dt":"2026-11-28"}`)); err == nil || !strings.Contains(err.Error(), "snapshot_dt") {
		t.Errorf("a misspelt field: err %v, want it named", err)
	}
}

// TestInputIsEmpty: a step refuses any trigger field at its top level, and
// every field of Input counts, the EventBridge envelope's included, without
// a list to keep up to date; empty lists and the zero time are not set.
func TestInputIsEmpty(t *testing.T) {
	for _, js := range []string{`{}`, `{"directory_ids":[],"organization_ids":null,"resources":[]}`,
		`{"time":"0001-01-01T00:00:00Z"}`, `{"time":"0001-01-01T00:00:00+00:00"}`, `{"force":false,"snapshot_date":""}`} {
		in, err := DecodeInput([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		if !in.isEmpty() || in.isEnvelope() {
			t.Errorf("%s: isEmpty %v, isEnvelope %v; want empty", js, in.isEmpty(), in.isEnvelope())
		}
	}
	set := map[string]string{
		"version": `"0"`, "id": `"x"`, "detail-type": `"Scheduled Event"`, "source": `"aws.events"`, "account": `"123456789012"`,
		"time": `"2026-11-28T00:00:00Z"`, "region": `"eu-west-1"`, "resources": `["arn:x"]`, "detail": `{}`,
		"scheduled_time": `"2026-11-28T02:00:00Z"`, "snapshot_date": `"2026-11-28"`, "force": `true`,
		"directory_ids": `["d"]`, "organization_ids": `["o"]`, "membership_mode": `"by_user"`, "mode": `"full"`,
	}
	envelope := map[string]bool{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[events.CloudWatchEvent]()) {
		envelope[strings.Split(f.Tag.Get("json"), ",")[0]] = true
	}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Input]()) {
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if f.Anonymous {
			continue
		}
		v, ok := set[name]
		if !ok {
			t.Errorf("field %s (%q) has no value in this test", f.Name, name)
			continue
		}
		js := `{"` + name + `":` + v + `}`
		in, err := DecodeInput([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		if in.isEmpty() || in.isEnvelope() != envelope[name] {
			t.Errorf("%s: isEmpty %v, isEnvelope %v; want set, envelope %v", js, in.isEmpty(), in.isEnvelope(), envelope[name])
		}
	}
}
