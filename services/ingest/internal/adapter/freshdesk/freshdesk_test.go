package freshdesk

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

func TestGolden(t *testing.T) {
	adaptertest.Golden(t, New(), "testdata")
}

// ruleBody is the automation template as one rule fills it in.
func ruleBody(event, actor, triggered, agent string) string {
	return `{"tp_event":"` + event + `","tp_actor":"` + actor + `","triggered_event":"` + triggered + `",
		"ticket":{"id":"7","status":"Open","priority":"Medium","agent_email":"` + agent + `","group_name":"Billing",
		"requester_id":"100","requester_email":"c@example.com","source":"Email","tags":"a, b",
		"created_on":"2026-11-20 09:00:00 UTC","modified_on":"2026-11-20 09:30:00 UTC"}}`
}

func mapBody(t *testing.T, body string) (adapter.Result, error) {
	t.Helper()
	return New().Map(adapter.Delivery{Body: []byte(body), Received: adaptertest.Received})
}

func TestMessageActors(t *testing.T) {
	tests := []struct {
		name       string
		give       string
		wantType   string
		wantActor  canonical.Actor
		wantPublic bool
	}{
		{"agent reply", ruleBody("reply", "agent", "{reply_sent:sent}", "a@x"), "agent_message", canonical.Actor{ID: "a@x", Kind: "agent"}, true},
		{"customer reply", ruleBody("reply", "customer", "{reply_sent:sent}", "a@x"), "customer_message", canonical.Actor{ID: "100", Kind: "customer"}, true},
		{"system reply", ruleBody("reply", "system", "{reply_sent:sent}", "a@x"), "agent_message", canonical.Actor{Kind: "automation"}, true},
		{"bot reply", ruleBody("reply", "bot", "{reply_sent:sent}", ""), "agent_message", canonical.Actor{Kind: "bot"}, true},
		{"private note", ruleBody("note", "agent", "{note_type:private}", "a@x"), "agent_message", canonical.Actor{ID: "a@x", Kind: "agent"}, false},
		{"public note", ruleBody("note", "agent", "{note_type:public}", "a@x"), "agent_message", canonical.Actor{ID: "a@x", Kind: "agent"}, true},
		{"performer left out", ruleBody("reply", "", "{reply_sent:sent}", "a@x"), "agent_message", canonical.Actor{ID: "a@x", Kind: "agent"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := mapBody(t, tt.give)
			if err != nil || len(res.Events) != 1 {
				t.Fatalf("got %+v, %v", res, err)
			}
			ev := res.Events[0]
			if ev.Type != tt.wantType || ev.Actor != tt.wantActor || ev.Public == nil || *ev.Public != tt.wantPublic {
				t.Errorf("got %s by %+v public %v, want %s by %+v public %v", ev.Type, ev.Actor, ev.Public, tt.wantType, tt.wantActor, tt.wantPublic)
			}
			if ev.TeamID != "Billing" || ev.Priority != "normal" || !reflect.DeepEqual(ev.Tags, []string{"a", "b"}) {
				t.Errorf("team %q priority %q tags %q", ev.TeamID, ev.Priority, ev.Tags)
			}
		})
	}
}

func TestStatusTable(t *testing.T) {
	tests := []struct {
		code, name, want string
		ok               bool
	}{
		{"2", "", "open", true},
		{"3", "", "pending", true},
		{"4", "", "solved", true},
		{"5", "", "closed", true},
		{"6", "", "pending", true},
		{"7", "", "on_hold", true},
		{"", "Open", "open", true},
		{"", "Pending", "pending", true},
		{"", "Resolved", "solved", true},
		{"", "Closed", "closed", true},
		{"", "Waiting on Customer", "pending", true},
		{"", "Waiting on Third Party", "on_hold", true},
		{"4", "Open", "solved", true}, // the code of the change wins over the rendered name
		{"8", "Awaiting Finance", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		if got, ok := status(tt.code, tt.name); got != tt.want || ok != tt.ok {
			t.Errorf("status(%q, %q) = %q, %v; want %q, %v", tt.code, tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPriorityTable(t *testing.T) {
	tests := []struct {
		code, name, want string
	}{
		{"1", "", "low"}, {"2", "", "normal"}, {"3", "", "high"}, {"4", "", "urgent"},
		{"", "Low", "low"}, {"", "Medium", "normal"}, {"", "High", "high"}, {"", "Urgent", "urgent"},
		{"", "", ""}, {"9", "Critical", ""},
	}
	for _, tt := range tests {
		if got, _ := priority(tt.code, tt.name); got != tt.want {
			t.Errorf("priority(%q, %q) = %q, want %q", tt.code, tt.name, got, tt.want)
		}
	}
}

func TestRatingTable(t *testing.T) {
	tests := []struct {
		give       string
		wantScore  int
		wantScale  int
		wantReject bool
	}{
		{give: "103", wantScore: 5, wantScale: 3},
		{give: "102", wantScore: 4, wantScale: 5},
		{give: "101", wantScore: 4, wantScale: 5},
		{give: "100", wantScore: 3, wantScale: 3},
		{give: "-101", wantScore: 2, wantScale: 5},
		{give: "-102", wantScore: 2, wantScale: 5},
		{give: "-103", wantScore: 1, wantScale: 3},
		{give: "5", wantReject: true},
		{give: "", wantReject: true},
		{give: "happy", wantReject: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			res, err := mapBody(t, ruleBody("rating", "customer", "{customer_feedback:"+tt.give+"}", "a@x"))
			if tt.wantReject {
				var ps canonical.Problems
				if !errors.As(err, &ps) || ps.List[0].Field != "triggered_event" {
					t.Fatalf("got %v, want a triggered_event problem", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ev := res.Events[0]
			if s := ev.Satisfaction; s == nil || s.Score != tt.wantScore || s.Scale != tt.wantScale || ev.Actor.Kind != "customer" {
				t.Errorf("got %+v by %+v, want %d on scale %d by the customer", s, ev.Actor, tt.wantScore, tt.wantScale)
			}
		})
	}
}

func TestParseChange(t *testing.T) {
	tests := []struct {
		give    string
		want    change
		wantErr bool
	}{
		{give: "{ticket_action:created}", want: change{key: "ticket_action", val: "created"}},
		{give: "{note_type:private}", want: change{key: "note_type", val: "private"}},
		{give: "{status:{from:4,to:6}}", want: change{key: "status", from: "4", toVal: "6"}},
		{give: " {responder_id:{from:,to:150014937111}} ", want: change{key: "responder_id", toVal: "150014937111"}},
		{give: "", want: change{}},
		{give: "status changed", wantErr: true},
		{give: "{status}", wantErr: true},
		{give: "{status:{from:4,to:6}", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseChange(tt.give)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseChange(%q) = %+v, %v; want %+v, error %v", tt.give, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestTimestamps(t *testing.T) {
	want := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for _, give := range []string{"2026-11-20 09:00:00 UTC", "2026-11-20 14:30:00 +0530", "2026-11-20 04:00:00 -05:00", "2026-11-20T09:00:00Z"} {
		got, err := parseTime(give, "f")
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("parseTime(%q) = %v, %v; want %v", give, got, err, want)
		}
	}
	for _, give := range []string{"", "November 20 2026 at 09:00 AM", "2026-11-20 09:00:00 IST"} {
		if _, err := parseTime(give, "f"); err == nil {
			t.Errorf("parseTime(%q) accepted", give)
		}
	}
}

func TestSkips(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"spam", SkipSpam},
		{"deleted", SkipDeleted},
		{"assignment-none", SkipUnassigned},
		{"reply-agent-unassigned", SkipUnknownAgent},
		{"status-custom", SkipUnmapped},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			res, err := New().Map(adaptertest.Delivery(t, "testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != tt.want {
				t.Errorf("got %+v, want one skip %s", res, tt.want)
			}
		})
	}
}

// A retry is the same body received later: ids must not move. Different happenings in one
// ticket update must not share an id.
func TestIDStability(t *testing.T) {
	for _, name := range adaptertest.Cases(t, "testdata") {
		t.Run(name, func(t *testing.T) {
			adaptertest.Retry(t, New(), adaptertest.Delivery(t, "testdata", name), nil)
		})
	}
	ids := map[string]string{}
	for _, body := range []string{
		ruleBody("reply", "agent", "{reply_sent:sent}", "a@x"),
		ruleBody("reply", "customer", "{reply_sent:sent}", "a@x"),
		ruleBody("note", "agent", "{note_type:private}", "a@x"),
		ruleBody("status", "agent", "{status:{from:2,to:4}}", "a@x"),
		ruleBody("priority", "agent", "{priority:{from:2,to:3}}", "a@x"),
		ruleBody("assignment", "agent", "{responder_id:{from:,to:1}}", "a@x"),
	} {
		res, err := mapBody(t, body)
		if err != nil {
			t.Fatal(err)
		}
		id := res.Events[0].ID
		if prev, dup := ids[id]; dup {
			t.Errorf("%s and %s share the id %s", prev, res.Events[0].Type, id)
		}
		ids[id] = res.Events[0].Type
	}
}

func TestConversation(t *testing.T) {
	// Who each event is by: the automation's reply and the private note must not count.
	kinds := []string{"customer", "agent", "automation", "agent", "agent", "customer", "agent", "agent", "customer"}
	events, expect := adaptertest.CheckConversation(t, New(), filepath.Join("testdata", "conversation"), map[string][]string{
		"01-ticket-created":     {"ticket_created"},
		"02-assigned-to-agent":  {"ticket_assigned"},
		"03-bot-reply":          {"agent_message"},
		"04-private-note":       {"agent_message"},
		"05-agent-first-reply":  {"agent_message"},
		"06-customer-reply":     {"customer_message"},
		"07-agent-second-reply": {"agent_message"},
		"08-resolved":           {"status_changed"},
		"09-rating-unhappy":     {"satisfaction_rated"},
	})
	if len(events) != len(kinds) {
		t.Fatalf("%d events, want %d", len(events), len(kinds))
	}
	for i, ev := range events {
		if ev.Actor.Kind != kinds[i] {
			t.Errorf("event %d (%s): by %s, want %s", i, ev.Type, ev.Actor.Kind, kinds[i])
		}
	}
	created := events[0].OccurredAt
	for _, c := range []struct {
		i      int
		after  time.Duration
		public bool
	}{{3, 15 * time.Minute, false}, {4, 30 * time.Minute, true}, {6, time.Hour, true}} {
		ev := events[c.i]
		if ev.OccurredAt.Sub(created) != c.after || *ev.Public != c.public || ev.Actor.ID != expect.AgentID || ev.AssigneeID != expect.AgentID || ev.TeamID != expect.TeamID {
			t.Errorf("event %d: %+v, want agent %s in team %s, public %v, %s after creation", c.i, ev, expect.AgentID, expect.TeamID, c.public, c.after)
		}
	}
	if reply := events[5]; reply.OccurredAt.Sub(events[4].OccurredAt) != 10*time.Minute || events[6].OccurredAt.Sub(reply.OccurredAt) != 20*time.Minute {
		t.Errorf("customer reply at %v, second agent reply at %v", reply.OccurredAt, events[6].OccurredAt)
	}
	if solved := events[7]; solved.Status != "solved" || solved.OccurredAt.Sub(created) != 2*time.Hour || solved.AssigneeID != expect.AgentID {
		t.Errorf("solved: %+v", solved)
	}
	if r := events[8].Satisfaction; r == nil || r.Score != expect.CSATScore || r.Scale != 5 {
		t.Errorf("rating: %+v, want %d on scale 5", r, expect.CSATScore)
	}
}

func FuzzFreshdesk(f *testing.F) { adaptertest.Fuzz(f, New(), "testdata") }

// Freshdesk's automation placeholders reach no conversation id and no modification count, so
// nothing orders a ticket's events of the same instant beyond their kind and id
// (docs/helpdesks.md): no event carries a sequence, whatever the rule.
func TestNoSequence(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{"created", ruleBody("created", "customer", "{ticket_action:created}", "")},
		{"agent reply", ruleBody("reply", "agent", "", "ana@example.com")},
		{"customer reply", ruleBody("reply", "customer", "", "ana@example.com")},
		{"private note", ruleBody("note", "agent", "{note_type:private}", "ana@example.com")},
		{"status", ruleBody("status", "agent", "{status:{from:2,to:4}}", "ana@example.com")},
		{"assignment", ruleBody("assignment", "system", "", "ana@example.com")},
		{"rating", ruleBody("rating", "customer", "{customer_feedback:103}", "ana@example.com")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := mapBody(t, tt.give)
			if err != nil || len(res.Events) != 1 {
				t.Fatalf("got %+v, %v; want one event", res, err)
			}
			if s := res.Events[0].Sequence; s != 0 {
				t.Errorf("sequence %d, want none", s)
			}
		})
	}
}
