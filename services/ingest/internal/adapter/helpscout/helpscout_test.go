package helpscout

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
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

func delivery(event string, body []byte) adapter.Delivery {
	h := http.Header{}
	h.Set(EventHeader, event)
	return adapter.Delivery{Header: h, Body: body, Received: adaptertest.Received}
}

func mapOne(t *testing.T, event string, body []byte) canonical.Event {
	t.Helper()
	return adaptertest.One(t, New(), delivery(event, body))
}

// newestThread returns the first embedded thread: the fixtures list threads newest first.
func newestThread(m map[string]any) map[string]any {
	return m["_embedded"].(map[string]any)["threads"].([]any)[0].(map[string]any)
}

func TestActorKinds(t *testing.T) {
	tests := []struct {
		name       string
		event      string
		fixture    string
		edit       func(th map[string]any)
		wantActor  canonical.Actor
		wantPublic bool
	}{
		{"agent reply", "convo.agent.reply.created", "convo_agent_reply", func(map[string]any) {}, canonical.Actor{ID: "5001", Kind: "agent"}, true},
		{"note is private", "convo.note.created", "convo_note_created", func(map[string]any) {}, canonical.Actor{ID: "5001", Kind: "agent"}, false},
		{"reply sent by a workflow", "convo.agent.reply.created", "convo_agent_reply", func(th map[string]any) {
			th["source"] = map[string]any{"type": "workflows", "via": "user"}
		}, canonical.Actor{Kind: "automation"}, true},
		{"reply by an automatic workflow action", "convo.agent.reply.created", "convo_agent_reply", func(th map[string]any) {
			th["action"] = map[string]any{"type": "automatic-workflow"}
		}, canonical.Actor{Kind: "automation"}, true},
		{"AI system user", "convo.agent.reply.created", "convo_agent_reply", func(th map[string]any) {
			th["createdBy"] = map[string]any{"id": 31, "type": "system_user"}
		}, canonical.Actor{ID: "31", Kind: "bot"}, true},
		{"reply without author", "convo.agent.reply.created", "convo_agent_reply", func(th map[string]any) {
			delete(th, "createdBy")
		}, canonical.Actor{Kind: "automation"}, true},
		{"chat reply by the agent", "convo.agent.reply.created", "convo_agent_reply_chat", func(map[string]any) {}, canonical.Actor{ID: "5001", Kind: "agent"}, true},
		{"customer reply", "convo.customer.reply.created", "convo_customer_reply", func(map[string]any) {}, canonical.Actor{ID: "77342001", Kind: "customer"}, true},
		{"customer reply without author falls back to the thread's customer", "convo.customer.reply.created", "convo_customer_reply", func(th map[string]any) {
			delete(th, "createdBy")
		}, canonical.Actor{ID: "77342001", Kind: "customer"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fixture(t, tt.fixture, func(m map[string]any) { tt.edit(newestThread(m)) })
			ev := mapOne(t, tt.event, body)
			if ev.Actor != tt.wantActor || ev.Public == nil || *ev.Public != tt.wantPublic {
				t.Errorf("got %s actor %+v public %v, want %+v %v", ev.Type, ev.Actor, ev.Public, tt.wantActor, tt.wantPublic)
			}
		})
	}
}

// The event is about the newest thread of its kind, wherever it sits in the list.
func TestNewestThreadWhateverTheOrder(t *testing.T) {
	body := fixture(t, "convo_agent_reply", func(m map[string]any) {
		emb := m["_embedded"].(map[string]any)
		th := emb["threads"].([]any)
		for i, j := 0, len(th)-1; i < j; i, j = i+1, j-1 {
			th[i], th[j] = th[j], th[i]
		}
	})
	if ev := mapOne(t, "convo.agent.reply.created", body); ev.ID != "thread:8800100005" {
		t.Errorf("mapped %s, want the newest reply thread:8800100005", ev.ID)
	}
}

func TestStatusMapping(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{"active", "open"},
		{"pending", "pending"},
		{"closed", "solved"},
		{"Closed", "solved"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			body := fixture(t, "convo_status_closed", func(m map[string]any) { m["status"] = tt.give })
			ev := mapOne(t, "convo.status", body)
			if ev.Type != "status_changed" || ev.Status != tt.want {
				t.Errorf("got %s %q, want status_changed %q", ev.Type, ev.Status, tt.want)
			}
		})
	}
}

func TestRatingMapping(t *testing.T) {
	tests := []struct {
		give      string
		wantScore int
	}{
		{"Great", 5},
		{"Okay", 3},
		{"Bad", 1},
		{"Not Good", 1},
		{"great", 5},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			body := fixture(t, "satisfaction_great", func(m map[string]any) { m["rating"] = tt.give })
			ev := mapOne(t, "satisfaction.ratings", body)
			want := canonical.Satisfaction{Score: tt.wantScore, Scale: 3, Comment: "Jonas was really helpful"}
			if ev.Type != "satisfaction_rated" || ev.Satisfaction == nil || *ev.Satisfaction != want {
				t.Errorf("got %s %+v, want %+v", ev.Type, ev.Satisfaction, want)
			}
		})
	}
}

// A changed rating keeps Help Scout's rating id; it must still be a new event.
func TestChangedRatingIsANewEvent(t *testing.T) {
	first := mapOne(t, "satisfaction.ratings", fixture(t, "satisfaction_great", func(map[string]any) {}))
	changed := mapOne(t, "satisfaction.ratings", fixture(t, "satisfaction_changed", func(map[string]any) {}))
	if first.ID == changed.ID {
		t.Errorf("the changed rating has the id of the first one (%s)", first.ID)
	}
}

func TestSkips(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{"convo_status_spam", ReasonSpam},
		{"convo_merged", ReasonMerged},
		{"convo_deleted", ReasonDeleted},
		{"convo_tags", ReasonUnsupportedEvent},
		{"customer_created", ReasonUnsupportedEvent},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			res, err := New().Map(adaptertest.Delivery(t, "testdata", tt.give))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != tt.want {
				t.Errorf("got %+v, want one skip %q", res, tt.want)
			}
		})
	}
}

// Any event on a conversation that is spam or deleted is skipped, not only the status change.
func TestSpamAndDeletedConversationsSkipped(t *testing.T) {
	tests := []struct {
		name  string
		field string
		value string
		want  string
	}{
		{"spam", "status", "spam", ReasonSpam},
		{"deleted", "state", "deleted", ReasonDeleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fixture(t, "convo_customer_reply", func(m map[string]any) { m[tt.field] = tt.value })
			res, err := New().Map(delivery("convo.customer.reply.created", body))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != tt.want {
				t.Errorf("got %+v, want one skip %q", res, tt.want)
			}
		})
	}
}

// A retry of the same delivery (another receive time) must give the same event ids, and the
// ids of different events must differ.
func TestIDsStableAndUnique(t *testing.T) {
	seen := map[string]string{}
	for _, dir := range []string{"testdata", filepath.Join("testdata", "conversation")} {
		for _, name := range adaptertest.Cases(t, dir) {
			first, _ := adaptertest.Retry(t, New(), adaptertest.Delivery(t, dir, name), nil)
			for _, ev := range first.Events {
				// The conversation and the single cases share threads on purpose; only the same
				// event may have the same id.
				key := ev.TicketID + "|" + ev.Type + "|" + ev.OccurredAt.String() + "|" + ev.Status
				if ev.Satisfaction != nil {
					key += "|" + ev.Satisfaction.Comment
				}
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
		{"malformed_missing_event_header", ""},
		{"malformed_missing_id", "id"},
		{"malformed_reply_without_reply_thread", "_embedded.threads"},
		{"malformed_bad_created_at", "createdAt"},
		{"malformed_unknown_rating", "rating"},
		{"malformed_assignee_not_object", "assignee"},
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
		"01-convo-created-by-customer": {"ticket_created"},
		"02-assigned-to-agent":         {"ticket_assigned"},
		"03-workflow-auto-reply":       {"agent_message"},
		"04-private-note":              {"agent_message"},
		"05-agent-first-reply":         {"agent_message"},
		"06-customer-reply":            {"customer_message"},
		"07-agent-second-reply":        {"agent_message"},
		"08-closed":                    {"status_changed"},
		"09-rating-bad":                {"satisfaction_rated"},
	})
}

func FuzzHelpScout(f *testing.F) { adaptertest.Fuzz(f, New(), "testdata") }

// Thread ids order a conversation's threads of the same second (docs/helpdesks.md); the
// conversation events and ratings carry no per-conversation order.
func TestSequence(t *testing.T) {
	withThreadID := func(name string, id any) []byte {
		return fixture(t, name, func(m map[string]any) { newestThread(m)["id"] = id })
	}
	same := func(name string) []byte { return fixture(t, name, func(map[string]any) {}) }
	tests := []struct {
		name  string
		event string
		give  []byte
		want  uint64
	}{
		{"agent reply", "convo.agent.reply.created", same("convo_agent_reply"), 8800100005},
		{"customer reply", "convo.customer.reply.created", withThreadID("convo_customer_reply", json.Number("8800100101")), 8800100101},
		{"note", "convo.note.created", withThreadID("convo_note_created", json.Number("8800100102")), 8800100102},
		{"thread id sent as a string", "convo.agent.reply.created", withThreadID("convo_agent_reply", "8800100103"), 8800100103},
		{"thread id beyond 2^53-1: none", "convo.agent.reply.created", withThreadID("convo_agent_reply", json.Number("9007199254740992")), 0},
		{"conversation created: none", "convo.created", same("convo_created"), 0},
		{"status change: none", "convo.status", same("convo_status_closed"), 0},
		{"assignment: none", "convo.assigned", same("convo_assigned"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mapOne(t, tt.event, tt.give).Sequence; got != tt.want {
				t.Errorf("sequence %d, want %d", got, tt.want)
			}
		})
	}
}
