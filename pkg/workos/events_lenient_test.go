package workos

import (
	"encoding/json"
	"errors"
	"testing"
)

// Issue 18, item 9: one event whose own created_at is not a timestamp must
// not make its page (and so every read of the stream) undecodable: the page
// decodes, and Payload reports the event as malformed.
func TestEventWithBadCreatedAtDecodesItsPage(t *testing.T) {
	body := `{"object":"list","data":[
		{"object":"event","id":"event_01","event":"dsync.user.updated","data":{"id":"directory_user_01","directory_id":"directory_01"},"created_at":12},
		{"object":"event","id":"event_02","event":"dsync.user.updated","data":{"id":"directory_user_02","directory_id":"directory_01"},"created_at":"2026-11-01T10:00:00.000Z"}
	],"list_metadata":{"after":"event_02"}}`
	var page struct {
		Data []Event `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatalf("the page does not decode: %v", err)
	}
	if len(page.Data) != 2 || page.Data[0].ID != "event_01" || page.Data[1].CreatedAt.IsZero() {
		t.Fatalf("events %+v", page.Data)
	}
	if _, err := page.Data[0].Payload(); !errors.Is(err, ErrEventPayload) {
		t.Errorf("the bad event's Payload: %v, want ErrEventPayload", err)
	}
	if _, err := page.Data[1].Payload(); err != nil {
		t.Errorf("the good event's Payload: %v", err)
	}
}
