package canonical

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// callEv is a call event object of type typ; call is the call object's members, extra members
// of the event are spliced in before it.
func callEv(typ, ticket, extra, call string) string {
	s := `{"id":"c-1-` + typ + `","ticket_id":"` + ticket + `","type":"` + typ + `","occurred_at":"2026-03-02T09:00:00Z","actor":{"id":"ana","kind":"agent"}`
	if extra != "" {
		s += "," + extra
	}
	if call != "" {
		s += `,"call":{` + call + `}`
	}
	return s + "}"
}

func callProto(typ ticketpulsev1.EventType, ticket string, call *ticketpulsev1.CallInfo) *ticketpulsev1.TicketEvent {
	return &ticketpulsev1.TicketEvent{
		Id: "c-1-" + TypeWord(typ), Tenant: "acme", Source: "generic", TicketId: ticket, Type: typ,
		OccurredAt: ts("2026-03-02T09:00:00Z"),
		Actor:      &ticketpulsev1.Actor{Id: "ana", Kind: ticketpulsev1.ActorKind_ACTOR_KIND_AGENT},
		ReceivedAt: timestamppb.New(testNow), Call: call,
	}
}

func TestDecodeCalls(t *testing.T) {
	in := ticketpulsev1.CallDirection_CALL_DIRECTION_INBOUND
	tests := []struct {
		name string
		give string
		want *ticketpulsev1.TicketEvent
	}{
		{
			name: "offered, no ticket: the call id is the ticket id",
			give: callEv("call_offered", "CA-9", "", `"call_id":"CA-9","queue_id":"sales","team_id":"phones","direction":"inbound"`),
			want: callProto(ticketpulsev1.EventType_EVENT_TYPE_CALL_OFFERED, "CA-9",
				&ticketpulsev1.CallInfo{CallId: "CA-9", QueueId: "sales", TeamId: "phones", Direction: in}),
		},
		{
			name: "answered on a linked ticket, wait kept to milliseconds",
			give: callEv("call_answered", "T-77", "", `"call_id":"CA-9","ticket_id":"T-77","agent_id":"ana","direction":"inbound","wait_seconds":12.34567`),
			want: callProto(ticketpulsev1.EventType_EVENT_TYPE_CALL_ANSWERED, "T-77",
				&ticketpulsev1.CallInfo{CallId: "CA-9", TicketId: "T-77", AgentId: "ana", Direction: in, WaitSeconds: 12.346}),
		},
		{
			name: "abandoned",
			give: callEv("call_abandoned", "CA-9", "", `"call_id":"CA-9","direction":"inbound","wait_seconds":40,"agent_id":null`),
			want: callProto(ticketpulsev1.EventType_EVENT_TYPE_CALL_ABANDONED, "CA-9",
				&ticketpulsev1.CallInfo{CallId: "CA-9", Direction: in, WaitSeconds: 40}),
		},
		{
			name: "ended outbound with its durations",
			give: callEv("call_ended", "CA-10", "", `"call_id":"CA-10","agent_id":"ana","direction":"outbound","talk_seconds":300,"hold_seconds":0,"wrap_up_seconds":45.5`),
			want: callProto(ticketpulsev1.EventType_EVENT_TYPE_CALL_ENDED, "CA-10",
				&ticketpulsev1.CallInfo{CallId: "CA-10", AgentId: "ana", Direction: ticketpulsev1.CallDirection_CALL_DIRECTION_OUTBOUND,
					TalkSeconds: 300, WrapUpSeconds: 45.5}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Decode([]byte(tt.give), testOptions())
			if err != nil {
				t.Fatal(err)
			}
			if got := Proto(evs, "acme", testNow); len(got) != 1 || !proto.Equal(got[0], tt.want) {
				t.Errorf("got %v\nwant %v", got, tt.want)
			}
			// The same event built by an adapter is valid and converts the same.
			if err := Validate(evs, testOptions()); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestCallProblems(t *testing.T) {
	okCall := `"call_id":"CA-9","direction":"inbound"`
	tests := []struct {
		name string
		give string
		want []Problem
	}{
		{
			name: "a call event needs its call",
			give: callEv("call_offered", "CA-9", "", ""),
			want: []Problem{{0, "call", "required for call_offered"}},
		},
		{
			name: "call_id and direction are required",
			give: callEv("call_offered", "CA-9", "", `"queue_id":"q"`),
			want: []Problem{{0, "call.call_id", "required"}, {0, "call.direction", "required"}},
		},
		{
			name: "unknown direction, unknown member",
			give: callEv("call_offered", "CA-9", "", `"call_id":"CA-9","direction":"in","skill":"x"`),
			want: []Problem{{0, "call.direction", `unknown value "in"; want one of inbound, outbound`}, {0, "call.skill", "unknown field"}},
		},
		{
			name: "answered needs the agent, even when type comes after call",
			give: `{"id":"e","ticket_id":"CA-9","call":{` + okCall + `},"type":"call_answered","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"system"}}`,
			want: []Problem{{0, "call.agent_id", "required for call_answered (the agent who answered)"}},
		},
		{
			name: "durations: sign, range, kind, and which event may carry them",
			give: callEv("call_offered", "CA-9", "", okCall+`,"wait_seconds":-1,"talk_seconds":"5","hold_seconds":1e9,"wrap_up_seconds":3`),
			want: []Problem{
				{0, "call.wait_seconds", "must be seconds between 0 and 86400"},
				{0, "call.talk_seconds", "must be a JSON number, not a string"},
				{0, "call.hold_seconds", "must be seconds between 0 and 86400"},
				{0, "call.talk_seconds", "talk_seconds, hold_seconds and wrap_up_seconds are only allowed on call_ended"},
			},
		},
		{
			name: "wait on an offer",
			give: callEv("call_offered", "CA-9", "", okCall+`,"wait_seconds":3`),
			want: []Problem{{0, "call.wait_seconds", "not allowed on call_offered (nothing was waited for yet)"}},
		},
		{
			name: "unlinked call: the ticket id must be the call id",
			give: callEv("call_offered", "T-77", "", okCall),
			want: []Problem{{0, "ticket_id", "must equal call.call_id for a call with no ticket (or set call.ticket_id to the linked ticket)"}},
		},
		{
			name: "the ticket id is checked whatever else is wrong with the call",
			give: callEv("call_answered", "T-1", "", okCall+`,"hold_seconds":4`),
			want: []Problem{
				{0, "call.agent_id", "required for call_answered (the agent who answered)"},
				{0, "call.talk_seconds", "talk_seconds, hold_seconds and wrap_up_seconds are only allowed on call_ended"},
				{0, "ticket_id", "must equal call.call_id for a call with no ticket (or set call.ticket_id to the linked ticket)"},
			},
		},
		{
			name: "an invalid linked ticket is its own problem only",
			give: callEv("call_offered", "CA-9", "", okCall+`,"ticket_id":"a\u0000b"`),
			want: []Problem{{0, "call.ticket_id", "contains the control character U+0000"}},
		},
		{
			name: "linked call: the ticket id must be the linked ticket",
			give: callEv("call_offered", "CA-9", "", okCall+`,"ticket_id":"T-77"`),
			want: []Problem{{0, "ticket_id", "must equal call.ticket_id, the ticket the call is linked to"}},
		},
		{
			name: "ticket attributes are refused by name",
			give: callEv("call_ended", "CA-9", `"assignee_id":"ana","team_id":"t","priority":"high","channel":"voice","tags":["x"],"public":true`, okCall),
			want: []Problem{
				{0, "assignee_id", callForbidden}, {0, "team_id", callForbidden}, {0, "priority", callForbidden},
				{0, "public", callForbidden}, {0, "channel", callForbidden}, {0, "tags", callForbidden},
			},
		},
		{
			name: "a call on another type",
			give: created(`"call":{` + okCall + `}`),
			want: []Problem{{0, "call", "only allowed on call_offered, call_answered, call_abandoned and call_ended"}},
		},
		{
			// Calls and QA reviews each refuse the other's member: neither event is the other.
			name: "a review on a call event",
			give: callEv("call_ended", "CA-9", validQA, okCall),
			want: []Problem{{0, "qa", "only allowed on qa_scored"}},
		},
		{
			name: "a call on a review",
			give: qaScored(validQA + `,"call":{` + okCall + `}`),
			want: []Problem{{0, "call", "only allowed on call_offered, call_answered, call_abandoned and call_ended"}},
		},
		{
			name: "call must be an object",
			give: callEv("call_ended", "CA-9", `"call":[1]`, ""),
			want: []Problem{{0, "call", "must be an object"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.give), testOptions())
			if got != nil {
				t.Errorf("got %d events; want none", len(got))
			}
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("err = %v; want Problems", err)
			}
			if len(probs.List) != len(tt.want) {
				t.Fatalf("got %+v\nwant %+v", probs.List, tt.want)
			}
			for i := range probs.List {
				if probs.List[i] != tt.want[i] {
					t.Errorf("problem %d:\n got %+v\nwant %+v", i, probs.List[i], tt.want[i])
				}
			}
		})
	}
}

// TestValidateCalls checks the typed path gives the same problems as the JSON path on built
// events.
func TestValidateCalls(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ev := func(typ, ticket string, k *Call, mod func(*Event)) Event {
		e := Event{ID: "e", Source: "generic", TicketID: ticket, Type: typ, OccurredAt: at, Actor: Actor{Kind: "system"}, Call: k}
		if mod != nil {
			mod(&e)
		}
		return e
	}
	tests := []struct {
		name string
		give Event
		want []Problem
	}{
		{"valid ended", ev("call_ended", "T-1", &Call{CallID: "c", TicketID: "T-1", AgentID: "ana", Direction: "inbound", TalkSeconds: 60}, nil), nil},
		{"missing call", ev("call_abandoned", "c", nil, nil), []Problem{{0, "call", "required for call_abandoned"}}},
		{"answered without agent", ev("call_answered", "c", &Call{CallID: "c", Direction: "inbound"}, nil),
			[]Problem{{0, "call.agent_id", "required for call_answered (the agent who answered)"}}},
		{"NaN talk on abandon", ev("call_abandoned", "c", &Call{CallID: "c", Direction: "outbound", TalkSeconds: nanValue()}, nil),
			[]Problem{{0, "call.talk_seconds", "must be seconds between 0 and 86400"}}},
		{"team on a call", ev("call_offered", "c", &Call{CallID: "c", Direction: "inbound"}, func(e *Event) { e.TeamID = "x" }),
			[]Problem{{0, "team_id", callForbidden}}},
		{"wrong ticket", ev("call_offered", "T-1", &Call{CallID: "c", Direction: "inbound"}, nil),
			[]Problem{{0, "ticket_id", "must equal call.call_id for a call with no ticket (or set call.ticket_id to the linked ticket)"}}},
		{"call on a message", ev("customer_message", "T-1", &Call{CallID: "c", Direction: "inbound"}, func(e *Event) { e.Actor = Actor{ID: "c", Kind: "customer"} }),
			[]Problem{{0, "call", "only allowed on call_offered, call_answered, call_abandoned and call_ended"}}},
		{"review on a call", ev("call_offered", "c", &Call{CallID: "c", Direction: "inbound"}, func(e *Event) { e.QA = &QA{ReviewID: "r", AgentID: "a", Score: 50} }),
			[]Problem{{0, "qa", "only allowed on qa_scored"}}},
		{"call on a review", ev("qa_scored", "T-1", &Call{CallID: "c", Direction: "inbound"}, func(e *Event) { e.QA = &QA{ReviewID: "r", AgentID: "a", Score: 50} }),
			[]Problem{{0, "call", "only allowed on call_offered, call_answered, call_abandoned and call_ended"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate([]Event{tt.give}, testOptions())
			var probs Problems
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.As(err, &probs) {
				t.Fatalf("err = %v; want Problems", err)
			}
			if len(probs.List) != len(tt.want) {
				t.Fatalf("got %+v\nwant %+v", probs.List, tt.want)
			}
			for i := range probs.List {
				if probs.List[i] != tt.want[i] {
					t.Errorf("problem %d:\n got %+v\nwant %+v", i, probs.List[i], tt.want[i])
				}
			}
		})
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}
