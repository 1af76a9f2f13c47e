package zendesk

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

func TestGolden(t *testing.T) {
	adaptertest.Golden(t, New(), "testdata")
}

// mapOne maps a body and returns its single event, failing otherwise.
func mapOne(t *testing.T, body string) canonical.Event {
	t.Helper()
	return adaptertest.One(t, New(), adapter.Delivery{Body: []byte(body), Received: adaptertest.Received})
}

// commentEventBody is an event-subscription comment with the given author and visibility.
func commentEventBody(author string, staff, public bool) string {
	return `{"type":"zen:event-type:ticket.comment_added","id":"e-1","time":"2026-11-20T09:30:00Z",
		"subject":"zen:ticket:7","detail":{"id":"7","requester_id":"100","assignee_id":"200","group_id":"300"},
		"event":{"comment":{"id":"c-1","body":"hi","is_public":` + jsonBool(public) + `,
		"author":{"id":"` + author + `","is_staff":` + jsonBool(staff) + `,"name":"x"}}}}`
}

// commentTriggerBody is a trigger comment with the given author, updater and role.
func commentTriggerBody(author, user, role, public string) string {
	return `{"tp_event":"comment","ticket":{"id":"7","requester_id":"100","assignee_id":"200","group_id":"300",
		"status":"Open","priority":"Normal","updated_at":"2026-11-20T09:30Z"},
		"current_user":{"id":"` + user + `","role":"` + role + `"},
		"comment":{"id":"c-1","author_id":"` + author + `","is_public":"` + public + `"}}`
}

func jsonBool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestCommentActors(t *testing.T) {
	tests := []struct {
		name       string
		give       string
		wantType   string
		wantKind   string
		wantPublic bool
	}{
		{"event agent public reply", commentEventBody("200", true, true), "agent_message", "agent", true},
		{"event private note", commentEventBody("200", true, false), "agent_message", "agent", false},
		{"event customer", commentEventBody("100", false, true), "customer_message", "customer", true},
		{"event system user", commentEventBody("-1", true, true), "agent_message", "automation", true},
		{"trigger agent reply", commentTriggerBody("200", "200", "Agent", "true"), "agent_message", "agent", true},
		{"trigger admin note", commentTriggerBody("200", "200", "Admin", "false"), "agent_message", "agent", false},
		{"trigger requester", commentTriggerBody("100", "100", "End-user", "true"), "customer_message", "customer", true},
		{"trigger cc'd end user", commentTriggerBody("555", "555", "End-user", "true"), "customer_message", "customer", true},
		{"trigger system author", commentTriggerBody("-1", "-1", "", "true"), "agent_message", "automation", true},
		{"trigger author defaults to updater", commentTriggerBody("", "200", "Agent", "TRUE"), "agent_message", "agent", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := mapOne(t, tt.give)
			if ev.Type != tt.wantType || ev.Actor.Kind != tt.wantKind || ev.Public == nil || *ev.Public != tt.wantPublic {
				t.Errorf("got type %s, actor %+v, public %v; want %s, %s, %v", ev.Type, ev.Actor, ev.Public, tt.wantType, tt.wantKind, tt.wantPublic)
			}
			if ev.AssigneeID != "200" || ev.TeamID != "300" {
				t.Errorf("assignee %q team %q, want 200 and 300", ev.AssigneeID, ev.TeamID)
			}
		})
	}
}

func TestStatusAndPriorityTables(t *testing.T) {
	statuses := []struct {
		give, want string
		ok         bool
	}{
		{"NEW", "new", true}, {"Open", "open", true}, {"pending", "pending", true},
		{"HOLD", "on_hold", true}, {"On-hold", "on_hold", true}, {"on hold", "on_hold", true},
		{"SOLVED", "solved", true}, {"Closed", "closed", true},
		{"DELETED", "", false}, {"ARCHIVED", "", false}, {"", "", false},
	}
	for _, tt := range statuses {
		if got, ok := status(tt.give); got != tt.want || ok != tt.ok {
			t.Errorf("status(%q) = %q, %v; want %q, %v", tt.give, got, ok, tt.want, tt.ok)
		}
	}
	priorities := []struct {
		give, want string
		ok         bool
	}{
		{"LOW", "low", true}, {"Normal", "normal", true}, {"high", "high", true}, {"URGENT", "urgent", true},
		{"-", "", false}, {"", "", false},
	}
	for _, tt := range priorities {
		if got, ok := priority(tt.give); got != tt.want || ok != tt.ok {
			t.Errorf("priority(%q) = %q, %v; want %q, %v", tt.give, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRatings(t *testing.T) {
	body := func(rating string) string {
		return `{"tp_event":"rating","ticket":{"id":"7","requester_id":"100","updated_at":"2026-11-20T11:30Z"},
			"satisfaction":{"current_rating":"` + rating + `","current_comment":"ok"}}`
	}
	tests := []struct {
		give      string
		wantScore int
		wantSkip  string
		wantErr   bool
	}{
		{give: "Good, I'm satisfied", wantScore: 5},
		{give: "good", wantScore: 5},
		{give: "Bad, I'm unsatisfied", wantScore: 1},
		{give: "BAD", wantScore: 1},
		{give: "Offered", wantSkip: SkipNoRating},
		{give: "Unoffered", wantSkip: SkipNoRating},
		{give: "", wantSkip: SkipNoRating},
		{give: "Meh", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			res, err := New().Map(adapter.Delivery{Body: []byte(body(tt.give))})
			if tt.wantErr {
				var ps canonical.Problems
				if !errors.As(err, &ps) {
					t.Fatalf("got %v, want Problems", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantSkip != "" {
				if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != tt.wantSkip {
					t.Fatalf("got %+v, want skip %s", res, tt.wantSkip)
				}
				return
			}
			s := res.Events[0].Satisfaction
			if s == nil || s.Score != tt.wantScore || s.Scale != 2 || s.Comment != "ok" || res.Events[0].Actor != (canonical.Actor{ID: "100", Kind: "customer"}) {
				t.Errorf("got %+v actor %+v, want score %d on scale 2 by customer 100", s, res.Events[0].Actor, tt.wantScore)
			}
		})
	}
}

func TestSkips(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"event-marked-as-spam.json", SkipSpam},
		{"event-merged.json", SkipMerged},
		{"event-status-closed-by-merge.json", SkipMerged},
		{"trigger-status-closed-by-merge.json", SkipMerged},
		{"event-soft-deleted.json", SkipDeleted},
		{"event-agent-unassigned.json", SkipUnassigned},
		{"trigger-assignment-none.json", SkipUnassigned},
		{"event-priority-cleared.json", SkipUnmapped},
		{"event-subject-changed.json", SkipUnsupported},
		{"event-user-created.json", SkipUnsupported},
		{"trigger-rating-offered.json", SkipNoRating},
		{"messaging-message-unknown-actor.json", SkipUnknownActor},
		{"messaging-ticket-other-event.json", SkipUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			d := adaptertest.Delivery(t, "testdata", strings.TrimSuffix(tt.file, ".json"))
			res, err := New().Map(d)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != tt.want {
				t.Errorf("got %+v, want one skip %s", res, tt.want)
			}
		})
	}
}

// A retried delivery is byte-for-byte the same body, received later: the ids must not move.
// A comment delivered by both wiring styles is the same event.
func TestIDStability(t *testing.T) {
	for _, name := range adaptertest.Cases(t, "testdata") {
		t.Run(name, func(t *testing.T) {
			adaptertest.Retry(t, New(), adaptertest.Delivery(t, "testdata", name), nil)
		})
	}
	byEvent := mapOne(t, commentEventBody("200", true, true))
	byTrigger := mapOne(t, commentTriggerBody("200", "200", "Agent", "true"))
	if byEvent.ID != byTrigger.ID {
		t.Errorf("comment c-1 has id %s by event and %s by trigger", byEvent.ID, byTrigger.ID)
	}
	if other := mapOne(t, strings.Replace(commentEventBody("200", true, true), `"c-1"`, `"c-2"`, 1)); other.ID == byEvent.ID {
		t.Error("two comments share an event id")
	}
}

// TestConversation replays one recorded ticket life in order and checks what the KPI engine
// will be given; expect.json holds the figures it must derive.
func TestConversation(t *testing.T) {
	// Who each event is by: the automation's reply and the private note must not count.
	kinds := []string{"customer", "agent", "automation", "agent", "agent", "customer", "agent", "agent", "customer"}
	events, expect := adaptertest.CheckConversation(t, New(), filepath.Join("testdata", "conversation"), map[string][]string{
		"01-ticket-created":     {"ticket_created"},
		"02-assigned-to-agent":  {"ticket_assigned"},
		"03-automation-reply":   {"agent_message"},
		"04-private-note":       {"agent_message"},
		"05-agent-first-reply":  {"agent_message"},
		"06-customer-reply":     {"customer_message"},
		"07-agent-second-reply": {"agent_message"},
		"08-solved":             {"status_changed"},
		"09-rating-bad":         {"satisfaction_rated"},
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
	if solved := events[7]; solved.Status != "solved" || solved.OccurredAt.Sub(created) != 2*time.Hour || solved.AssigneeID != expect.AgentID {
		t.Errorf("solved: %+v", solved)
	}
	if r := events[8].Satisfaction; r == nil || r.Score != expect.CSATScore || r.Comment == "" {
		t.Errorf("rating: %+v, want score %d with a comment", r, expect.CSATScore)
	}
}

func FuzzZendesk(f *testing.F) { adaptertest.Fuzz(f, New(), "testdata") }

// Comment ids order a ticket's comments of the same second (docs/helpdesks.md): both wiring
// styles give a comment its id as sequence; Zendesk's payloads have no per-ticket order for
// anything else.
func TestSequence(t *testing.T) {
	withComment := func(body, id string) string { return strings.Replace(body, `"c-1"`, id, 1) }
	file := func(name string) string {
		return string(adaptertest.Delivery(t, "testdata", name).Body)
	}
	tests := []struct {
		name string
		give string
		want uint64
	}{
		{"event comment id", withComment(commentEventBody("200", true, true), `"31000000000111"`), 31000000000111},
		{"event comment id as a number", withComment(commentEventBody("100", false, true), `31000000000112`), 31000000000112},
		{"trigger comment id", withComment(commentTriggerBody("200", "200", "Agent", "false"), `"31000000000113"`), 31000000000113},
		{"largest exact JSON integer", withComment(commentEventBody("200", true, true), `9007199254740991`), 1<<53 - 1},
		{"comment id beyond 2^53-1: none", withComment(commentEventBody("200", true, true), `"9007199254740992"`), 0},
		{"comment id not a number: none", commentEventBody("200", true, true), 0},
		{"event status change: none", file("event-status-solved"), 0},
		{"trigger status change: none", file("trigger-status-solved"), 0},
		{"event ticket created: none", file("event-ticket-created"), 0},
		{"trigger assignment: none", file("trigger-assignment"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mapOne(t, tt.give).Sequence; got != tt.want {
				t.Errorf("sequence %d, want %d", got, tt.want)
			}
		})
	}
}

// messagingBody is a messaging_ticket.message_added event by the given actor.
func messagingBody(eventID, actorID, actorType, messageID string) string {
	return `{"account_id":1,"detail":{"id":"141"},"event":{"actor":{"id":"` + actorID + `","name":"x","type":"` + actorType + `"},
		"conversation_id":"67ab5f53a96f98663935c3f2","message":{"body":"hi","id":"` + messageID + `"}},
		"id":"` + eventID + `","subject":"zen:ticket:141","time":"2025-02-11T14:32:05.254571515Z",
		"type":"zen:event-type:messaging_ticket.message_added","zendesk_event_version":"2022-11-06"}`
}

// Messaging messages: only an agent's message is a response. The answer bot and AI agents
// (type system, or any zd: id) are bots, triggers automation (docs/helpdesks.md).
func TestMessagingActors(t *testing.T) {
	tests := []struct {
		name      string
		actorID   string
		actorType string
		wantType  string
		wantActor canonical.Actor
	}{
		{"end user", "24560011234", "end_user", "customer_message", canonical.Actor{ID: "24560011234", Kind: "customer"}},
		{"agent", "24560019876", "agent", "agent_message", canonical.Actor{ID: "24560019876", Kind: "agent"}},
		{"answer bot", "zd:answerBot", "system", "agent_message", canonical.Actor{ID: "zd:answerBot", Kind: "bot"}},
		{"AI agent as system", "zd:aiAgent", "system", "agent_message", canonical.Actor{ID: "zd:aiAgent", Kind: "bot"}},
		{"AI agent type", "zd:aiAgent", "ai_agent", "agent_message", canonical.Actor{ID: "zd:aiAgent", Kind: "bot"}},
		{"zd: id typed agent", "zd:agentWorkspace", "agent", "agent_message", canonical.Actor{ID: "zd:agentWorkspace", Kind: "bot"}},
		{"trigger", "360009876543", "TRIGGER", "agent_message", canonical.Actor{ID: "360009876543", Kind: "automation"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := mapOne(t, messagingBody("e1", tt.actorID, tt.actorType, "m1"))
			if ev.Type != tt.wantType || ev.Actor != tt.wantActor || ev.Public == nil || !*ev.Public || ev.TicketID != "141" {
				t.Errorf("got %s by %+v public %v on %s, want %s by %+v, public", ev.Type, ev.Actor, adaptertest.Public(ev.Public), ev.TicketID, tt.wantType, tt.wantActor)
			}
		})
	}
}

// A message is identified by its message id: redelivered under another event id it is the
// same event, and two messages are two events.
func TestMessagingIDs(t *testing.T) {
	a := mapOne(t, messagingBody("01JQMQH83YNAKWSWJ8B1QH2NSC", "24560019876", "agent", "m1"))
	b := mapOne(t, messagingBody("01JQMQH83YNAKWSWJ8B1QH2NSZ", "24560019876", "agent", "m1"))
	c := mapOne(t, messagingBody("01JQMQH83YNAKWSWJ8B1QH2NSC", "24560019876", "agent", "m2"))
	if a.ID != b.ID {
		t.Errorf("one message, two ids: %s, %s", a.ID, b.ID)
	}
	if a.ID == c.ID {
		t.Errorf("two messages, one id %s", a.ID)
	}
}

func TestMessagingMalformed(t *testing.T) {
	tests := []struct {
		name      string
		give      string
		wantField string
	}{
		{"fixture: no message id", "malformed-messaging-missing-message-id", "event.message.id"},
		{"fixture: no actor type", "malformed-messaging-missing-actor-type", "event.actor.type"},
		{"fixture: agent without id", "malformed-messaging-agent-without-id", "event.actor.id"},
		{"fixture: bad time", "malformed-messaging-bad-time", "time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adaptertest.Problem(t, New(), adaptertest.Delivery(t, "testdata", tt.give), tt.wantField)
		})
	}
	inline := []struct {
		name      string
		give      string
		wantField string
	}{
		{"no event", `{"type":"zen:event-type:messaging_ticket.message_added","id":"e","time":"2025-02-11T14:32:05Z","subject":"zen:ticket:1","detail":{"id":"1"}}`, "event"},
		{"no message", `{"type":"zen:event-type:messaging_ticket.message_added","id":"e","time":"2025-02-11T14:32:05Z","detail":{"id":"1"},"event":{"actor":{"id":"1","type":"agent"}}}`, "event.message"},
		{"no actor", `{"type":"zen:event-type:messaging_ticket.message_added","id":"e","time":"2025-02-11T14:32:05Z","detail":{"id":"1"},"event":{"message":{"id":"m"}}}`, "event.actor"},
		{"actor id object", `{"type":"zen:event-type:messaging_ticket.message_added","id":"e","time":"2025-02-11T14:32:05Z","detail":{"id":"1"},"event":{"actor":{"id":{},"type":"agent"},"message":{"id":"m"}}}`, "event.actor.id"},
		{"message not an object", `{"type":"zen:event-type:messaging_ticket.message_added","id":"e","time":"2025-02-11T14:32:05Z","detail":{"id":"1"},"event":{"actor":{"id":"1","type":"agent"},"message":"hi"}}`, "event.message"},
		{"no ticket id", `{"type":"zen:event-type:messaging_ticket.message_added","id":"e","time":"2025-02-11T14:32:05Z","detail":{},"event":{"actor":{"id":"1","type":"agent"},"message":{"id":"m"}}}`, "detail.id"},
	}
	for _, tt := range inline {
		t.Run(tt.name, func(t *testing.T) {
			adaptertest.Problem(t, New(), adapter.Delivery{Body: []byte(tt.give)}, tt.wantField)
		})
	}
}

// TestMessagingConversation replays a messaging ticket: the answer bot greets and answers
// first, which must not count as the first response; the agent's first message does.
func TestMessagingConversation(t *testing.T) {
	events, expect := adaptertest.CheckConversation(t, New(), filepath.Join("testdata", "messaging-conversation"), map[string][]string{
		"01-ticket-created":          {"ticket_created"},
		"02-customer-first-message":  {"customer_message"},
		"03-answer-bot-reply":        {"agent_message"},
		"04-customer-asks-for-agent": {"customer_message"},
		"05-assigned-to-agent":       {"ticket_assigned"},
		"06-agent-first-reply":       {"agent_message"},
		"07-customer-reply":          {"customer_message"},
		"08-agent-second-reply":      {"agent_message"},
		"09-solved":                  {"status_changed"},
	})
	kinds := []string{"customer", "customer", "bot", "customer", "agent", "agent", "customer", "agent", "agent"}
	for i, ev := range events {
		if ev.Actor.Kind != kinds[i] {
			t.Errorf("event %d (%s): by %s, want %s", i, ev.Type, ev.Actor.Kind, kinds[i])
		}
	}
	if bot := events[2]; bot.Actor.ID != "zd:answerBot" {
		t.Errorf("bot reply by %+v", bot.Actor)
	}
	if expect.FirstResponseSeconds != 900 {
		t.Errorf("expect.json first response %d: the bot's reply at 3 s must not be it", expect.FirstResponseSeconds)
	}
}
