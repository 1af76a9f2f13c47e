package canonical

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

// typed is the event most Validate cases start from, changed by each case.
func typed(mod func(*Event)) Event {
	ev := Event{ID: "evt-1", Source: "zendesk", TicketID: "T-1", Type: "ticket_created",
		OccurredAt: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Actor: Actor{ID: "cus-9", Kind: "customer"}}
	if mod != nil {
		mod(&ev)
	}
	return ev
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		give []Event
		want []Problem
	}{
		{name: "valid", give: []Event{typed(func(e *Event) { e.Sequence = MaxSequence }), typed(func(e *Event) {
			e.Type, e.Public, e.Satisfaction, e.Tags = "agent_message", ptr(false), &Satisfaction{Score: 5, Scale: 2, Comment: "ok\n"}, []string{"", "vip"}
		})}},
		{
			name: "fields in the order of the canonical JSON",
			give: []Event{typed(func(e *Event) {
				e.ID, e.Source, e.TicketID, e.Type = "", "", strings.Repeat("x", 257), "TICKET_CREATED"
				e.OccurredAt = testNow.Add(time.Hour)
				e.Sequence = MaxSequence + 1
				e.Actor = Actor{Kind: "agent"}
				e.AssigneeID, e.TeamID, e.Priority, e.Status = "a\x00", "\xff", "p1", "done"
				e.Satisfaction = &Satisfaction{Score: 0, Scale: 4, Comment: "a\x01"}
				e.Channel, e.Tags = strings.Repeat("c", 65), append(make([]string, 50), "t\x02")
			})},
			want: []Problem{
				{0, "id", "must not be empty"},
				{0, "source", `unknown value ""; want one of zendesk, chatwoot, freshdesk, helpscout, zammad, intercom, salesforce, hubspot, generic, typeform, surveymonkey, qualtrics, five9, genesys, ringcentral`},
				{0, "ticket_id", "longer than 256 bytes"},
				{0, "type", `unknown value "TICKET_CREATED"; want one of ticket_created, ticket_assigned, agent_message, customer_message, status_changed, priority_changed, satisfaction_rated, qa_scored, call_offered, call_answered, call_abandoned, call_ended`},
				{0, "occurred_at", "more than 5m0s in the future"},
				{0, "sequence", "greater than 9007199254740991 (2^53-1), the largest integer every JSON client reads exactly"},
				{0, "actor.id", "required for agent and customer actors"},
				{0, "assignee_id", "contains the control character U+0000"},
				{0, "team_id", "not valid UTF-8"},
				{0, "priority", `unknown value "p1"; want one of low, normal, high, urgent`},
				{0, "status", `unknown value "done"; want one of new, open, pending, on_hold, solved, closed`},
				{0, "satisfaction.score", "must be between 1 and 5"},
				{0, "satisfaction.scale", "must be 2, 3 or 5"},
				{0, "satisfaction.comment", "contains the control character U+0001"},
				{0, "channel", "longer than 64 bytes"},
				{0, "tags", "more than 50 tags"},
				{0, "tags[50]", "contains the control character U+0002"},
			},
		},
		{
			name: "rules across fields, per event",
			give: []Event{
				typed(func(e *Event) { e.Type = "status_changed" }),
				typed(func(e *Event) { e.Type = "agent_message"; e.Actor = Actor{Kind: "bot"} }),
				typed(func(e *Event) { e.Type = "satisfaction_rated"; e.OccurredAt = time.Time{}.AddDate(-1, 0, 0) }),
				typed(func(e *Event) { e.Type = "priority_changed"; e.Satisfaction = &Satisfaction{Score: 4, Scale: 3} }),
			},
			want: []Problem{
				{0, "status", "required for status_changed"},
				{1, "public", "required for agent_message (false marks a private note)"},
				{2, "occurred_at", "out of the representable range (years 0001 to 9999)"},
				{2, "satisfaction", "required for satisfaction_rated"},
				{3, "satisfaction.score", "on a 3-point scale must be 1, 3 or 5"},
				{3, "priority", "required for priority_changed"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions()
			o.MaxEvents = 0
			err := Validate(tt.give, o)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("err = %v; want Problems", err)
			}
			if fmt.Sprint(probs.List) != fmt.Sprint(tt.want) || probs.More != 0 {
				t.Errorf("got %d more and\n%+v\nwant\n%+v", probs.More, probs.List, tt.want)
			}
		})
	}
}

// TestValidateAsDecode checks that an event reads the same from its canonical JSON as when an
// adapter builds it.
func TestValidateAsDecode(t *testing.T) {
	decoded, err := Decode([]byte(agentMsg), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	built := Event{ID: "evt-1042", Source: "generic", TicketID: "T-77", Type: "agent_message",
		OccurredAt: time.Date(2026, 3, 2, 9, 14, 5, 0, time.UTC), Actor: Actor{ID: "ana", Kind: "agent"},
		AssigneeID: "ana", TeamID: "billing", Priority: "high", Public: ptr(true)}
	if err := Validate([]Event{built}, testOptions()); err != nil {
		t.Fatal(err)
	}
	got, want := Proto([]Event{built}, "acme", testNow), Proto(decoded, "acme", testNow)
	if !proto.Equal(got[0], want[0]) {
		t.Errorf("built %v\ndecoded %v", got[0], want[0])
	}
}

func TestValidateTooManyEvents(t *testing.T) {
	if err := Validate(make([]Event, 4), testOptions()); !errors.Is(err, ErrTooManyEvents) { // MaxEvents 3
		t.Fatalf("err = %v; want ErrTooManyEvents", err)
	}
}

func TestProblemsAreCapped(t *testing.T) {
	members := make([]string, 150)
	for i := range members {
		members[i] = fmt.Sprintf(`"k%d":0`, i)
	}
	members[120] = `"k0":0` // a duplicate beyond the list is counted like any other problem
	_, err := Decode([]byte("{"+strings.Join(members, ",")+"}"), testOptions())
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v; want Problems", err)
	}
	if len(probs.List) != MaxProblems || probs.More != 150+5-MaxProblems {
		t.Fatalf("%d problems and %d more; want %d and %d", len(probs.List), probs.More, MaxProblems, 150+5-MaxProblems)
	}
	if p := probs.List[MaxProblems-1]; p != (Problem{0, "k99", "unknown field"}) {
		t.Errorf("last listed problem %+v", p)
	}
	const want = "event 0: k0: unknown field (and 154 more problems; the first 100 are listed)"
	if got := probs.Error(); got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

func TestProblemsError(t *testing.T) {
	tests := []struct {
		name string
		give Problems
		want string
	}{
		{"none", Problems{}, "no problems"},
		{"body", Reject(0, "", "malformed JSON"), "event 0: malformed JSON"},
		{"field", Problems{List: []Problem{{2, "id", "required"}, {3, "type", "required"}}}, "event 2: id: required (and 1 more problems)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.give.Error(); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}
