package intercom

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

func TestGolden(t *testing.T) {
	adaptertest.Golden(t, New(), "testdata")
}

// TestConversation replays one recorded conversation in order: every delivery must map, and
// the event types are what the KPI engine needs to derive conversation/expect.json.
func TestConversation(t *testing.T) {
	dir := filepath.Join("testdata", "conversation")
	want := map[string][]string{
		"01-user-created":       {"ticket_created", "customer_message"},
		"02-assigned-to-emma":   {"ticket_assigned"},
		"03-fin-reply":          {"agent_message"},
		"04-internal-note":      {"agent_message"},
		"05-agent-first-reply":  {"agent_message"},
		"06-customer-reply":     {"customer_message"},
		"07-agent-second-reply": {"agent_message"},
		"08-closed":             {"status_changed"},
		"09-rated":              {"satisfaction_rated"},
	}
	all, expect := adaptertest.CheckConversation(t, New(), dir, want)
	var responses int
	for _, ev := range all {
		switch {
		case ev.Type == "agent_message" && ev.Actor.Kind == "agent" && *ev.Public:
			responses++
			if ev.Actor.ID != expect.AgentID {
				t.Errorf("response by %q, want %q", ev.Actor.ID, expect.AgentID)
			}
		case ev.Type == "status_changed" || ev.Type == "satisfaction_rated":
			if ev.AssigneeID != expect.AgentID || ev.TeamID != expect.TeamID {
				t.Errorf("%s credited to %q/%q, want %q/%q", ev.Type, ev.AssigneeID, ev.TeamID, expect.AgentID, expect.TeamID)
			}
		}
		if ev.Type == "satisfaction_rated" && ev.Satisfaction.Score != expect.CSATScore {
			t.Errorf("score %d, want %d", ev.Satisfaction.Score, expect.CSATScore)
		}
	}
	if responses != 2 {
		t.Errorf("%d public agent messages, want 2", responses)
	}
}

// notify builds a notification of topic for conversation 42 (assigned to admin 7 in team 9)
// with the given item overrides and parts.
func notify(topic string, item map[string]any, parts ...map[string]any) []byte {
	it := map[string]any{
		"type": "conversation", "id": "42", "created_at": 1772442000, "updated_at": 1772443800,
		"state": "open", "priority": "not_priority", "admin_assignee_id": 7, "team_assignee_id": "9",
		"source": map[string]any{"type": "conversation", "id": "420", "delivered_as": "customer_initiated",
			"author": map[string]any{"type": "user", "id": "u1"}},
	}
	for k, v := range item {
		it[k] = v
	}
	var ps []any
	for _, p := range parts {
		full := map[string]any{"type": "conversation_part", "id": "p1", "part_type": "comment", "created_at": 1772443800,
			"author": map[string]any{"type": "admin", "id": "7"}}
		for k, v := range p {
			full[k] = v
		}
		ps = append(ps, full)
	}
	it["conversation_parts"] = map[string]any{"type": "conversation_part.list", "conversation_parts": ps, "total_count": len(ps)}
	b, err := json.Marshal(map[string]any{"type": "notification_event", "id": "notif_1", "topic": topic,
		"created_at": 1772443801, "data": map[string]any{"type": "notification_event_data", "item": it}})
	if err != nil {
		panic(err)
	}
	return b
}

func mapBody(t *testing.T, body []byte) adapter.Result {
	t.Helper()
	return adaptertest.Map(t, New(), adapter.Delivery{Header: http.Header{}, Body: body, Received: adaptertest.Received})
}

func TestActorsAndNotes(t *testing.T) {
	tests := []struct {
		name       string
		topic      string
		give       map[string]any
		wantType   string
		wantActor  canonical.Actor
		wantPublic bool
	}{
		{"admin reply", "conversation.admin.replied", map[string]any{}, "agent_message", canonical.Actor{ID: "7", Kind: "agent"}, true},
		{"admin note", "conversation.admin.noted", map[string]any{"part_type": "note"}, "agent_message", canonical.Actor{ID: "7", Kind: "agent"}, false},
		{"user reply", "conversation.user.replied", map[string]any{"author": map[string]any{"type": "user", "id": "u1"}}, "customer_message", canonical.Actor{ID: "u1", Kind: "customer"}, true},
		{"lead reply", "conversation.user.replied", map[string]any{"author": map[string]any{"type": "lead", "id": "l1"}}, "customer_message", canonical.Actor{ID: "l1", Kind: "customer"}, true},
		{"Fin as bot", "conversation.operator.replied", map[string]any{"author": map[string]any{"type": "bot", "id": "b1", "from_ai_agent": true}}, "agent_message", canonical.Actor{ID: "b1", Kind: "bot"}, true},
		{"Fin on behalf of an admin", "conversation.admin.replied", map[string]any{"author": map[string]any{"type": "admin", "id": "7", "from_ai_agent": true}}, "agent_message", canonical.Actor{ID: "7", Kind: "bot"}, true},
		{"team-authored (workflow)", "conversation.admin.replied", map[string]any{"author": map[string]any{"type": "team", "id": "9"}}, "agent_message", canonical.Actor{ID: "9", Kind: "automation"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mapBody(t, notify(tt.topic, nil, tt.give))
			if len(res.Events) != 1 {
				t.Fatalf("got %+v, want one event", res)
			}
			ev := res.Events[0]
			if ev.Type != tt.wantType || ev.Actor != tt.wantActor || adaptertest.Public(ev.Public) != tt.wantPublic {
				t.Errorf("got %s by %+v public %v, want %s by %+v public %v", ev.Type, ev.Actor, adaptertest.Public(ev.Public), tt.wantType, tt.wantActor, tt.wantPublic)
			}
		})
	}
}

func TestStatusParts(t *testing.T) {
	tests := []struct {
		give      string
		wantTypes []string
		wantState string
	}{
		{"close", []string{"status_changed"}, "solved"},
		{"open", []string{"status_changed"}, "open"},
		{"snoozed", []string{"status_changed"}, "on_hold"},
		{"unsnoozed", []string{"status_changed"}, "open"},
		{"timer_unsnooze", []string{"status_changed"}, "open"},
		{"assign_and_reopen", []string{"ticket_assigned", "status_changed"}, "open"},
		{"assignment", []string{"ticket_assigned"}, ""},
		{"participant_added", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			res := mapBody(t, notify("conversation.admin.closed", nil, map[string]any{"part_type": tt.give}))
			var types []string
			state := ""
			for _, ev := range res.Events {
				types = append(types, ev.Type)
				if ev.Status != "" {
					state = ev.Status
				}
			}
			if !slices.Equal(types, tt.wantTypes) || state != tt.wantState {
				t.Errorf("got %v %q, want %v %q", types, state, tt.wantTypes, tt.wantState)
			}
			if tt.wantTypes == nil && (len(res.Skipped) != 1 || res.Skipped[0].Reason != SkipActivityPart) {
				t.Errorf("skipped %+v, want activity_part", res.Skipped)
			}
		})
	}
	if got := statusOf("snoozed"); got != "on_hold" {
		t.Errorf("created status of a snoozed conversation %q", got)
	}
}

func TestAssignment(t *testing.T) {
	tests := []struct {
		name         string
		item         map[string]any
		assignedTo   any
		wantAssignee string
		wantTeam     string
	}{
		{"to an admin", nil, map[string]any{"type": "admin", "id": "8"}, "8", "9"},
		{"to a team", map[string]any{"admin_assignee_id": nil}, map[string]any{"type": "team", "id": "11"}, "", "11"},
		{"unassigned", map[string]any{"admin_assignee_id": 0}, map[string]any{"type": "nobody_admin", "id": nil}, "", "9"},
		{"snapshot only", nil, nil, "7", "9"},
		{"team id as a number", map[string]any{"team_assignee_id": 9}, nil, "7", "9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mapBody(t, notify("conversation.admin.assigned", tt.item, map[string]any{"part_type": "assignment", "assigned_to": tt.assignedTo}))
			if len(res.Events) != 1 {
				t.Fatalf("got %+v", res)
			}
			if ev := res.Events[0]; ev.AssigneeID != tt.wantAssignee || ev.TeamID != tt.wantTeam {
				t.Errorf("assignee %q team %q, want %q %q", ev.AssigneeID, ev.TeamID, tt.wantAssignee, tt.wantTeam)
			}
		})
	}
}

func TestRatingAndPriority(t *testing.T) {
	for score := 1; score <= 5; score++ {
		res := mapBody(t, notify("conversation.rating.added", map[string]any{"conversation_rating": map[string]any{
			"rating": score, "remark": "ok\u0007", "created_at": 1772442000, "contact": map[string]any{"type": "contact", "id": "u1"}}}))
		s := res.Events[0].Satisfaction
		if s.Score != score || s.Scale != 5 || s.Comment != "ok" {
			t.Errorf("rating %d: got %+v", score, s)
		}
	}
	prios := []struct{ give, want string }{{"priority", "high"}, {"not_priority", "normal"}, {"urgent", "urgent"}, {"low", "low"}, {"none", "normal"}}
	for _, p := range prios {
		res := mapBody(t, notify("conversation.priority.updated", map[string]any{"priority": p.give}))
		if len(res.Events) != 1 || res.Events[0].Priority != p.want {
			t.Errorf("priority %q: got %+v, want %q", p.give, res, p.want)
		}
	}
	res := mapBody(t, notify("conversation.priority.updated", map[string]any{"priority": "whenever"}))
	if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != SkipUnmappedPriority {
		t.Errorf("unknown priority: got %+v", res)
	}
}

func TestSkips(t *testing.T) {
	tests := []struct {
		name string
		give []byte
		want string
	}{
		{"series message", notify("conversation.admin.single.created", map[string]any{"source": map[string]any{"id": "1", "delivered_as": "automated", "author": map[string]any{"type": "admin", "id": "7"}}}), SkipCampaign},
		{"legacy campaign", notify("conversation.user.created", map[string]any{"source": map[string]any{"id": "1", "delivered_as": "campaigns_initiated", "author": map[string]any{"type": "admin", "id": "7"}}}), SkipCampaign},
		{"deleted", notify("conversation.deleted", nil), SkipDeleted},
		{"tag topic", notify("conversation_part.tag.created", nil), SkipUnsupportedEvent},
		{"contact topic", []byte(`{"type":"notification_event","id":"n","topic":"contact.created","data":{"item":{"type":"contact","id":"c","tags":"x"}}}`), SkipUnsupportedEvent},
		{"reply without parts", notify("conversation.admin.replied", nil), SkipNoParts},
		{"twitter author", notify("conversation.user.replied", nil, map[string]any{"author": map[string]any{"type": "", "id": ""}}), SkipUnknownAuthor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mapBody(t, tt.give)
			if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != tt.want {
				t.Errorf("got %+v, want one skip %q", res, tt.want)
			}
		})
	}
}

// TestIDStability: a retry of the same notification keeps every event id, and the same part
// under another topic (a reply that also assigns) is the same event.
func TestIDStability(t *testing.T) {
	for _, name := range []string{"user-created", "admin-closed-with-attribute-update", "rating-added", "priority-updated"} {
		t.Run(name, func(t *testing.T) {
			first, err := adaptertest.Retry(t, New(), adaptertest.Delivery(t, "testdata", name), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(first.Events) == 0 {
				t.Fatal("no events")
			}
		})
	}
	a := mapBody(t, notify("conversation.admin.replied", nil, map[string]any{"id": "p9"}))
	b := mapBody(t, notify("conversation.admin.assigned", nil, map[string]any{"id": "p9"}))
	if a.Events[0].ID != b.Events[0].ID {
		t.Errorf("one part, two ids: %s, %s", a.Events[0].ID, b.Events[0].ID)
	}
	c := mapBody(t, notify("conversation.admin.replied", nil, map[string]any{"id": "p10"}))
	if a.Events[0].ID == c.Events[0].ID {
		t.Errorf("two parts, one id %s", a.Events[0].ID)
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name      string
		give      string
		wantField string
	}{
		{"array", `[]`, ""},
		{"not a notification", `{"type":"conversation","id":"42"}`, "type"},
		{"no topic", `{"type":"notification_event","id":"n"}`, "topic"},
		{"no item", `{"type":"notification_event","id":"n","topic":"conversation.admin.replied","data":{}}`, "data.item"},
		{"item id object", `{"type":"notification_event","topic":"conversation.admin.replied","data":{"item":{"id":{}}}}`, "data.item.id"},
		{"created_at as text", string(notify("conversation.user.created", map[string]any{"created_at": "yesterday"})), "data.item.created_at"},
		{"created_at negative", string(notify("conversation.user.created", map[string]any{"created_at": -5})), "data.item.created_at"},
		{"part without id", string(notify("conversation.admin.replied", nil, map[string]any{"id": nil})), "data.item.conversation_parts.conversation_parts[0].id"},
		{"part without time", string(notify("conversation.admin.replied", nil, map[string]any{"created_at": 0})), "data.item.conversation_parts.conversation_parts[0].created_at"},
		{"admin author without id", string(notify("conversation.admin.replied", nil, map[string]any{"author": map[string]any{"type": "admin"}})), "data.item.conversation_parts.conversation_parts[0].author.id"},
		{"unknown author type", string(notify("conversation.admin.replied", nil, map[string]any{"author": map[string]any{"type": "robot", "id": "r"}})), "data.item.conversation_parts.conversation_parts[0].author.type"},
		{"rating missing", string(notify("conversation.rating.added", nil)), "data.item.conversation_rating.rating"},
		{"rating 0", string(notify("conversation.rating.added", map[string]any{"conversation_rating": map[string]any{"rating": 0}})), "data.item.conversation_rating.rating"},
		{"rating without contact", string(notify("conversation.rating.added", map[string]any{"conversation_rating": map[string]any{"rating": 3, "created_at": 1772442000}})), "data.item.conversation_rating.contact.id"},
		{"rating fraction", string(notify("conversation.rating.added", map[string]any{"conversation_rating": map[string]any{"rating": 2.5}})), "data.item.conversation_rating.rating"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adaptertest.Problem(t, New(), adapter.Delivery{Body: []byte(tt.give)}, tt.wantField)
		})
	}
}

func FuzzIntercom(f *testing.F) { adaptertest.Fuzz(f, New(), "testdata") }

// Conversation part ids order a conversation's parts of the same second (docs/helpdesks.md):
// replies, notes, assignments and state changes carry their part id; the opening message and
// the conversation's creation have none, so they sort before the parts of their second.
func TestSequence(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		parts []map[string]any
		want  []uint64 // of each event, in order
	}{
		{"admin reply", "conversation.admin.replied", []map[string]any{{"id": "2174627820"}}, []uint64{2174627820}},
		{"note", "conversation.admin.noted", []map[string]any{{"id": "2174627821", "part_type": "note"}}, []uint64{2174627821}},
		{"close", "conversation.admin.closed", []map[string]any{{"id": "2174627822", "part_type": "close"}}, []uint64{2174627822}},
		{"assign and reopen: both events", "conversation.admin.open.assigned",
			[]map[string]any{{"id": "2174627823", "part_type": "assign_and_reopen", "assigned_to": map[string]any{"type": "admin", "id": "8"}}},
			[]uint64{2174627823, 2174627823}},
		{"several parts in one second", "conversation.admin.replied",
			[]map[string]any{{"id": "2174627824"}, {"id": "2174627825", "part_type": "close"}}, []uint64{2174627824, 2174627825}},
		{"created: opening message none, parts theirs", "conversation.user.created",
			[]map[string]any{{"id": "2174627826", "author": map[string]any{"type": "user", "id": "u1"}}}, []uint64{0, 0, 2174627826}},
		{"part id beyond 2^53-1: none", "conversation.admin.replied", []map[string]any{{"id": "9007199254740992"}}, []uint64{0}},
		{"part id not a number: none", "conversation.admin.replied", []map[string]any{{"id": "p1"}}, []uint64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mapBody(t, notify(tt.topic, nil, tt.parts...))
			got := make([]uint64, len(res.Events))
			for i, ev := range res.Events {
				got[i] = ev.Sequence
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("sequences %v, want %v (%+v)", got, tt.want, res)
			}
		})
	}
}
