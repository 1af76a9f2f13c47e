package ringcentral

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
)

// The fixtures' sources are listed in testdata/README.md.

func TestGolden(t *testing.T) {
	adaptertest.Golden(t, New(), "testdata")
}

// TestConversation replays a recorded call-queue call: it rings the agent's extension, the agent
// answers 25 s later, the call ends.
func TestConversation(t *testing.T) {
	want := map[string][]string{
		"01-proceeding":   {"call_offered"},
		"02-answered":     {"call_answered"},
		"03-disconnected": {"call_ended"},
	}
	events, _ := adaptertest.CheckConversation(t, New(), filepath.Join("testdata", "conversation"), want)
	for _, ev := range events {
		if ev.Call.QueueID != "62264400" || ev.Call.Direction != "inbound" || ev.Call.TicketID != "" {
			t.Errorf("%s: call %+v, want queue 62264400, inbound, no linked ticket", ev.Type, ev.Call)
		}
	}
	if a := events[1].Call.AgentID; a != "62264425" {
		t.Errorf("answered by %q, want the agent's extension 62264425", a)
	}
	if d := events[1].OccurredAt.Sub(events[0].OccurredAt).Seconds(); d != 25 {
		t.Errorf("answered %v s after the offer, want 25", d)
	}
}

// A redelivered notification, and the Answered RingCentral reports again after a hold (another
// sequence, another eventTime), count once; the call's other steps do not share its id.
func TestRedeliveryKeepsEventIDs(t *testing.T) {
	d := adaptertest.Delivery(t, "testdata", "answered-inbound")
	first, err := adaptertest.Retry(t, New(), d, nil)
	if err != nil || len(first.Events) != 1 {
		t.Fatalf("%v %+v", err, first)
	}
	again := d
	again.Body = []byte(strings.NewReplacer(`"sequence": 3`, `"sequence": 6`, "11:40:00.000Z", "11:43:10.000Z").Replace(string(d.Body)))
	afterHold := adaptertest.One(t, New(), again)
	if afterHold.ID != first.Events[0].ID {
		t.Error("Answered after a hold got a new event id: the call would be answered twice")
	}
	if afterHold.OccurredAt.Equal(first.Events[0].OccurredAt) {
		t.Fatal("the test did not change the event time")
	}
	ended := adaptertest.One(t, New(), adaptertest.Delivery(t, "testdata", "disconnected-ended"))
	if ended.ID == first.Events[0].ID {
		t.Error("the end of the call shares the answer's event id")
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name, body, field string
	}{
		{"party status missing", `{"event":"/restapi/v1.0/account/~/telephony/sessions","body":{"telephonySessionId":"s-1","eventTime":"2026-11-24T11:40:00Z","parties":[{"id":"p-1","extensionId":"1","direction":"Inbound"}]}}`, "body.parties[0].status.code"},
		{"party id missing", `{"event":"/restapi/v1.0/account/~/telephony/sessions","body":{"telephonySessionId":"s-1","eventTime":"2026-11-24T11:40:00Z","parties":[{"extensionId":"1","direction":"Inbound","status":{"code":"Answered"}}]}}`, "body.parties[0].id"},
		{"parties not an array", `{"event":"/restapi/v1.0/account/~/telephony/sessions","body":{"telephonySessionId":"s-1","eventTime":"2026-11-24T11:40:00Z","parties":{}}}`, "body.parties"},
		{"no event", `{"body":{}}`, "event"},
		{"no body", `{"event":"/restapi/v1.0/account/~/telephony/sessions"}`, "body"},
		{"session id with a control character", `{"event":"/restapi/v1.0/account/~/telephony/sessions","body":{"telephonySessionId":"s-\u0001","eventTime":"2026-11-24T11:40:00Z","parties":[]}}`, "body.telephonySessionId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adaptertest.Problem(t, New(), adapter.Delivery{Body: []byte(tt.body)}, tt.field)
		})
	}
}

func FuzzMap(f *testing.F) {
	adaptertest.Fuzz(f, New(), "testdata")
}

// Only a token RingCentral could have sent is echoed: at most 1024 printable ASCII bytes.
func TestHandshakeEchoesOnlyAToken(t *testing.T) {
	for _, tt := range []struct {
		name, token string
		ok          bool
	}{
		{"token", "3c1a7b8e-0f2d", true},
		{"absent", "", false},
		{"1024 bytes", strings.Repeat("a", 1024), true},
		{"1025 bytes", strings.Repeat("a", 1025), false},
		{"space", "3c1a 7b8e", false},
		{"control byte", "3c1a\x017b8e", false},
		{"non-ASCII", "3c1a✓", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.token != "" {
				h["Validation-Token"] = []string{tt.token}
			}
			name, value, ok := Adapter{}.Handshake(h)
			if ok != tt.ok || (ok && (name != "Validation-Token" || value != tt.token)) {
				t.Errorf("Handshake = %q, %q, %v; want the token back: %v", name, value, ok, tt.ok)
			}
		})
	}
}
