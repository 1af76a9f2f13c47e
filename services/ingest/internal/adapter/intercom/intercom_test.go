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

// TestConversationV1 replays a conversation delivered in the API 1.x shape
// (conversation_message, user, an assignee object, a rating by "customer"): the same figures
// as a 2.x conversation must come out of it.
func TestConversationV1(t *testing.T) {
	all, expect := adaptertest.CheckConversation(t, New(), filepath.Join("testdata", "conversation-v1"), map[string][]string{
		"01-user-created":       {"ticket_created", "customer_message"},
		"02-assigned-to-sam":    {"ticket_assigned"},
		"03-internal-note":      {"agent_message"},
		"04-agent-first-reply":  {"agent_message"},
		"05-customer-reply":     {"customer_message"},
		"06-agent-second-reply": {"agent_message"},
		"07-closed":             {"status_changed"},
		"08-rated":              {"satisfaction_rated"},
	})
	for _, ev := range all {
		if ev.Type != "ticket_created" && ev.Type != "customer_message" && ev.AssigneeID != expect.AgentID {
			t.Errorf("%s: assignee %q from the 1.x assignee object, want %q", ev.Type, ev.AssigneeID, expect.AgentID)
		}
		if ev.Channel != "" {
			t.Errorf("%s: channel %q; 1.x names none", ev.Type, ev.Channel)
		}
	}
}

// TestTicketConversation replays a customer ticket's life: creation, team and admin
// assignment, a note, the state moving to in progress, replies both ways and the resolution.
func TestTicketConversation(t *testing.T) {
	all, expect := adaptertest.CheckConversation(t, New(), filepath.Join("testdata", "ticket-conversation"), map[string][]string{
		"01-ticket-created":     {"ticket_created"},
		"02-team-assigned":      {"ticket_assigned"},
		"03-admin-assigned":     {"ticket_assigned"},
		"04-note":               {"agent_message"},
		"05-in-progress":        {"status_changed"},
		"06-agent-first-reply":  {"agent_message"},
		"07-customer-reply":     {"customer_message"},
		"08-agent-second-reply": {"agent_message"},
		"09-resolved":           {"status_changed"},
	})
	wantStatus := []string{"new", "", "", "", "open", "", "", "", "solved"}
	for i, ev := range all {
		if ev.Status != wantStatus[i] {
			t.Errorf("event %d (%s): status %q, want %q", i, ev.Type, ev.Status, wantStatus[i])
		}
	}
	if note := all[3]; adaptertest.Public(note.Public) != false {
		t.Errorf("ticket note public %v, want false", adaptertest.Public(note.Public))
	}
	if last := all[len(all)-1]; last.AssigneeID != expect.AgentID || last.TeamID != expect.TeamID {
		t.Errorf("resolved by %q/%q, want %q/%q", last.AssigneeID, last.TeamID, expect.AgentID, expect.TeamID)
	}
}

func TestTicketStates(t *testing.T) {
	tests := []struct {
		give   string
		want   string
		wantOK bool
	}{
		{"submitted", "new", true},
		{"in_progress", "open", true},
		{"waiting_on_customer", "pending", true},
		{"resolved", "solved", true},
		{"Resolved", "solved", true},
		{"closed", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got, ok := ticketStatusOf(tt.give); got != tt.want || ok != tt.wantOK {
			t.Errorf("ticketStatusOf(%q) = %q, %v; want %q, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}

// ticketNotify builds a ticket notification of topic for ticket 77 with the given item
// overrides and parts.
func ticketNotify(topic string, item map[string]any, parts ...map[string]any) []byte {
	it := map[string]any{
		"type": "ticket", "id": "77", "ticket_id": "12", "ticket_state": "in_progress", "category": "Customer",
		"admin_assignee_id": "7", "team_assignee_id": "9", "created_at": 1772442000, "updated_at": 1772443800,
		"contacts": map[string]any{"type": "contact.list", "contacts": []any{map[string]any{"type": "contact", "id": "c1"}}},
	}
	for k, v := range item {
		it[k] = v
	}
	var ps []any
	for _, p := range parts {
		full := map[string]any{"type": "ticket_part", "id": "tp1", "part_type": "comment", "created_at": 1772443800,
			"author": map[string]any{"type": "admin", "id": "7"}}
		for k, v := range p {
			full[k] = v
		}
		ps = append(ps, full)
	}
	it["ticket_parts"] = map[string]any{"type": "ticket_part.list", "ticket_parts": ps, "total_count": len(ps)}
	b, err := json.Marshal(map[string]any{"type": "notification_event", "id": "notif_t", "topic": topic,
		"created_at": 1772443801, "data": map[string]any{"type": "notification_event_data", "item": it}})
	if err != nil {
		panic(err)
	}
	return b
}

func TestTicketParts(t *testing.T) {
	tests := []struct {
		name       string
		topic      string
		item       map[string]any
		part       map[string]any
		wantTypes  []string
		wantStatus string
		wantSkip   string
	}{
		{"admin reply", "ticket.admin.replied", nil, map[string]any{}, []string{"agent_message"}, "", ""},
		{"contact reply", "ticket.contact.replied", nil, map[string]any{"author": map[string]any{"type": "user", "id": "c1"}}, []string{"customer_message"}, "", ""},
		{"note", "ticket.note.created", nil, map[string]any{"part_type": "note"}, []string{"agent_message"}, "", ""},
		{"quick reply", "ticket.admin.replied", nil, map[string]any{"part_type": "quick_reply"}, []string{"agent_message"}, "", ""},
		{"state part", "ticket.state.updated", nil, map[string]any{"part_type": "ticket_state_updated_by_admin", "previous_ticket_state": "in_progress", "ticket_state": "waiting_on_customer"}, []string{"status_changed"}, "pending", ""},
		{"state part as object", "ticket.state.updated", nil, map[string]any{"part_type": "ticket_state_updated_by_admin", "previous_ticket_state": "submitted", "ticket_state": map[string]any{"category": "resolved"}}, []string{"status_changed"}, "solved", ""},
		{"reply that resolves", "ticket.admin.replied", nil, map[string]any{"previous_ticket_state": "in_progress", "ticket_state": "resolved"}, []string{"agent_message", "status_changed"}, "solved", ""},
		{"unchanged state", "ticket.state.updated", nil, map[string]any{"part_type": "ticket_state_updated_by_admin", "previous_ticket_state": "in_progress", "ticket_state": "in_progress"}, nil, "", SkipActivityPart},
		{"unknown state", "ticket.state.updated", nil, map[string]any{"part_type": "ticket_state_updated_by_admin", "previous_ticket_state": "in_progress", "ticket_state": "archived"}, nil, "", SkipUnmappedState},
		{"tracker ticket", "ticket.admin.replied", map[string]any{"category": "Tracker"}, map[string]any{}, nil, "", SkipInternalTicket},
		{"back-office by ticket type", "ticket.admin.replied", map[string]any{"category": nil, "ticket_type": map[string]any{"category": "Back-office"}}, map[string]any{}, nil, "", SkipInternalTicket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mapBody(t, ticketNotify(tt.topic, tt.item, tt.part))
			var types []string
			status := ""
			for _, ev := range res.Events {
				types = append(types, ev.Type)
				if ev.Type == "status_changed" {
					status = ev.Status
				}
			}
			skip := ""
			if len(res.Skipped) > 0 {
				skip = res.Skipped[0].Reason
			}
			if !slices.Equal(types, tt.wantTypes) || status != tt.wantStatus || skip != tt.wantSkip {
				t.Errorf("got %v %q skip %q, want %v %q skip %q (%+v)", types, status, skip, tt.wantTypes, tt.wantStatus, tt.wantSkip, res)
			}
		})
	}
}

// Every API version's shape: the version decides nothing but where the fields are.
func TestAPIVersionShapes(t *testing.T) {
	v1 := func(item map[string]any) []byte {
		base := map[string]any{"source": nil, "admin_assignee_id": nil, "team_assignee_id": nil,
			"conversation_message": map[string]any{"type": "conversation_message", "id": "m1", "author": map[string]any{"type": "lead", "id": "u1"}},
			"user":                 map[string]any{"type": "lead", "id": "u1"}}
		for k, v := range item {
			base[k] = v
		}
		return notify("conversation.user.created", base)
	}
	tests := []struct {
		name         string
		give         []byte
		wantAssignee string
		wantTeam     string
		wantChannel  string
	}{
		{"2.x", notify("conversation.user.created", nil), "7", "9", "conversation"},
		{"1.x assigned to an admin", v1(map[string]any{"assignee": map[string]any{"type": "admin", "id": "25"}}), "25", "", ""},
		{"1.x assigned to a team", v1(map[string]any{"assignee": map[string]any{"type": "team", "id": "31"}}), "", "31", ""},
		{"1.x unassigned", v1(map[string]any{"assignee": map[string]any{"type": "nobody_admin", "id": nil}}), "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mapBody(t, tt.give)
			if len(res.Events) != 2 {
				t.Fatalf("got %+v, want the creation and its message", res)
			}
			for _, ev := range res.Events {
				if ev.AssigneeID != tt.wantAssignee || ev.TeamID != tt.wantTeam || ev.Channel != tt.wantChannel || ev.Actor.Kind != "customer" {
					t.Errorf("%s: assignee %q team %q channel %q actor %+v, want %q %q %q customer", ev.Type, ev.AssigneeID, ev.TeamID, ev.Channel, ev.Actor, tt.wantAssignee, tt.wantTeam, tt.wantChannel)
				}
			}
		})
	}
	// A 1.x creation and its 2.x twin of the same conversation are the same events.
	a := mapBody(t, v1(nil))
	b := mapBody(t, notify("conversation.user.created", map[string]any{"source": map[string]any{"type": "conversation", "id": "m1", "author": map[string]any{"type": "lead", "id": "u1"}}}))
	if a.Events[0].ID != b.Events[0].ID || a.Events[1].ID != b.Events[1].ID {
		t.Errorf("1.x ids %s %s, 2.x ids %s %s", a.Events[0].ID, a.Events[1].ID, b.Events[0].ID, b.Events[1].ID)
	}
}

func TestMalformedNewShapes(t *testing.T) {
	tests := []struct {
		name      string
		give      string
		wantField string
	}{
		{"1.x without a message", "malformed-v1-user-created-without-message", "data.item.source"},
		{"1.x author without id", "malformed-v1-message-author-without-id", "data.item.conversation_message.author.id"},
		{"1.x assignee a string", "malformed-v1-assignee-string", "data.item.assignee"},
		{"ticket state a number", "malformed-ticket-state-number", "data.item.ticket_state"},
		{"ticket part without id", "malformed-ticket-part-without-id", "data.item.ticket_parts.ticket_parts[0].id"},
		{"ticket state update without state", "malformed-ticket-state-updated-without-state", "data.item.ticket_state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adaptertest.Problem(t, New(), adaptertest.Delivery(t, "testdata", tt.give), tt.wantField)
		})
	}
	inline := []struct {
		name      string
		give      []byte
		wantField string
	}{
		{"ticket part time as text", ticketNotify("ticket.admin.replied", nil, map[string]any{"created_at": "soon"}), "data.item.ticket_parts.ticket_parts.created_at"},
		{"ticket part author unknown", ticketNotify("ticket.admin.replied", nil, map[string]any{"author": map[string]any{"type": "robot", "id": "r"}}), "data.item.ticket_parts.ticket_parts[0].author.type"},
		{"ticket created without time", ticketNotify("ticket.created", map[string]any{"created_at": 0}), "data.item.created_at"},
		{"ticket assigned snapshot without time", ticketNotify("ticket.admin.assigned", map[string]any{"updated_at": nil}), "data.item.updated_at"},
		{"1.x rating customer not an object", notify("conversation.rating.added", map[string]any{"conversation_rating": map[string]any{"rating": 3, "customer": "u1"}}), "data.item.conversation_rating.customer"},
	}
	for _, tt := range inline {
		t.Run(tt.name, func(t *testing.T) {
			adaptertest.Problem(t, New(), adapter.Delivery{Body: tt.give}, tt.wantField)
		})
	}
}

// Every recorded delivery, retried later under another delivery, maps to the same events; a
// ticket part delivered under two topics is one event.
func TestIDStabilityAllCases(t *testing.T) {
	for _, dir := range []string{"testdata", filepath.Join("testdata", "conversation-v1"), filepath.Join("testdata", "ticket-conversation")} {
		for _, name := range adaptertest.Cases(t, dir) {
			t.Run(filepath.Join(dir, name), func(t *testing.T) {
				adaptertest.Retry(t, New(), adaptertest.Delivery(t, dir, name), nil)
			})
		}
	}
	a := mapBody(t, ticketNotify("ticket.admin.replied", nil, map[string]any{"id": "tp9"}))
	b := mapBody(t, ticketNotify("ticket.admin.assigned", nil, map[string]any{"id": "tp9"}))
	if a.Events[0].ID != b.Events[0].ID {
		t.Errorf("one ticket part, two ids: %s, %s", a.Events[0].ID, b.Events[0].ID)
	}
	s1 := mapBody(t, ticketNotify("ticket.state.updated", map[string]any{"ticket_state": "resolved"}))
	s2 := mapBody(t, ticketNotify("ticket.state.updated", map[string]any{"ticket_state": "resolved"}))
	s3 := mapBody(t, ticketNotify("ticket.state.updated", map[string]any{"ticket_state": "resolved", "updated_at": 1772449000}))
	if s1.Events[0].ID != s2.Events[0].ID || s1.Events[0].ID == s3.Events[0].ID {
		t.Errorf("snapshot state ids %s %s %s: want the same change once, a later change anew", s1.Events[0].ID, s2.Events[0].ID, s3.Events[0].ID)
	}
}
