package genesys

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// The fixtures' sources are listed in testdata/README.md.

func TestGolden(t *testing.T) {
	adaptertest.Golden(t, New(), "testdata")
}

// TestConversation replays a recorded inbound call: it enters the queue, an agent answers it
// after 25.4 s, the agent's part ends with 342 s interacting, 30.5 s of it on hold, and the
// after-call work takes 45 s.
func TestConversation(t *testing.T) {
	want := map[string][]string{
		"01-acd-start": {"call_offered"},
		"02-acd-end":   {"call_answered"},
		"03-user-end":  {"call_ended"},
		"04-acw":       {"call_ended"},
	}
	events, _ := adaptertest.CheckConversation(t, New(), filepath.Join("testdata", "conversation"), want)
	answered, ended := events[1].Call, events[2].Call
	if answered.WaitSeconds != 25.4 || answered.AgentID != "1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b" {
		t.Errorf("answered %+v, want a 25.4 s wait and the answering user", answered)
	}
	if ended.TalkSeconds != 342 || ended.HoldSeconds != 30.5 || ended.AgentID != answered.AgentID {
		t.Errorf("ended %+v, want 342 s talk, 30.5 s hold, the same agent", ended)
	}
	if wrap := events[3]; wrap.Call.WrapUpSeconds != 45 || wrap.Call.TalkSeconds != 0 || wrap.Call.AgentID != answered.AgentID || wrap.ID == events[2].ID {
		t.Errorf("wrap-up %+v (call %+v), want 45 s of wrap-up alone, the same agent, its own event id", wrap, wrap.Call)
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

// An acw event is the call's wrap-up: a call_ended of its own (its own event id, so user.end's
// still counts) giving only wrap_up_seconds; without a wrapupDurationMs it tells nothing and is
// skipped; a wrap-up that is no duration is refused naming the field.
func TestAfterCallWork(t *testing.T) {
	const topic = `"topicName":"v2.detail.events.conversation.c-1.acw"`
	const call = `"conversationId":"c-1","mediaType":"VOICE","direction":"INBOUND","userId":"u-1","eventTime":1795520812400`
	tests := []struct {
		name, body string
		wantWrap   float64 // seconds, when mapped
		wantSkip   bool
		wantField  string // when refused
	}{
		{name: "wrap-up", body: `{` + topic + `,"eventBody":{` + call + `,"wrapupDurationMs":45250}}`, wantWrap: 45.25},
		{name: "no wrap-up", body: `{` + topic + `,"eventBody":{` + call + `,"wrapupCode":"w-1"}}`, wantSkip: true},
		{name: "wrap-up a string", body: `{` + topic + `,"eventBody":{` + call + `,"wrapupDurationMs":"45000"}}`, wantField: "eventBody.wrapupDurationMs"},
		{name: "wrap-up negative", body: `{` + topic + `,"eventBody":{` + call + `,"wrapupDurationMs":-1}}`, wantField: "eventBody.wrapupDurationMs"},
		{name: "wrap-up over a day", body: `{` + topic + `,"eventBody":{` + call + `,"wrapupDurationMs":86400001}}`, wantField: "eventBody.wrapupDurationMs"},
		{name: "no agent", body: `{` + topic + `,"eventBody":{"conversationId":"c-1","mediaType":"VOICE","direction":"INBOUND","eventTime":1795520812400,"wrapupDurationMs":1000}}`, wantField: "eventBody.userId"},
		{name: "no event body", body: `{` + topic + `}`, wantField: "eventBody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := New().Map(adapter.Delivery{Body: []byte(tt.body)})
			if tt.wantField != "" {
				var p canonical.Problems
				if !errors.As(err, &p) || len(p.List) != 1 || p.List[0].Field != tt.wantField {
					t.Fatalf("Map = %+v, %v; want refused naming %s", res, err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			if tt.wantSkip {
				if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != SkipAfterCallWork {
					t.Errorf("%+v, want skipped as %s", res, SkipAfterCallWork)
				}
				return
			}
			if len(res.Events) != 1 {
				t.Fatalf("%+v, want one event", res)
			}
			ev := res.Events[0]
			if ev.Type != "call_ended" || ev.Call == nil || ev.Call.WrapUpSeconds != tt.wantWrap || ev.Call.TalkSeconds != 0 || ev.Call.AgentID != "u-1" {
				t.Errorf("event %+v (call %+v), want a call_ended of u-1 giving only %v s of wrap-up", ev, ev.Call, tt.wantWrap)
			}
			if ev.ID == adapter.EventID(Source, "c-1", "call_ended") {
				t.Errorf("the wrap-up has user.end's event id %s: one of them would be dropped as a duplicate", ev.ID)
			}
		})
	}
}
