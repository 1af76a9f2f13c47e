package zammad

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

// TestConversation replays one recorded ticket life in order: every delivery must map, and
// the event types are what the KPI engine needs to derive conversation/expect.json.
func TestConversation(t *testing.T) {
	dir := filepath.Join("testdata", "conversation")
	want := map[string][]string{
		"01-ticket-created":     {"ticket_created", "customer_message"},
		"02-assigned-to-emma":   {"ticket_assigned"},
		"03-trigger-auto-reply": {"agent_message"},
		"04-internal-note":      {"agent_message"},
		"05-agent-first-reply":  {"agent_message"},
		"06-customer-reply":     {"customer_message"},
		"07-agent-second-reply": {"agent_message"},
		"08-closed":             {"status_changed"},
	}
	all, expect := adaptertest.CheckConversation(t, New(), dir, want)
	// The responses and the resolution are credited to the expected agent and team, and only
	// the two public agent replies can count as responses.
	var responses int
	for _, ev := range all {
		if ev.Type == "agent_message" && ev.Actor.Kind == "agent" && *ev.Public {
			responses++
			if ev.Actor.ID != expect.AgentID {
				t.Errorf("response by %q, want %q", ev.Actor.ID, expect.AgentID)
			}
		}
		if ev.Type == "status_changed" && (ev.AssigneeID != expect.AgentID || ev.TeamID != expect.TeamID) {
			t.Errorf("resolution credited to %q/%q, want %q/%q", ev.AssigneeID, ev.TeamID, expect.AgentID, expect.TeamID)
		}
	}
	if responses != 2 {
		t.Errorf("%d public agent messages, want 2", responses)
	}
}

// custom builds a custom-payload body: the ticket 7 of customer 8, owned by agent 5 in
// group 3, with the given overrides; a nil article leaves the article out.
func custom(event string, tk map[string]any, art map[string]any) []byte {
	ticket := map[string]any{
		"id": 7, "state": "open", "priority": "2 normal", "owner_id": 5, "group_id": 3, "customer_id": 8,
		"created_by_id": 8, "updated_by_id": 5, "create_article_sender_id": 2,
		"created_at": "2026-03-02 09:00:00 UTC", "updated_at": "2026-03-02 10:00:00 UTC",
	}
	for k, v := range tk {
		ticket[k] = v
	}
	body := map[string]any{"event": event, "ticket": ticket}
	if art != nil {
		a := map[string]any{"id": 70, "sender": "Agent", "type": "email", "internal": false,
			"created_by_id": 5, "origin_by_id": "", "created_at": "2026-03-02 10:00:00 UTC"}
		for k, v := range art {
			a[k] = v
		}
		body["article"] = a
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return b
}

func mapBody(t *testing.T, body []byte) adapter.Result {
	t.Helper()
	return adaptertest.Map(t, New(), adapter.Delivery{Header: http.Header{}, Body: body, Received: adaptertest.Received})
}

func TestArticleMapping(t *testing.T) {
	tests := []struct {
		name       string
		give       map[string]any
		wantType   string
		wantActor  canonical.Actor
		wantPublic bool
	}{
		{"customer email", map[string]any{"sender": "Customer", "created_by_id": 8}, "customer_message", canonical.Actor{ID: "8", Kind: "customer"}, true},
		{"phone call typed in by the agent", map[string]any{"sender": "Customer", "type": "phone", "created_by_id": 5, "origin_by_id": 8}, "customer_message", canonical.Actor{ID: "8", Kind: "customer"}, true},
		{"agent reply", map[string]any{}, "agent_message", canonical.Actor{ID: "5", Kind: "agent"}, true},
		{"internal note", map[string]any{"type": "note", "internal": true}, "agent_message", canonical.Actor{ID: "5", Kind: "agent"}, false},
		{"public note", map[string]any{"type": "note", "internal": false}, "agent_message", canonical.Actor{ID: "5", Kind: "agent"}, true},
		{"internal as string (older Zammad)", map[string]any{"internal": "true"}, "agent_message", canonical.Actor{ID: "5", Kind: "agent"}, false},
		{"trigger auto-reply", map[string]any{"sender": "System", "created_by_id": 1}, "agent_message", canonical.Actor{Kind: "system"}, true},
		{"agent article by the system user (scheduler)", map[string]any{"created_by_id": 1}, "agent_message", canonical.Actor{Kind: "system"}, true},
		{"sender in lower case", map[string]any{"sender": "agent"}, "agent_message", canonical.Actor{ID: "5", Kind: "agent"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mapBody(t, custom("article_created", nil, tt.give))
			if len(res.Events) != 1 {
				t.Fatalf("got %d events, want 1: %+v", len(res.Events), res)
			}
			ev := res.Events[0]
			if ev.Type != tt.wantType || ev.Actor != tt.wantActor || ev.Public == nil || *ev.Public != tt.wantPublic {
				t.Errorf("got %s by %+v public %v, want %s by %+v public %v", ev.Type, ev.Actor, adaptertest.Public(ev.Public), tt.wantType, tt.wantActor, tt.wantPublic)
			}
		})
	}
}

func TestStatusMapping(t *testing.T) {
	tests := []struct {
		give       string
		wantStatus string
		wantSkip   string
	}{
		{"new", "new", ""},
		{"open", "open", ""},
		{"pending reminder", "pending", ""},
		{"pending close", "pending", ""},
		{"closed", "solved", ""},
		{"Closed", "solved", ""},
		{"merged", "", SkipMerged},
		{"removed", "", SkipDeleted},
		{"waiting for supplier", "", SkipUnmappedState},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			res := mapBody(t, custom("state_changed", map[string]any{"state": tt.give}, nil))
			var status, skip string
			if len(res.Events) == 1 && res.Events[0].Type == "status_changed" {
				status = res.Events[0].Status
			}
			if len(res.Skipped) == 1 {
				skip = res.Skipped[0].Reason
			}
			if status != tt.wantStatus || skip != tt.wantSkip || len(res.Events)+len(res.Skipped) != 1 {
				t.Errorf("got %+v, want status %q skip %q", res, tt.wantStatus, tt.wantSkip)
			}
		})
	}
}

func TestPriorityMapping(t *testing.T) {
	tests := []struct {
		give any
		want string
	}{
		{"1 low", "low"},
		{"2 normal", "normal"},
		{"3 high", "high"},
		{map[string]any{"id": 3, "name": "3 high"}, "high"}, // the default payload's object
		{"4 very high", ""},
		{"", ""},
	}
	for _, tt := range tests {
		name, _ := json.Marshal(tt.give)
		t.Run(string(name), func(t *testing.T) {
			res := mapBody(t, custom("priority_changed", map[string]any{"priority": tt.give}, nil))
			got := ""
			if len(res.Events) == 1 {
				got = res.Events[0].Priority
			} else if len(res.Skipped) != 1 || res.Skipped[0].Reason != SkipUnmappedPriority {
				t.Fatalf("got %+v, want one event or an unmapped_priority skip", res)
			}
			if got != tt.want {
				t.Errorf("priority %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAssigneeAndTeam(t *testing.T) {
	tests := []struct {
		name         string
		give         map[string]any
		wantAssignee string
		wantTeam     string
	}{
		{"owned", map[string]any{}, "5", "3"},
		{"system user 1 means unassigned", map[string]any{"owner_id": 1}, "", "3"},
		{"owner object of the default payload", map[string]any{"owner_id": nil, "owner": map[string]any{"id": 9, "login": "jacob@example.com"}}, "9", "3"},
		{"group object of the default payload", map[string]any{"group_id": nil, "group": map[string]any{"id": 4, "name": "Billing"}}, "5", "4"},
		{"ids as strings", map[string]any{"owner_id": "5", "group_id": "3"}, "5", "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mapBody(t, custom("owner_changed", tt.give, nil))
			if len(res.Events) != 1 {
				t.Fatalf("got %+v", res)
			}
			if ev := res.Events[0]; ev.AssigneeID != tt.wantAssignee || ev.TeamID != tt.wantTeam {
				t.Errorf("assignee %q team %q, want %q %q", ev.AssigneeID, ev.TeamID, tt.wantAssignee, tt.wantTeam)
			}
		})
	}
}

// TestIDStability: Zammad retries a delivery with the same body, and two triggers on one update
// send the same facts with different delivery ids; neither may change an event id.
func TestIDStability(t *testing.T) {
	for _, name := range []string{"default-agent-reply", "default-ticket-created-phone", "custom-state-pending-with-reply"} {
		t.Run(name, func(t *testing.T) {
			first, err := adaptertest.Retry(t, New(), adaptertest.Delivery(t, "testdata", name), func(d *adapter.Delivery) { d.Header.Set("X-Zammad-Trigger", "another trigger") })
			if err != nil {
				t.Fatal(err)
			}
			if len(first.Events) == 0 {
				t.Fatal("no events")
			}
			ids := map[string]bool{}
			for _, ev := range first.Events {
				ids[ev.ID] = true
			}
			if len(ids) != len(first.Events) {
				t.Errorf("event ids are not unique within the delivery")
			}
		})
	}
	// The same article reached through the default and the custom payload is one event.
	def := mapBody(t, []byte(`{"ticket":{"id":7,"state":"open","owner_id":5,"group_id":3,"customer_id":8,"created_at":"2026-03-02T09:00:00.000Z","updated_at":"2026-03-02T10:00:00.000Z","article_ids":[69,70]},
		"article":{"id":70,"sender":"Agent","type":"email","internal":false,"created_by_id":5,"created_at":"2026-03-02T10:00:00.000Z"}}`))
	cus := mapBody(t, custom("article_created", nil, map[string]any{}))
	if def.Events[0].ID != cus.Events[0].ID {
		t.Errorf("article id differs between payload shapes: %s vs %s", def.Events[0].ID, cus.Events[0].ID)
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name      string
		give      string
		wantField string
	}{
		{"array body", `[]`, ""},
		{"no ticket", `{"article":{}}`, "ticket"},
		{"ticket id missing", `{"ticket":{"created_at":"2026-03-02T09:00:00Z","updated_at":"2026-03-02T09:00:00Z"}}`, "ticket.id"},
		{"ticket id unresolved placeholder", string(custom("state_changed", map[string]any{"id": "#{ticket.id / no such method}"}, nil)), "ticket.id"},
		{"ticket id object", `{"ticket":{"id":{},"created_at":"2026-03-02T09:00:00Z","updated_at":"2026-03-02T09:00:00Z"}}`, "ticket.id"},
		{"ticket id with a control character", string(custom("state_changed", map[string]any{"id": "7\u0000x"}, nil)), "ticket.id"},
		{"created_at missing", `{"ticket":{"id":7,"updated_at":"2026-03-02T09:00:00Z"}}`, "ticket.created_at"},
		{"created_at before 1970", string(custom("state_changed", map[string]any{"created_at": "1969-12-31T23:59:59Z"}, nil)), "ticket.created_at"},
		{"zone abbreviation other than UTC", string(custom("state_changed", map[string]any{"updated_at": "2026-03-02 10:00:00 CET"}, nil)), "ticket.updated_at"},
		{"numeric offset accepted, so garbage after it is not", string(custom("state_changed", map[string]any{"updated_at": "2026-03-02 10:00:00 +0100x"}, nil)), "ticket.updated_at"},
		{"article created_at garbage", string(custom("article_created", nil, map[string]any{"created_at": "soon"})), "article.created_at"},
		{"unknown sender", string(custom("article_created", nil, map[string]any{"sender": "Robot"})), "article.sender"},
		{"internal not a boolean", string(custom("article_created", nil, map[string]any{"internal": 1})), "article.internal"},
		{"unknown event", string(custom("ticket_escalated", nil, nil)), "event"},
		{"article_created without article", string(custom("article_created", nil, nil)), "article.id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adaptertest.Problem(t, New(), adapter.Delivery{Body: []byte(tt.give)}, tt.wantField)
		})
	}
}

func FuzzZammad(f *testing.F) { adaptertest.Fuzz(f, New(), "testdata") }

// Article ids order a ticket's articles of the same second (docs/helpdesks.md); the ticket's
// creation and its state, owner and priority changes carry no per-ticket order.
func TestSequence(t *testing.T) {
	tests := []struct {
		name string
		give []byte
		want []uint64 // of each event, in order
	}{
		{"agent article", custom("article_created", nil, map[string]any{"id": 70}), []uint64{70}},
		{"customer article, id as a string", custom("article_created", nil, map[string]any{"id": " 71", "sender": "Customer", "created_by_id": 8}), []uint64{71}},
		{"internal note", custom("article_created", nil, map[string]any{"id": 72, "internal": true}), []uint64{72}},
		{"article id beyond 2^53-1: none", custom("article_created", nil, map[string]any{"id": json.Number("9007199254740992")}), []uint64{0}},
		{"state change with its reply: the reply only", custom("state_changed", map[string]any{"state": "closed"}, map[string]any{"id": 73}), []uint64{73, 0}},
		{"ticket created with its first article", custom("ticket_created", map[string]any{"article_ids": []int{74}}, map[string]any{"id": 74, "sender": "Customer", "created_by_id": 8}), []uint64{0, 74}},
		{"owner change: none", custom("owner_changed", nil, nil), []uint64{0}},
		{"priority change: none", custom("priority_changed", map[string]any{"priority": "3 high"}, nil), []uint64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := mapBody(t, tt.give)
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
