package chatwoot

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

func TestGolden(t *testing.T) {
	adaptertest.Golden(t, New(), "testdata")
}

// fixture reads a testdata body as a map, applies edit and returns the new body.
func fixture(t *testing.T, name string, edit func(m map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mapOne(t *testing.T, body []byte) canonical.Event {
	t.Helper()
	return adaptertest.One(t, New(), adapter.Delivery{Header: http.Header{}, Body: body})
}

func TestActorKinds(t *testing.T) {
	tests := []struct {
		name        string
		messageType string
		private     bool
		sender      any
		wantType    string
		wantActor   canonical.Actor
		wantPublic  bool
	}{
		{"agent reply", "outgoing", false, map[string]any{"id": 7, "type": "user"}, "agent_message", canonical.Actor{ID: "7", Kind: "agent"}, true},
		{"private note", "outgoing", true, map[string]any{"id": 7, "type": "user"}, "agent_message", canonical.Actor{ID: "7", Kind: "agent"}, false},
		{"agent bot", "outgoing", false, map[string]any{"id": 2, "type": "agent_bot"}, "agent_message", canonical.Actor{ID: "2", Kind: "bot"}, true},
		{"captain assistant", "outgoing", false, map[string]any{"id": 1, "type": "captain_assistant"}, "agent_message", canonical.Actor{ID: "1", Kind: "bot"}, true},
		{"no sender is automation", "outgoing", false, nil, "agent_message", canonical.Actor{Kind: "automation"}, true},
		{"user without id is a bot", "outgoing", false, map[string]any{"type": "user"}, "agent_message", canonical.Actor{Kind: "bot"}, true},
		{"bot private note", "outgoing", true, map[string]any{"id": 2, "type": "agent_bot"}, "agent_message", canonical.Actor{ID: "2", Kind: "bot"}, false},
		{"customer", "incoming", false, map[string]any{"id": 88, "type": "contact"}, "customer_message", canonical.Actor{ID: "88", Kind: "customer"}, true},
		{"customer without sender falls back to the contact", "incoming", false, nil, "customer_message", canonical.Actor{ID: "88", Kind: "customer"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fixture(t, "message_created_agent_reply", func(m map[string]any) {
				m["message_type"] = tt.messageType
				m["private"] = tt.private
				m["sender"] = tt.sender
			})
			ev := mapOne(t, body)
			if ev.Type != tt.wantType || ev.Actor != tt.wantActor || ev.Public == nil || *ev.Public != tt.wantPublic {
				t.Errorf("got type %s actor %+v public %v, want %s %+v %v", ev.Type, ev.Actor, adaptertest.Public(ev.Public), tt.wantType, tt.wantActor, tt.wantPublic)
			}
		})
	}
}

func TestStatusMapping(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{"open", "open"},
		{"resolved", "solved"},
		{"pending", "pending"},
		{"snoozed", "on_hold"},
		{"Resolved", "solved"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			body := fixture(t, "conversation_status_changed_resolved", func(m map[string]any) { m["status"] = tt.give })
			ev := mapOne(t, body)
			if ev.Type != "status_changed" || ev.Status != tt.want {
				t.Errorf("got %s %q, want status_changed %q", ev.Type, ev.Status, tt.want)
			}
		})
	}
}

func TestPriorityMapping(t *testing.T) {
	tests := []struct {
		give any
		want string
	}{
		{"low", "low"},
		{"medium", "normal"},
		{"high", "high"},
		{"urgent", "urgent"},
		{nil, ""},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(strings.ToLower(toString(tt.give))), func(t *testing.T) {
			body := fixture(t, "message_created_agent_reply", func(m map[string]any) {
				m["conversation"].(map[string]any)["priority"] = tt.give
			})
			if got := mapOne(t, body).Priority; got != tt.want {
				t.Errorf("priority %v: got %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

func toString(v any) string {
	if v == nil {
		return "null"
	}
	return v.(string)
}

func TestRatingMapping(t *testing.T) {
	tests := []struct {
		name        string
		rating      any
		feedback    string
		wantScore   int
		wantComment string
	}{
		{"lowest", 1, "", 1, ""},
		{"low with comment", 2, "Too slow", 2, "Too slow"},
		{"middle", 3, "ok", 3, "ok"},
		{"high", 4, "", 4, ""},
		{"highest", 5, "  Great!  ", 5, "Great!"},
		{"control characters dropped", 5, "ok\x07 fine\nthanks", 5, "ok fine\nthanks"},
		{"long comment cut to the limit", 3, strings.Repeat("é", 3000), 3, strings.Repeat("é", 2000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fixture(t, "message_updated_csat", func(m map[string]any) {
				m["content_attributes"] = map[string]any{"submitted_values": map[string]any{
					"csat_survey_response": map[string]any{"rating": tt.rating, "feedback_message": tt.feedback}}}
			})
			ev := mapOne(t, body)
			want := canonical.Satisfaction{Score: tt.wantScore, Scale: 5, Comment: tt.wantComment}
			if ev.Type != "satisfaction_rated" || ev.Satisfaction == nil || *ev.Satisfaction != want {
				t.Errorf("got %s %+v, want %+v", ev.Type, ev.Satisfaction, want)
			}
		})
	}
}

func TestSkips(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{"message_created_activity", ReasonActivity},
		{"message_created_template", ReasonTemplate},
		{"message_created_campaign", ReasonCampaign},
		{"message_updated_edit", ReasonMessageEdit},
		{"message_updated_csat_not_answered", ReasonMessageEdit},
		{"conversation_updated_labels_only", ReasonNoKPIChange},
		{"webwidget_triggered", ReasonUnsupportedEvent},
		{"contact_created", ReasonUnsupportedEvent},
		{"conversation_resolved_deprecated", ReasonUnsupportedEvent},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			d := adaptertest.Delivery(t, "testdata", tt.give)
			res, err := New().Map(d)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != tt.want {
				t.Errorf("got %+v, want one skip %q", res, tt.want)
			}
		})
	}
}

// A retry of the same delivery (another receive time, even another delivery id) must give the
// same event ids, and the ids of different events must differ.
func TestIDsStableAndUnique(t *testing.T) {
	seen := map[string]string{}
	for _, dir := range []string{"testdata"} {
		for _, name := range adaptertest.Cases(t, dir) {
			first, _ := adaptertest.Retry(t, New(), adaptertest.Delivery(t, dir, name), nil)
			for _, ev := range first.Events {
				// The same message appears in several fixtures on purpose (created, edited); only
				// events that are really the same may share an id.
				key := ev.Type + "|" + ev.OccurredAt.String()
				if prev, ok := seen[ev.ID]; ok && prev != key {
					t.Errorf("%s: event id %s used for different events (%s, %s)", name, ev.ID, prev, key)
				}
				seen[ev.ID] = key
			}
		}
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		give      string
		wantField string
	}{
		{"malformed_not_json", ""},
		{"malformed_missing_conversation_id", "conversation.id"},
		{"malformed_private_not_bool", "private"},
		{"malformed_unknown_status", "status"},
		{"malformed_csat_rating_out_of_range", "content_attributes.submitted_values.csat_survey_response.rating"},
		{"malformed_bad_created_at", "created_at"},
		{"malformed_no_event", "event"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			adaptertest.Problem(t, New(), adaptertest.Delivery(t, "testdata", tt.give), tt.wantField)
		})
	}
}

// TestConversation replays one recorded ticket life and checks the events against the KPI
// figures the end-to-end test will expect (adaptertest.CheckConversation).
func TestConversation(t *testing.T) {
	adaptertest.CheckConversation(t, New(), filepath.Join("testdata", "conversation"), map[string][]string{
		"01-conversation-created":      {"ticket_created"},
		"02-assigned-to-agent-in-team": {"ticket_assigned"},
		"03-agent-bot-reply":           {"agent_message"},
		"04-private-note":              {"agent_message"},
		"05-agent-first-reply":         {"agent_message"},
		"06-customer-reply":            {"customer_message"},
		"07-agent-second-reply":        {"agent_message"},
		"08-resolved":                  {"status_changed"},
		"09-csat-rating":               {"satisfaction_rated"},
	})
}

func FuzzChatwoot(f *testing.F) { adaptertest.Fuzz(f, New(), "testdata") }

// Message ids order a conversation's messages of the same instant (docs/helpdesks.md); status
// changes, assignments and ratings carry no per-conversation order.
func TestSequence(t *testing.T) {
	withID := func(name string, id any) []byte {
		return fixture(t, name, func(m map[string]any) { m["id"] = id })
	}
	same := func(name string) []byte { return fixture(t, name, func(map[string]any) {}) }
	tests := []struct {
		name string
		give []byte
		want uint64
	}{
		{"agent reply", withID("message_created_agent_reply", json.Number("4711")), 4711},
		{"customer message", withID("message_created_incoming", json.Number("4712")), 4712},
		{"private note", withID("message_created_private_note", json.Number("4713")), 4713},
		{"id sent as a string", withID("message_created_agent_reply", "4714"), 4714},
		{"largest exact JSON integer", withID("message_created_agent_reply", json.Number("9007199254740991")), 1<<53 - 1},
		{"id beyond 2^53-1: none", withID("message_created_agent_reply", json.Number("9007199254740992")), 0},
		{"id not a number: none", withID("message_created_agent_reply", "msg-7"), 0},
		{"conversation created: none", same("conversation_created"), 0},
		{"status change: none", same("conversation_status_changed_resolved"), 0},
		{"rating: none", same("message_updated_csat"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mapOne(t, tt.give).Sequence; got != tt.want {
				t.Errorf("sequence %d, want %d", got, tt.want)
			}
		})
	}
}
