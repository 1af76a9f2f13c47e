package canonical

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

var testNow = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func testOptions() Options {
	return Options{Tenant: "acme", Now: testNow, MaxFutureSkew: 5 * time.Minute, MaxEvents: 3}
}

const agentMsg = `{"id": "evt-1042", "ticket_id": "T-77", "type": "agent_message",
 "occurred_at": "2026-03-02T09:14:05Z", "actor": {"id": "ana", "kind": "agent"},
 "assignee_id": "ana", "team_id": "billing", "priority": "high", "public": true}`

func ptr[T any](v T) *T { return &v }

func ts(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(t)
}

// base is the event most valid cases decode to, changed by each case.
func base(mod func(*ticketpulsev1.TicketEvent)) *ticketpulsev1.TicketEvent {
	ev := &ticketpulsev1.TicketEvent{
		Id: "evt-1", Tenant: "acme", Source: "generic", TicketId: "T-1",
		Type:       ticketpulsev1.EventType_EVENT_TYPE_TICKET_CREATED,
		OccurredAt: ts("2026-03-02T09:00:00Z"),
		Actor:      &ticketpulsev1.Actor{Id: "cus-9", Kind: ticketpulsev1.ActorKind_ACTOR_KIND_CUSTOMER},
		ReceivedAt: timestamppb.New(testNow),
	}
	if mod != nil {
		mod(ev)
	}
	return ev
}

// created is a valid ticket_created object; extra members are spliced in before the closing brace.
func created(extra string) string {
	s := `{"id":"evt-1","ticket_id":"T-1","type":"ticket_created","occurred_at":"2026-03-02T09:00:00Z","actor":{"id":"cus-9","kind":"customer"}`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []*ticketpulsev1.TicketEvent
	}{
		{
			name: "design example",
			give: agentMsg,
			want: []*ticketpulsev1.TicketEvent{{
				Id: "evt-1042", Tenant: "acme", Source: "generic", TicketId: "T-77",
				Type:       ticketpulsev1.EventType_EVENT_TYPE_AGENT_MESSAGE,
				OccurredAt: ts("2026-03-02T09:14:05Z"),
				Actor:      &ticketpulsev1.Actor{Id: "ana", Kind: ticketpulsev1.ActorKind_ACTOR_KIND_AGENT},
				AssigneeId: "ana", TeamId: "billing", Priority: ticketpulsev1.Priority_PRIORITY_HIGH,
				Public: ptr(true), ReceivedAt: timestamppb.New(testNow),
			}},
		},
		{
			name: "array of two keeps order",
			give: "[" + created("") + "," + created(`"source":"zendesk"`) + "]",
			want: []*ticketpulsev1.TicketEvent{base(nil), base(func(e *ticketpulsev1.TicketEvent) { e.Source = "zendesk" })},
		},
		{
			name: "every optional field",
			give: created(`"status":"new","priority":"urgent","assignee_id":"","team_id":"t1","channel":"email","tags":["vip","","ü"],"public":false,"satisfaction":null`),
			want: []*ticketpulsev1.TicketEvent{base(func(e *ticketpulsev1.TicketEvent) {
				e.Status = ticketpulsev1.TicketStatus_TICKET_STATUS_NEW
				e.Priority = ticketpulsev1.Priority_PRIORITY_URGENT
				e.TeamId, e.Channel, e.Tags, e.Public = "t1", "email", []string{"vip", "", "ü"}, ptr(false)
			})},
		},
		{
			name: "customer message defaults to public",
			give: `{"id":"e","ticket_id":"t","type":"customer_message","occurred_at":"2026-03-02T09:00:00+01:00","actor":{"kind":"customer","id":"c"}}`,
			want: []*ticketpulsev1.TicketEvent{{
				Id: "e", Tenant: "acme", Source: "generic", TicketId: "t",
				Type:       ticketpulsev1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE,
				OccurredAt: ts("2026-03-02T08:00:00Z"),
				Actor:      &ticketpulsev1.Actor{Id: "c", Kind: ticketpulsev1.ActorKind_ACTOR_KIND_CUSTOMER},
				Public:     ptr(true), ReceivedAt: timestamppb.New(testNow),
			}},
		},
		{
			name: "private note stays private",
			give: `{"id":"e","ticket_id":"t","type":"agent_message","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"agent","id":"a"},"public":false}`,
			want: []*ticketpulsev1.TicketEvent{{
				Id: "e", Tenant: "acme", Source: "generic", TicketId: "t",
				Type:       ticketpulsev1.EventType_EVENT_TYPE_AGENT_MESSAGE,
				OccurredAt: ts("2026-03-02T09:00:00Z"),
				Actor:      &ticketpulsev1.Actor{Id: "a", Kind: ticketpulsev1.ActorKind_ACTOR_KIND_AGENT},
				Public:     ptr(false), ReceivedAt: timestamppb.New(testNow),
			}},
		},
		{
			name: "satisfaction with default scale, status change, bot without id",
			give: `[{"id":"s","ticket_id":"t","type":"satisfaction_rated","occurred_at":"2019-01-01T00:00:00.123Z","actor":{"kind":"customer","id":"c"},"satisfaction":{"score":2,"comment":"slow\nreply"}},` +
				`{"id":"st","ticket_id":"t","type":"status_changed","occurred_at":"2026-03-02T10:04:59Z","actor":{"kind":"bot"},"status":"on_hold"}]`,
			want: []*ticketpulsev1.TicketEvent{{
				Id: "s", Tenant: "acme", Source: "generic", TicketId: "t",
				Type:         ticketpulsev1.EventType_EVENT_TYPE_SATISFACTION_RATED,
				OccurredAt:   ts("2019-01-01T00:00:00.123Z"),
				Actor:        &ticketpulsev1.Actor{Id: "c", Kind: ticketpulsev1.ActorKind_ACTOR_KIND_CUSTOMER},
				Satisfaction: &ticketpulsev1.Satisfaction{Score: 2, Scale: 5, Comment: "slow\nreply"},
				ReceivedAt:   timestamppb.New(testNow),
			}, {
				Id: "st", Tenant: "acme", Source: "generic", TicketId: "t",
				Type:       ticketpulsev1.EventType_EVENT_TYPE_STATUS_CHANGED,
				OccurredAt: ts("2026-03-02T10:04:59Z"),
				Actor:      &ticketpulsev1.Actor{Kind: ticketpulsev1.ActorKind_ACTOR_KIND_BOT},
				Status:     ticketpulsev1.TicketStatus_TICKET_STATUS_ON_HOLD,
				ReceivedAt: timestamppb.New(testNow),
			}},
		},
		{
			name: "two-point scale rating",
			give: created(`"satisfaction":{"score":1,"scale":2}`),
			want: []*ticketpulsev1.TicketEvent{base(func(e *ticketpulsev1.TicketEvent) {
				e.Satisfaction = &ticketpulsev1.Satisfaction{Score: 1, Scale: 2}
			})},
		},
		{
			name: "ids are helpdesk data: any Unicode, escapes and spaces kept",
			give: `{"id":"ünï cödé/.*>{x}","ticket_id":"\u00e9\ud83d\ude00","type":"ticket_created","occurred_at":"2026-03-02T09:00:00Z","actor":{"id":"a.b@c","kind":"agent"}}`,
			want: []*ticketpulsev1.TicketEvent{base(func(e *ticketpulsev1.TicketEvent) {
				e.Id, e.TicketId = "ünï cödé/.*>{x}", "é😀"
				e.Actor = &ticketpulsev1.Actor{Id: "a.b@c", Kind: ticketpulsev1.ActorKind_ACTOR_KIND_AGENT}
			})},
		},
		{
			name: "id of exactly 256 bytes",
			give: `{"id":"` + strings.Repeat("x", 256) + `","ticket_id":"T-1","type":"ticket_created","occurred_at":"2026-03-02T09:00:00Z","actor":{"id":"cus-9","kind":"customer"}}`,
			want: []*ticketpulsev1.TicketEvent{base(func(e *ticketpulsev1.TicketEvent) { e.Id = strings.Repeat("x", 256) })},
		},
		{
			name: "surrounding whitespace",
			give: " \n\t[ " + created("") + " ]\r\n",
			want: []*ticketpulsev1.TicketEvent{base(nil)},
		},
		{
			name: "the source's sequence, up to 2^53-1; 0 and null are none",
			give: "[" + created(`"sequence":9007199254740991`) + "," + created(`"sequence":0`) + "," + created(`"sequence":null`) + "]",
			want: []*ticketpulsev1.TicketEvent{base(func(e *ticketpulsev1.TicketEvent) { e.Sequence = 1<<53 - 1 }), base(nil), base(nil)},
		},
		{
			name: "assigned with no assignee means unassigned",
			give: `{"id":"evt-1","ticket_id":"T-1","type":"ticket_assigned","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"automation"},"assignee_id":""}`,
			want: []*ticketpulsev1.TicketEvent{base(func(e *ticketpulsev1.TicketEvent) {
				e.Type = ticketpulsev1.EventType_EVENT_TYPE_TICKET_ASSIGNED
				e.Actor = &ticketpulsev1.Actor{Kind: ticketpulsev1.ActorKind_ACTOR_KIND_AUTOMATION}
			})},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Decode([]byte(tt.give), testOptions())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			got := Proto(evs, "acme", testNow)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !proto.Equal(got[i], tt.want[i]) {
					t.Errorf("event %d:\n got %v\nwant %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDecodeProblems(t *testing.T) {
	long := strings.Repeat("é", 129) // 258 bytes
	tests := []struct {
		name string
		give string
		want []Problem
	}{
		{
			name: "malformed JSON names the byte offset",
			give: `{"id": "x",}`,
			want: []Problem{{0, "", "malformed JSON at byte offset 12: invalid character '}' looking for beginning of object key string"}},
		},
		{
			name: "truncated body",
			give: `[{"id":`,
			want: []Problem{{0, "", "malformed JSON at byte offset 7: unexpected end of JSON input"}},
		},
		{
			name: "empty body",
			give: ``,
			want: []Problem{{0, "", "malformed JSON at byte offset 0: unexpected end of JSON input"}},
		},
		{
			name: "empty array",
			give: ` [ ] `,
			want: []Problem{{0, "", "empty array: send at least one event"}},
		},
		{
			name: "top level string",
			give: `"evt"`,
			want: []Problem{{0, "", "must be a JSON object or an array of JSON objects"}},
		},
		{
			name: "array element not an object",
			give: `[` + created("") + `, 5]`,
			want: []Problem{{1, "", "must be a JSON object"}},
		},
		{
			name: "empty object lists every required field",
			give: `{}`,
			want: []Problem{{0, "id", "required"}, {0, "ticket_id", "required"}, {0, "type", "required"}, {0, "occurred_at", "required"}, {0, "actor", "required"}},
		},
		{
			name: "tenant in body and other unknown fields",
			give: created(`"tenant":"other","Id":"x"`),
			want: []Problem{{0, "tenant", "unknown field"}, {0, "Id", "unknown field"}},
		},
		{
			name: "duplicate field",
			give: created(`"id":"evt-2"`),
			want: []Problem{{0, "id", "duplicate field"}},
		},
		{
			name: "wrong JSON types name the field",
			give: `{"id":5,"ticket_id":["T"],"type":true,"occurred_at":1700000000,"actor":"ana","public":"yes","tags":"vip","channel":{},"satisfaction":[]}`,
			want: []Problem{
				{0, "id", "must be a string"}, {0, "ticket_id", "must be a string"}, {0, "type", "must be a string"},
				{0, "occurred_at", "must be a string"}, {0, "actor", "must be an object"}, {0, "public", "must be a boolean"},
				{0, "tags", "must be an array of strings"}, {0, "channel", "must be a string"}, {0, "satisfaction", "must be an object"},
			},
		},
		{
			name: "unknown enum words",
			give: `{"id":"e","ticket_id":"t","type":"AGENT_MESSAGE","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"robot"},"priority":"p1","status":"done","source":"jira"}`,
			want: []Problem{
				{0, "type", `unknown value "AGENT_MESSAGE"; want one of ticket_created, ticket_assigned, agent_message, customer_message, status_changed, priority_changed, satisfaction_rated, qa_scored, call_offered, call_answered, call_abandoned, call_ended`},
				{0, "actor.kind", `unknown value "robot"; want one of agent, customer, bot, automation, system`},
				{0, "priority", `unknown value "p1"; want one of low, normal, high, urgent`},
				{0, "status", `unknown value "done"; want one of new, open, pending, on_hold, solved, closed`},
				{0, "source", `unknown value "jira"; want one of zendesk, chatwoot, freshdesk, helpscout, zammad, intercom, salesforce, hubspot, generic, typeform, surveymonkey, qualtrics, five9, genesys, ringcentral`},
			},
		},
		{
			name: "ids: empty, too long, control characters, invalid UTF-8, lone surrogate",
			give: "[" + `{"id":"","ticket_id":"` + long + `","type":"ticket_created","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"system"}},` +
				`{"id":"a\u0007b","ticket_id":"t\nx","type":"ticket_created","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"system","id":"` + long + `"}},` +
				`{"id":"` + "\xff" + `","ticket_id":"\ud800","type":"ticket_created","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"system"},"assignee_id":"x` + "\u0085" + `","team_id":"` + long + `"}]`,
			want: []Problem{
				{0, "id", "must not be empty"}, {0, "ticket_id", "longer than 256 bytes"},
				{1, "id", "contains the control character U+0007"}, {1, "ticket_id", "contains the control character U+000A"}, {1, "actor.id", "longer than 256 bytes"},
				{2, "id", "not valid UTF-8"}, {2, "ticket_id", "not valid UTF-8"}, {2, "assignee_id", "contains the control character U+0085"}, {2, "team_id", "longer than 256 bytes"},
			},
		},
		{
			name: "timestamps",
			give: "[" + `{"id":"a","ticket_id":"t","type":"ticket_created","occurred_at":"2026-03-02 09:00:00","actor":{"kind":"system"}},` +
				`{"id":"b","ticket_id":"t","type":"ticket_created","occurred_at":"2026-03-02T10:05:01Z","actor":{"kind":"system"}},` +
				`{"id":"c","ticket_id":"t","type":"ticket_created","occurred_at":"0000-01-01T00:00:00Z","actor":{"kind":"system"}}]`,
			want: []Problem{
				{0, "occurred_at", `not an RFC 3339 timestamp (e.g. 2026-03-02T09:14:05Z): "2026-03-02 09:00:00"`},
				{1, "occurred_at", "more than 5m0s in the future"},
				{2, "occurred_at", "out of the representable range (years 0001 to 9999)"},
			},
		},
		{
			name: "actor needs a kind, and an id for agents and customers",
			give: `[` + `{"id":"a","ticket_id":"t","type":"ticket_created","occurred_at":"2026-03-02T09:00:00Z","actor":{"id":"x","role":"admin"}},` +
				`{"id":"b","ticket_id":"t","type":"ticket_created","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"agent","id":""}},` +
				`{"id":"c","ticket_id":"t","type":"ticket_created","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"customer"}}]`,
			want: []Problem{
				{0, "actor.role", "unknown field"}, {0, "actor.kind", "required"},
				{1, "actor.id", "required for agent and customer actors"},
				{2, "actor.id", "required for agent and customer actors"},
			},
		},
		{
			name: "type-specific requirements",
			give: `[` + `{"id":"a","ticket_id":"t","type":"status_changed","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"system"}},` +
				`{"id":"b","ticket_id":"t","type":"priority_changed","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"system"},"priority":null},` +
				`{"id":"c","ticket_id":"t","type":"satisfaction_rated","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"system"}}]`,
			want: []Problem{
				{0, "status", "required for status_changed"},
				{1, "priority", "required for priority_changed"},
				{2, "satisfaction", "required for satisfaction_rated"},
			},
		},
		{
			name: "agent message must say whether it is public",
			give: `{"id":"a","ticket_id":"t","type":"agent_message","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"agent","id":"ana"}}`,
			want: []Problem{{0, "public", "required for agent_message (false marks a private note)"}},
		},
		{
			name: "satisfaction fields",
			give: `[` + created(`"satisfaction":{"score":6,"scale":4,"comment":"`+strings.Repeat("x", 4001)+`","stars":1}`) + `,` +
				created(`"satisfaction":{"score":4.5}`) + `,` + created(`"satisfaction":{"score":"5"}`) + `,` +
				created(`"satisfaction":{"score":4,"scale":2}`) + `,` + created(`"satisfaction":{"score":2,"scale":3}`) + `,` +
				created(`"satisfaction":{"scale":5,"comment":"a\u0000"}`) + `,` + created(`"satisfaction":{"score":99999999999999999999999}`) + `]`,
			want: []Problem{
				{0, "satisfaction.score", "must be between 1 and 5"}, {0, "satisfaction.scale", "must be 2, 3 or 5"},
				{0, "satisfaction.comment", "longer than 4000 bytes"}, {0, "satisfaction.stars", "unknown field"},
				{1, "satisfaction.score", "must be an integer"},
				{2, "satisfaction.score", "must be an integer"},
				{3, "satisfaction.score", "on a 2-point scale must be 1 (bad) or 5 (good)"},
				{4, "satisfaction.score", "on a 3-point scale must be 1, 3 or 5"},
				{5, "satisfaction.comment", "contains the control character U+0000"}, {5, "satisfaction.score", "required"},
				{6, "satisfaction.score", "must be between 1 and 5"},
			},
		},
		{
			name: "sequence: a non-negative integer JSON clients read exactly",
			give: `[` + created(`"sequence":-4`) + `,` + created(`"sequence":4.5`) + `,` + created(`"sequence":"4"`) + `,` +
				created(`"sequence":9007199254740992`) + `,` + created(`"sequence":1e3`) + `,` + created(`"sequence":-0`) + `,` +
				created(`"sequence":true`) + `,` + created(`"sequence":{}`) + `,` + created(`"sequence":[1]`) + `,` +
				created(`"sequence":123456789012345678901234567890`) + `]`,
			want: []Problem{
				{0, "sequence", "must not be negative"},
				{1, "sequence", "must be a whole number, without a fraction or exponent"},
				{2, "sequence", "must be a JSON integer, not a string"},
				{3, "sequence", "greater than 9007199254740991 (2^53-1), the largest integer every JSON client reads exactly"},
				{4, "sequence", "must be a whole number, without a fraction or exponent"},
				{5, "sequence", "must not be negative"},
				{6, "sequence", "must be a JSON integer, not a boolean"},
				{7, "sequence", "must be a JSON integer, not an object"},
				{8, "sequence", "must be a JSON integer, not an array"},
				{9, "sequence", "greater than 9007199254740991 (2^53-1), the largest integer every JSON client reads exactly"},
			},
		},
		{
			name: "channel and tags limits",
			give: created(`"channel":"` + strings.Repeat("c", 65) + `","tags":[` + strings.Repeat(`"t",`, 48) + `"` + strings.Repeat("x", 129) + `",null,7]`),
			want: []Problem{
				{0, "channel", "longer than 64 bytes"},
				{0, "tags", "more than 50 tags"},
				{0, "tags[48]", "longer than 128 bytes"},
				{0, "tags[49]", "must be a string"},
				{0, "tags[50]", "must be a string"},
			},
		},
		{
			name: "problems of several events are all reported, valid ones are not",
			give: `[` + created("") + `,` + created(`"x":1`) + `,` + created(`"public":1`) + `]`,
			want: []Problem{{1, "x", "unknown field"}, {2, "public", "must be a boolean"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions()
			o.MaxEvents = 0
			got, err := Decode([]byte(tt.give), o)
			if got != nil {
				t.Errorf("got %d events with problems; want none", len(got))
			}
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("err = %v; want Problems", err)
			}
			if len(probs.List) != len(tt.want) || probs.More != 0 {
				t.Fatalf("got %d problems (%d more), want %d:\n got %+v\nwant %+v", len(probs.List), probs.More, len(tt.want), probs.List, tt.want)
			}
			for i := range probs.List {
				if probs.List[i] != tt.want[i] {
					t.Errorf("problem %d:\n got %+v\nwant %+v", i, probs.List[i], tt.want[i])
				}
			}
		})
	}
}

func TestDecodeTooManyEvents(t *testing.T) {
	tests := []struct {
		name    string
		give    int
		wantErr bool
	}{
		{name: "at the cap", give: 3},
		{name: "one over", give: 4, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := make([]string, tt.give)
			for i := range items {
				items[i] = created("")
			}
			body := "[" + strings.Join(items, ",") + "]"
			evs, err := Decode([]byte(body), testOptions()) // MaxEvents 3
			if got := errors.Is(err, ErrTooManyEvents); got != tt.wantErr {
				t.Fatalf("errors.Is(%v, ErrTooManyEvents) = %v; want %v", err, got, tt.wantErr)
			}
			if !tt.wantErr && len(evs) != tt.give {
				t.Fatalf("got %d events, want %d", len(evs), tt.give)
			}
		})
	}
}

func TestWords(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"type", TypeWord(ticketpulsev1.EventType_EVENT_TYPE_SATISFACTION_RATED), "satisfaction_rated"},
		{"unspecified type", TypeWord(ticketpulsev1.EventType_EVENT_TYPE_UNSPECIFIED), ""},
		{"actor", ActorWord(ticketpulsev1.ActorKind_ACTOR_KIND_AUTOMATION), "automation"},
		{"priority", PriorityWord(ticketpulsev1.Priority_PRIORITY_URGENT), "urgent"},
		{"status", StatusWord(ticketpulsev1.TicketStatus_TICKET_STATUS_ON_HOLD), "on_hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
