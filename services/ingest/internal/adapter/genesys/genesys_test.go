package genesys

import (
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

// TestConversation replays a recorded inbound call: it enters the queue, an agent answers it
// after 25.4 s, the agent's part ends with 342 s interacting, 30.5 s of it on hold.
func TestConversation(t *testing.T) {
	want := map[string][]string{
		"01-acd-start": {"call_offered"},
		"02-acd-end":   {"call_answered"},
		"03-user-end":  {"call_ended"},
	}
	events, _ := adaptertest.CheckConversation(t, New(), filepath.Join("testdata", "conversation"), want)
	answered, ended := events[1].Call, events[2].Call
	if answered.WaitSeconds != 25.4 || answered.AgentID != "1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b" {
		t.Errorf("answered %+v, want a 25.4 s wait and the answering user", answered)
	}
	if ended.TalkSeconds != 342 || ended.HoldSeconds != 30.5 || ended.AgentID != answered.AgentID {
		t.Errorf("ended %+v, want 342 s talk, 30.5 s hold, the same agent", ended)
	}
	for _, ev := range events {
		if ev.Call.QueueID != "7c2d9a1e-3b4f-4c5d-9e6f-0a1b2c3d4e5f" || ev.Call.Direction != "inbound" {
			t.Errorf("%s: %+v, want the queue and inbound", ev.Type, ev.Call)
		}
	}
}

// A redelivery, or the same step told again by another detail event (a second acd.end once the
// call is transferred to another queue), keeps the event id.
func TestRedeliveryKeepsEventIDs(t *testing.T) {
	d := adaptertest.Delivery(t, "testdata", "acd-end-answered")
	first, err := adaptertest.Retry(t, New(), d, nil)
	if err != nil || len(first.Events) != 1 {
		t.Fatalf("%v %+v", err, first)
	}
	transferred := d
	transferred.Body = []byte(strings.ReplaceAll(string(d.Body), "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "ffffffff-e5f6-4a7b-8c9d-0e1f2a3b4c5d"))
	if again := adaptertest.One(t, New(), transferred); again.ID != first.Events[0].ID {
		t.Error("a second answer of the same conversation got a new event id")
	}
	offered := adaptertest.One(t, New(), adaptertest.Delivery(t, "testdata", "acd-start"))
	if offered.ID == first.Events[0].ID {
		t.Error("the offer shares the answer's event id")
	}
}

func TestProblems(t *testing.T) {
	const topic = `"topicName":"v2.detail.events.conversation.c-1.`
	tests := []struct {
		name, body, field string
	}{
		{"no media type", `{` + topic + `acd.start","eventBody":{"conversationId":"c-1","eventTime":1795520400000,"direction":"INBOUND"}}`, "eventBody.mediaType"},
		{"no event time", `{` + topic + `acd.start","eventBody":{"conversationId":"c-1","mediaType":"VOICE","direction":"INBOUND"}}`, "eventBody.eventTime"},
		{"no outcome", `{` + topic + `acd.end","eventBody":{"conversationId":"c-1","mediaType":"VOICE","eventTime":1795520400000,"direction":"INBOUND"}}`, "eventBody.acdOutcome"},
		{"duration a string", `{` + topic + `user.end","eventBody":{"conversationId":"c-1","mediaType":"VOICE","eventTime":1795520400000,"direction":"INBOUND","userId":"u","interactingDurationMs":"5"}}`, "eventBody.interactingDurationMs"},
		{"duration over a day", `{` + topic + `user.end","eventBody":{"conversationId":"c-1","mediaType":"VOICE","eventTime":1795520400000,"direction":"INBOUND","userId":"u","heldDurationMs":86400001}}`, "eventBody.heldDurationMs"},
		{"topic without an event", `{"topicName":"v2.detail.events.conversation.c-1","eventBody":{}}`, "topicName"},
		{"no event body", `{` + topic + `acd.start"}`, "eventBody"},
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

// An acw event is skipped whatever its body holds, never refused; the detail names the wrap-up
// (wrapupDurationMs) when it is a valid duration.
func TestAfterCallWork(t *testing.T) {
	const topic = `"topicName":"v2.detail.events.conversation.c-1.acw"`
	tests := []struct {
		name, body, wantDetail string
	}{
		{"wrap-up", `{` + topic + `,"eventBody":{"conversationId":"c-1","mediaType":"VOICE","wrapupDurationMs":45250}}`,
			`topic "v2.detail.events.conversation.c-1.acw": wrap-up of 45.25 s not counted`},
		{"no wrap-up", `{` + topic + `,"eventBody":{"conversationId":"c-1","wrapupCode":"w-1"}}`, `topic "v2.detail.events.conversation.c-1.acw"`},
		{"wrap-up a string", `{` + topic + `,"eventBody":{"wrapupDurationMs":"45000"}}`, `topic "v2.detail.events.conversation.c-1.acw"`},
		{"wrap-up negative", `{` + topic + `,"eventBody":{"wrapupDurationMs":-1}}`, `topic "v2.detail.events.conversation.c-1.acw"`},
		{"wrap-up over a day", `{` + topic + `,"eventBody":{"wrapupDurationMs":86400001}}`, `topic "v2.detail.events.conversation.c-1.acw"`},
		{"no event body", `{` + topic + `}`, `topic "v2.detail.events.conversation.c-1.acw"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := New().Map(adapter.Delivery{Body: []byte(tt.body)})
			if err != nil {
				t.Fatalf("Map: %v; want the event skipped", err)
			}
			if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != SkipAfterCallWork || res.Skipped[0].Detail != tt.wantDetail {
				t.Errorf("%+v, want skipped as %s with detail %q", res, SkipAfterCallWork, tt.wantDetail)
			}
		})
	}
}
