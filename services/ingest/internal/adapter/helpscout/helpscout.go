// Package helpscout maps Help Scout webhooks (payload version 2) to canonical ticket events.
// The event name comes in the X-HelpScout-Event header; the body is the Mailbox API 2.0
// conversation object with its threads embedded, or the rating object for
// satisfaction.ratings. See docs/helpdesks.md (How each helpdesk maps) for the table and the documentation it follows.
package helpscout

import (
	"fmt"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "helpscout"

// EventHeader names the event of a delivery.
const EventHeader = "X-HelpScout-Event"

// Skip reasons: what a delivery can hold that is deliberately not an event.
const (
	// ReasonUnsupportedEvent: an event with no KPI meaning (convo.tags, convo.custom-fields,
	// customer.*, tag.*, beacon.chat.*, message.survey.*, convo.ai-answers.created).
	ReasonUnsupportedEvent = "unsupported_event"
	// ReasonSpam: the conversation is (or was just marked) spam; it is not support work.
	ReasonSpam = "spam"
	// ReasonMerged: convo.merged; the surviving conversation keeps the history.
	ReasonMerged = "merged"
	// ReasonDeleted: convo.deleted, or a conversation whose state is deleted.
	ReasonDeleted = "deleted"
	// ReasonDraft: the newest matching thread is a draft or held by collision detection.
	ReasonDraft = "draft"
)

// Adapter maps Help Scout deliveries; it holds no state.
type Adapter struct{}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns the Help Scout adapter.
func New() *Adapter { return &Adapter{} }

// Source implements adapter.Adapter.
func (*Adapter) Source() string { return Source }

// Map implements adapter.Adapter.
func (a *Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	event := adapter.Lower(d.Header.Get(EventHeader))
	switch event {
	case "":
		return adapter.Result{}, adapter.Malformed("", "no %s header: cannot tell what happened", EventHeader)
	case "convo.deleted":
		// The body is only {"id": ...}; still, it must be the conversation's.
		var body struct {
			ID adapter.ID `json:"id"`
		}
		if err := adapter.DecodeJSON(d.Body, &body); err != nil {
			return adapter.Result{}, err
		}
		if body.ID == "" {
			return adapter.Result{}, adapter.Malformed("id", "required")
		}
		return adapter.Skipped(ReasonDeleted, "conversation %s", adapter.Truncate(string(body.ID), 60)), nil
	case "satisfaction.ratings":
		var r rating
		if err := adapter.DecodeJSON(d.Body, &r); err != nil {
			return adapter.Result{}, err
		}
		return mapRating(&r)
	case "convo.created", "convo.assigned", "convo.moved", "convo.status",
		"convo.customer.reply.created", "convo.agent.reply.created", "convo.note.created", "convo.merged":
		if isLegacy(d.Body) {
			return mapLegacy(event, d.Body)
		}
		var c conversation
		if err := adapter.DecodeJSON(d.Body, &c); err != nil {
			return adapter.Result{}, err
		}
		return mapConversation(event, &c)
	default:
		return adapter.Skipped(ReasonUnsupportedEvent, "event %q", adapter.Truncate(event, 60)), nil
	}
}

// conversation is the Mailbox API 2.0 conversation object with _embedded.threads.
type conversation struct {
	ID            adapter.ID `json:"id"`
	Number        adapter.ID `json:"number"`
	Type          string     `json:"type"` // email, chat, phone
	Status        string     `json:"status"`
	State         string     `json:"state"`
	MailboxID     adapter.ID `json:"mailboxId"`
	Assignee      *person    `json:"assignee"`
	CreatedBy     *person    `json:"createdBy"`
	CreatedAt     string     `json:"createdAt"`
	ClosedBy      adapter.ID `json:"closedBy"`
	ClosedAt      string     `json:"closedAt"`
	UserUpdatedAt string     `json:"userUpdatedAt"`
	Tags          []struct {
		Tag string `json:"tag"`
	} `json:"tags"`
	Embedded struct {
		Threads []thread `json:"threads"`
	} `json:"_embedded"`
}

type thread struct {
	ID     adapter.ID `json:"id"`
	Type   string     `json:"type"`
	State  string     `json:"state"`
	Action *struct {
		Type string `json:"type"`
	} `json:"action"`
	Source *struct {
		Type string `json:"type"`
		Via  string `json:"via"`
	} `json:"source"`
	CreatedBy *person `json:"createdBy"`
	Customer  *person `json:"customer"`
	CreatedAt string  `json:"createdAt"`
}

// person is a Help Scout user, customer or team reference.
type person struct {
	ID   adapter.ID `json:"id"`
	Type string     `json:"type"`
}

// rating is the webhook rating object.
type rating struct {
	ID       adapter.ID `json:"id"`
	Customer *person    `json:"customer"`
	TicketID adapter.ID `json:"ticketId"`
	ThreadID adapter.ID `json:"threadId"`
	Mailbox  *struct {
		ID adapter.ID `json:"id"`
	} `json:"mailbox"`
	Rating     string `json:"rating"`
	Comments   string `json:"comments"`
	CreatedAt  string `json:"createdAt"`
	ModifiedAt string `json:"modifiedAt"`
}

func mapConversation(event string, c *conversation) (adapter.Result, error) {
	base, err := ticket(c)
	if err != nil {
		return adapter.Result{}, err
	}
	// Every conversation event is checked against these first: whatever happened to a spam,
	// merged or deleted conversation is not support work.
	switch {
	case event == "convo.merged":
		return adapter.Skipped(ReasonMerged, "conversation %s", base.TicketID), nil
	case adapter.Lower(c.Status) == "spam":
		return adapter.Skipped(ReasonSpam, "conversation %s (%s)", base.TicketID, event), nil
	case adapter.Lower(c.State) == "deleted":
		return adapter.Skipped(ReasonDeleted, "conversation %s (%s)", base.TicketID, event), nil
	}
	st, err := status(c.Status)
	if err != nil {
		return adapter.Result{}, err
	}
	switch event {
	case "convo.created":
		at, err := parseTime("createdAt", c.CreatedAt, true)
		if err != nil {
			return adapter.Result{}, err
		}
		ev := base
		ev.ID = adapter.EventID(Source, base.TicketID, event)
		ev.Type = "ticket_created"
		ev.OccurredAt = at
		ev.Status = st
		ev.Actor = creator(c.CreatedBy)
		if err := checkActor("createdBy.id", ev.Actor); err != nil {
			return adapter.Result{}, err
		}
		return adapter.One(ev), nil
	case "convo.assigned", "convo.moved":
		// Moving to another mailbox changes the team (team_id is the mailbox).
		at, err := lastChange(c)
		if err != nil {
			return adapter.Result{}, err
		}
		ev := base
		ev.ID = adapter.EventID(Source, base.TicketID, event, base.AssigneeID, base.TeamID, stamp(at))
		ev.Type = "ticket_assigned"
		ev.OccurredAt = at
		ev.Actor = canonical.Actor{Kind: "system"}
		return adapter.One(ev), nil
	case "convo.status":
		at, err := lastChange(c)
		if err != nil {
			return adapter.Result{}, err
		}
		ev := base
		ev.Type = "status_changed"
		ev.Status = st
		ev.Actor = canonical.Actor{Kind: "system"}
		if st == "solved" {
			if closed, err := parseTime("closedAt", c.ClosedAt, false); err != nil {
				return adapter.Result{}, err
			} else if !closed.IsZero() {
				at = closed
			}
			if by := string(c.ClosedBy); by != "" && by != "0" {
				ev.Actor = canonical.Actor{ID: by, Kind: "agent"}
				if err := checkActor("closedBy", ev.Actor); err != nil {
					return adapter.Result{}, err
				}
			}
		}
		ev.ID = adapter.EventID(Source, base.TicketID, event, st, stamp(at))
		ev.OccurredAt = at
		return adapter.One(ev), nil
	default:
		return mapThread(event, c, base)
	}
}

// threadKinds are the thread types each message event is about.
var threadKinds = map[string][]string{
	"convo.customer.reply.created": {"customer", "chat", "phone"},
	// Mailbox API 2.0 calls an agent's reply "reply"; the older docs call it "message".
	"convo.agent.reply.created": {"reply", "message", "chat", "phone"},
	"convo.note.created":        {"note"},
}

// mapThread maps the thread the event is about: the newest thread of the event's kind. The API
// lists threads newest first, but the webhook docs do not promise an order, so the newest is
// found by createdAt (then id) rather than by position.
func mapThread(event string, c *conversation, base canonical.Event) (adapter.Result, error) {
	kinds := threadKinds[event]
	customerSide := event == "convo.customer.reply.created"
	best := -1
	var bestAt time.Time
	for i := range c.Embedded.Threads {
		t := &c.Embedded.Threads[i]
		if !contains(kinds, adapter.Lower(t.Type)) {
			continue
		}
		// Chat and phone threads exist on both sides; who wrote it decides which.
		if typ := adapter.Lower(t.Type); typ == "chat" || typ == "phone" {
			if (creatorType(t) == "customer") != customerSide {
				continue
			}
		}
		field := fmt.Sprintf("_embedded.threads[%d]", i)
		if t.ID == "" {
			return adapter.Result{}, adapter.Malformed(field+".id", "required")
		}
		at, err := parseTime(field+".createdAt", t.CreatedAt, true)
		if err != nil {
			return adapter.Result{}, err
		}
		if best < 0 || at.After(bestAt) || (at.Equal(bestAt) && idLess(c.Embedded.Threads[best].ID, t.ID)) {
			best, bestAt = i, at
		}
	}
	if best < 0 {
		return adapter.Result{}, adapter.Malformed("_embedded.threads", "no %s thread for %s", strings.Join(kinds, "/"), event)
	}
	t := &c.Embedded.Threads[best]
	field := fmt.Sprintf("_embedded.threads[%d]", best)
	if err := adapter.CheckID(field+".id", string(t.ID)); err != nil {
		return adapter.Result{}, err
	}
	if s := adapter.Lower(t.State); s == "draft" || s == "underreview" {
		return adapter.Skipped(ReasonDraft, "thread %s is %s", t.ID, s), nil
	}
	ev := base
	ev.ID = "thread:" + string(t.ID)
	// Thread ids increase as threads are created: they order the same-second threads of a
	// conversation.
	ev.Sequence = adapter.Sequence(string(t.ID))
	ev.OccurredAt = bestAt
	switch event {
	case "convo.customer.reply.created":
		ev.Type = "customer_message"
		ev.Public = adapter.Bool(true)
		ev.Actor = threadCustomer(t, c)
		if ev.Actor.ID == "" {
			return adapter.Result{}, adapter.Malformed(field+".createdBy.id", "required for a customer thread")
		}
	case "convo.note.created":
		ev.Type = "agent_message"
		ev.Public = adapter.Bool(false)
		ev.Actor = author(t)
	default:
		ev.Type = "agent_message"
		ev.Public = adapter.Bool(true)
		ev.Actor = author(t)
	}
	if err := checkActor(field+".createdBy.id", ev.Actor); err != nil {
		return adapter.Result{}, err
	}
	return adapter.One(ev), nil
}

// author classifies who wrote an agent-side thread. A thread a workflow sent is automation even
// though Help Scout attributes it to a user; system_user (AI, shown by the v3 API, normalised
// to user by v2) is a bot; a thread without an author is Help Scout's own.
func author(t *thread) canonical.Actor {
	if t.Source != nil && adapter.Lower(t.Source.Type) == "workflows" {
		return canonical.Actor{Kind: "automation"}
	}
	if t.Action != nil {
		if a := adapter.Lower(t.Action.Type); a == "automatic-workflow" || a == "manual-workflow" {
			return canonical.Actor{Kind: "automation"}
		}
	}
	switch creatorType(t) {
	case "user":
		if t.CreatedBy.ID != "" {
			return canonical.Actor{ID: string(t.CreatedBy.ID), Kind: "agent"}
		}
	case "system_user":
		return canonical.Actor{ID: string(t.CreatedBy.ID), Kind: "bot"}
	case "customer":
		// A customer cannot write a reply or note; if Help Scout says so, it was imported or
		// forwarded on their behalf, which is no agent's response.
		return canonical.Actor{Kind: "system"}
	}
	return canonical.Actor{Kind: "automation"}
}

func creatorType(t *thread) string {
	if t.CreatedBy == nil {
		return ""
	}
	return adapter.Lower(t.CreatedBy.Type)
}

// threadCustomer is the customer who wrote a customer thread: its author, else the customer
// it belongs to, else the customer who opened the conversation.
func threadCustomer(t *thread, c *conversation) canonical.Actor {
	switch {
	case t.CreatedBy != nil && t.CreatedBy.ID != "" && adapter.Lower(t.CreatedBy.Type) == "customer":
		return canonical.Actor{ID: string(t.CreatedBy.ID), Kind: "customer"}
	case t.Customer != nil && t.Customer.ID != "":
		return canonical.Actor{ID: string(t.Customer.ID), Kind: "customer"}
	case c.CreatedBy != nil && c.CreatedBy.ID != "" && adapter.Lower(c.CreatedBy.Type) == "customer":
		return canonical.Actor{ID: string(c.CreatedBy.ID), Kind: "customer"}
	}
	return canonical.Actor{Kind: "customer"}
}

// creator is who opened the conversation: a customer, or a user for an outbound one.
func creator(p *person) canonical.Actor {
	if p == nil || p.ID == "" {
		return canonical.Actor{Kind: "system"}
	}
	switch adapter.Lower(p.Type) {
	case "customer":
		return canonical.Actor{ID: string(p.ID), Kind: "customer"}
	case "user":
		return canonical.Actor{ID: string(p.ID), Kind: "agent"}
	}
	return canonical.Actor{Kind: "system"}
}

// ratings maps Help Scout's three-point scale; the docs list "Bad", the product says "Not Good".
var ratings = map[string]int{"great": 5, "okay": 3, "ok": 3, "bad": 1, "not good": 1, "notgood": 1}

func mapRating(r *rating) (adapter.Result, error) {
	if r.ID == "" {
		return adapter.Result{}, adapter.Malformed("id", "required")
	}
	if r.TicketID == "" {
		return adapter.Result{}, adapter.Malformed("ticketId", "required")
	}
	for _, f := range []struct{ name, id string }{{"id", string(r.ID)}, {"ticketId", string(r.TicketID)}} {
		if err := adapter.CheckID(f.name, f.id); err != nil {
			return adapter.Result{}, err
		}
	}
	score, ok := ratings[adapter.Lower(r.Rating)]
	if !ok {
		return adapter.Result{}, adapter.Malformed("rating", "unknown value %q; want Great, Okay or Bad (Not Good)", adapter.Truncate(r.Rating, 40))
	}
	// A changed rating keeps its id and gets a new modifiedAt.
	at, err := parseTime("modifiedAt", r.ModifiedAt, false)
	if err != nil {
		return adapter.Result{}, err
	}
	if at.IsZero() {
		if at, err = parseTime("createdAt", r.CreatedAt, true); err != nil {
			return adapter.Result{}, err
		}
	}
	ev := canonical.Event{Source: Source, TicketID: string(r.TicketID), Type: "satisfaction_rated", OccurredAt: at}
	comment := adapter.Comment(r.Comments)
	ev.ID = adapter.EventID(Source, "rating", string(r.ID), adapter.Lower(r.Rating), stamp(at))
	ev.Actor = canonical.Actor{Kind: "system"}
	if r.Customer != nil && r.Customer.ID != "" {
		ev.Actor = canonical.Actor{ID: string(r.Customer.ID), Kind: "customer"}
	}
	if err := checkActor("customer.id", ev.Actor); err != nil {
		return adapter.Result{}, err
	}
	if r.Mailbox != nil {
		ev.TeamID = string(r.Mailbox.ID)
		if err := adapter.CheckID("mailbox.id", ev.TeamID); err != nil {
			return adapter.Result{}, err
		}
	}
	ev.Satisfaction = &canonical.Satisfaction{Score: score, Scale: 3, Comment: comment}
	return adapter.One(ev), nil
}

// ticket builds the fields every event of the conversation shares. The ticket id is the
// conversation id (the rating's ticketId), not the number shown in the UI.
func ticket(c *conversation) (canonical.Event, error) {
	if c.ID == "" {
		return canonical.Event{}, adapter.Malformed("id", "required")
	}
	ev := canonical.Event{Source: Source, TicketID: string(c.ID), TeamID: string(c.MailboxID)}
	// A conversation assigned to a Help Scout team has no one person accountable yet.
	if a := c.Assignee; a != nil && adapter.Lower(a.Type) != "team" && a.ID != "0" {
		ev.AssigneeID = string(a.ID)
	}
	for _, f := range []struct{ name, id string }{{"id", ev.TicketID}, {"mailboxId", ev.TeamID}, {"assignee.id", ev.AssigneeID}} {
		if err := adapter.CheckID(f.name, f.id); err != nil {
			return canonical.Event{}, err
		}
	}
	ev.Channel = adapter.Channel(c.Type)
	tags := make([]string, len(c.Tags))
	for i, t := range c.Tags {
		tags[i] = t.Tag
	}
	ev.Tags = adapter.Tags(tags)
	return ev, nil
}

// statuses maps Help Scout's conversation statuses. Help Scout has no separate solved and
// closed: closing a conversation is resolving it, so closed is solved (a later customer reply
// reopens it as active). "open" is the API's filter name for active.
var statuses = map[string]string{"active": "open", "open": "open", "pending": "pending", "closed": "solved"}

func status(s string) (string, error) {
	if s == "" {
		return "", adapter.Malformed("status", "required")
	}
	st, ok := statuses[adapter.Lower(s)]
	if !ok {
		return "", adapter.Malformed("status", "unknown value %q; want active, pending, closed or spam", adapter.Truncate(s, 40))
	}
	return st, nil
}

// lastChange is when an assignment or status change happened. The conversation object carries
// no event time, so it is the newest time the body has: the last user update, the close, or
// the newest thread (assignments and status changes add a line item thread).
func lastChange(c *conversation) (time.Time, error) {
	var last time.Time
	for _, f := range []struct{ name, v string }{{"userUpdatedAt", c.UserUpdatedAt}, {"closedAt", c.ClosedAt}, {"createdAt", c.CreatedAt}} {
		t, err := parseTime(f.name, f.v, false)
		if err != nil {
			return time.Time{}, err
		}
		if t.After(last) {
			last = t
		}
	}
	for i := range c.Embedded.Threads {
		t, err := parseTime(fmt.Sprintf("_embedded.threads[%d].createdAt", i), c.Embedded.Threads[i].CreatedAt, false)
		if err != nil {
			return time.Time{}, err
		}
		if t.After(last) {
			last = t
		}
	}
	if last.IsZero() {
		return time.Time{}, adapter.Malformed("userUpdatedAt", "required (no timestamp in the conversation)")
	}
	return last, nil
}

// parseTime reads an ISO 8601 UTC time; the zero time means absent when not required.
func parseTime(field, s string, required bool) (time.Time, error) {
	if s == "" {
		if required {
			return time.Time{}, adapter.Malformed(field, "required")
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, adapter.Malformed(field, "not an ISO 8601 time (e.g. 2026-03-02T09:14:05Z): %q", adapter.Truncate(s, 40))
	}
	return t.UTC(), nil
}

// idLess orders thread ids numerically when they are numbers of equal sign.
func idLess(a, b adapter.ID) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkActor rejects actor ids the canonical form cannot carry.
func checkActor(field string, a canonical.Actor) error { return adapter.CheckID(field, a.ID) }

func stamp(t time.Time) string { return t.Format(time.RFC3339Nano) }
