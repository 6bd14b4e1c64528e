package export

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

const (
	tDir   = "directory_01HX00000000000000000000D1"
	tUser  = "directory_user_01HX000000000000000000U1"
	tGroup = "directory_group_01HX00000000000000000G1"
	tGrp2  = "directory_group_01HX00000000000000000G2"
)

var tBase = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// tEvent is one event of the delta unit's tests: seq orders its id, at is
// its payload's updated_at in minutes after tBase.
type tEvent struct {
	seq   int
	typ   string
	user  string
	group string
	at    int
}

func (te tEvent) event(t *testing.T) workos.Event {
	t.Helper()
	at := workos.Time{Time: tBase.Add(time.Duration(te.at) * time.Minute)}
	user := workos.DirectoryUser{Object: "directory_user", ID: te.user, DirectoryID: tDir, OrganizationID: "org_01HX0000000000000000000001", State: "active", CreatedAt: workos.Time{Time: tBase}, UpdatedAt: at}
	group := workos.DirectoryGroup{Object: "directory_group", ID: te.group, DirectoryID: tDir, OrganizationID: "org_01HX0000000000000000000001", Name: "g", CreatedAt: workos.Time{Time: tBase}, UpdatedAt: at}
	var data any
	switch te.typ {
	case workos.EventGroupUserAdded, workos.EventGroupUserRemoved:
		data = workos.MembershipEvent{DirectoryID: tDir, User: user, Group: group}
	case workos.EventGroupCreated, workos.EventGroupUpdated, workos.EventGroupDeleted:
		data = group
	default:
		data = user
	}
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return workos.Event{Object: "event", ID: fmt.Sprintf("event_01HX%022d", te.seq), Event: te.typ, Data: b, CreatedAt: workos.Time{Time: tBase.Add(time.Duration(te.seq) * time.Second)}}
}

// stagedChanges stages events (in the order given, which need not be id
// order) as a plan's events and folds them as the delta unit does.
func stagedChanges(t *testing.T, events ...tEvent) *changes {
	t.Helper()
	ctx := context.Background()
	st, err := objstore.Open(ctx, t.TempDir(), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := func(part int) string {
		return snapshot.EventsStageKey("2026-11-02", "20261102T000000.000Z-000001", "a1b2c3d4", part)
	}
	tw, err := startTable[schema.DirectoryEvent](ctx, st, schema.TableEvents, key, DefaultConfig().Writer, true)
	if err != nil {
		t.Fatal(err)
	}
	var rows []schema.DirectoryEvent
	for _, te := range events {
		e := te.event(t)
		row, err := schema.FromEvent(&e, "2026-11-02")
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	if err := tw.send(ctx, rows); err != nil {
		t.Fatal(err)
	}
	parts, err := tw.finish()
	if err != nil {
		t.Fatal(err)
	}
	p := &Plan{SnapshotTime: tBase.Add(24 * time.Hour), Events: &EventsPlan{}}
	for _, pt := range parts {
		p.Events.Staged = append(p.Events.Staged, snapshot.File{Key: key(pt.Index)})
	}
	ch, err := loadChanges(ctx, st, p, map[string]bool{tDir: true}, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// Item 6: a user deleted and created again with the same id loses every
// membership it had; only memberships added after the re-creation count.
func TestRecreatedUserKeepsNoOldMembership(t *testing.T) {
	ch := stagedChanges(t,
		tEvent{1, workos.EventGroupUserAdded, tUser, tGroup, 1},
		tEvent{2, workos.EventUserDeleted, tUser, "", 2},
		tEvent{3, workos.EventUserCreated, tUser, "", 3},
		tEvent{4, workos.EventGroupUserAdded, tUser, tGrp2, 4},
	)
	if ch.userGone(tUser) {
		t.Fatal("the re-created user is gone")
	}
	// The base's membership of tGroup ended with the deletion.
	if !ch.memberEnded(memberKey{tGroup, tUser}) {
		t.Error("a base membership of the re-created user survives its deletion")
	}
	if cm := ch.members[memberKey{tGroup, tUser}]; cm == nil || ch.memberLive(memberKey{tGroup, tUser}, cm) {
		t.Error("the membership added before the deletion is live")
	}
	if cm := ch.members[memberKey{tGrp2, tUser}]; cm == nil || !ch.memberLive(memberKey{tGrp2, tUser}, cm) {
		t.Error("the membership added after the re-creation is not live")
	}
}

// Item 6, for groups: a group deleted and created again loses its members.
func TestRecreatedGroupKeepsNoOldMember(t *testing.T) {
	ch := stagedChanges(t,
		tEvent{1, workos.EventGroupDeleted, "", tGroup, 1},
		tEvent{2, workos.EventGroupCreated, "", tGroup, 2},
	)
	if !ch.memberEnded(memberKey{tGroup, tUser}) {
		t.Error("a base member of the re-created group survives its deletion")
	}
}

// Item 12: an update older than a held deletion does not bring the user
// back, whichever order the stream served them in.
func TestStaleUpdateAfterDeleteKeepsTheUserDeleted(t *testing.T) {
	for _, order := range [][]tEvent{
		{{1, workos.EventUserDeleted, tUser, "", 10}, {2, workos.EventUserUpdated, tUser, "", 5}},
		{{2, workos.EventUserUpdated, tUser, "", 5}, {1, workos.EventUserDeleted, tUser, "", 10}},
	} {
		if ch := stagedChanges(t, order...); !ch.userGone(tUser) {
			t.Errorf("events %v: the deleted user came back", order)
		}
	}
	// A newer update after a deletion is a re-creation: it stands.
	if ch := stagedChanges(t, tEvent{1, workos.EventUserDeleted, tUser, "", 10}, tEvent{2, workos.EventUserCreated, tUser, "", 15}); ch.userGone(tUser) {
		t.Error("a user created after its deletion is gone")
	}
}

// Item 8: malformed ids in event payloads are rejected like listed rows:
// counted, never applied, and sampled once.
func TestMalformedEventIDsAreRejected(t *testing.T) {
	ch := stagedChanges(t,
		tEvent{1, workos.EventUserUpdated, "", "", 1},                            // empty id
		tEvent{2, workos.EventUserCreated, tGroup, "", 2},                        // a group id in a user event
		tEvent{3, workos.EventGroupUserAdded, tUser, "directory_user_x1", 3},     // a user id as the group
		tEvent{4, workos.EventUserUpdated, tUser, "", 4},                         // fine
		tEvent{5, workos.EventGroupCreated, "", "directory_01HX0000000000GG", 5}, // a directory id as a group
	)
	if got := ch.rejected[tDir]; got != 4 {
		t.Errorf("rejected %d events, want 4", got)
	}
	if ch.users[""] != nil || ch.users[tGroup] != nil || len(ch.members) != 0 || len(ch.groups) != 0 {
		t.Errorf("a malformed event was applied: users %v, groups %v, members %v", ch.users, ch.groups, ch.members)
	}
	if ch.users[tUser] == nil || ch.applied[tDir] != 1 {
		t.Errorf("the well-formed event was not applied (applied %d)", ch.applied[tDir])
	}
	if ch.sampleReason == "" {
		t.Error("no sample of the rejected events")
	}
}
