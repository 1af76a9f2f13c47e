// Package intercom maps Intercom webhook notifications (notification_event objects of the
// conversation.* topics) onto canonical ticket events. See docs/helpdesks.md (How each helpdesk maps) for the rules and the
// documentation they follow.
package intercom

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "intercom"

// Skip reasons, the metric labels of what a delivery deliberately does not map.
const (
	// SkipCampaign: an outbound message (Series, Posts, legacy campaigns), not a support request.
	SkipCampaign = "campaign"
	// SkipDeleted: the conversation was deleted.
	SkipDeleted = "deleted"
	// SkipUnsupportedEvent: a topic that carries nothing the KPIs use.
	SkipUnsupportedEvent = "unsupported_event"
	// SkipActivityPart: a conversation part that is activity, not a message or a state change
	// (attribute updates, participants added, Fin guidance, ...).
	SkipActivityPart = "activity_part"
	// SkipUnknownAuthor: a part without an author type (Intercom blanks Twitter authors).
	SkipUnknownAuthor = "unknown_author"
	// SkipNoParts: a notification whose conversation carries none of the parts it announces.
	SkipNoParts = "no_parts"
	// SkipUnmappedPriority: a priority value outside the documented ones.
	SkipUnmappedPriority = "unmapped_priority"
	// SkipInternalTicket: a back-office or tracker ticket, internal work with no customer
	// waiting on it.
	SkipInternalTicket = "internal_ticket"
	// SkipUnmappedState: a ticket state outside the four documented categories.
	SkipUnmappedState = "unmapped_state"
)

// The topics whose conversation parts are mapped one by one; rating.added, priority.updated
// and deleted are handled on their own, every other topic is skipped.
var partTopics = map[string]bool{
	"conversation.user.created":         true,
	"conversation.user.replied":         true,
	"conversation.admin.single.created": true,
	"conversation.admin.replied":        true,
	"conversation.admin.noted":          true,
	"conversation.admin.assigned":       true,
	"conversation.admin.open.assigned":  true,
	"conversation.admin.closed":         true,
	"conversation.admin.opened":         true,
	"conversation.admin.snoozed":        true,
	"conversation.admin.unsnoozed":      true,
	"conversation.operator.replied":     true,
}

// Adapter maps Intercom deliveries. It needs no configuration.
type Adapter struct{}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns the Intercom adapter.
func New() *Adapter { return &Adapter{} }

// Source returns "intercom".
func (*Adapter) Source() string { return Source }

type notification struct {
	Type      string            `json:"type"`
	ID        adapter.TrimmedID `json:"id"`
	Topic     string            `json:"topic"`
	CreatedAt int64             `json:"created_at"`
	Data      *struct {
		// The item is decoded per topic: only conversation topics carry a conversation.
		Item json.RawMessage `json:"item"`
	} `json:"data"`
}

// conversation is the item of a conversation or ticket notification, in the shapes of every
// API version Intercom delivers: 2.x and Unstable (source, contacts, admin_assignee_id and
// team_assignee_id), 1.x (conversation_message, user, customers, an assignee object) and
// tickets (ticket_state, ticket_parts, category). normalise folds 1.x into the 2.x fields.
type conversation struct {
	Type            string            `json:"type"`
	ID              adapter.TrimmedID `json:"id"`
	CreatedAt       int64             `json:"created_at"`
	UpdatedAt       int64             `json:"updated_at"`
	State           string            `json:"state"`
	Priority        string            `json:"priority"`
	AdminAssigneeID adapter.TrimmedID `json:"admin_assignee_id"`
	TeamAssigneeID  adapter.TrimmedID `json:"team_assignee_id"`
	Source          *source           `json:"source"`
	Tags            *tagList          `json:"tags"`
	Rating          *rating           `json:"conversation_rating"`
	Parts           *partList         `json:"conversation_parts"`
	Contacts        *contactList      `json:"contacts"`

	// API 1.0–1.4.
	ConversationMessage *source     `json:"conversation_message"`
	User                *reference  `json:"user"`
	Customers           []reference `json:"customers"`
	Assignee            *reference  `json:"assignee"`

	// Tickets (2.9 and later).
	TicketState ticketState `json:"ticket_state"`
	TicketParts *struct {
		Parts []part `json:"ticket_parts"`
	} `json:"ticket_parts"`
	Category   string `json:"category"`
	TicketType *struct {
		Category string `json:"category"`
	} `json:"ticket_type"`
}

type source struct {
	Type        string            `json:"type"`
	ID          adapter.TrimmedID `json:"id"`
	DeliveredAs string            `json:"delivered_as"`
	Author      author            `json:"author"`
}

type author struct {
	Type        string            `json:"type"`
	ID          adapter.TrimmedID `json:"id"`
	FromAIAgent bool              `json:"from_ai_agent"`
}

type tagList struct {
	Tags []struct {
		Name string `json:"name"`
	} `json:"tags"`
}

type partList struct {
	Parts []part `json:"conversation_parts"`
}

type part struct {
	ID         adapter.TrimmedID `json:"id"`
	PartType   string            `json:"part_type"`
	CreatedAt  int64             `json:"created_at"`
	AssignedTo *reference        `json:"assigned_to"`
	Author     author            `json:"author"`
	// Ticket parts say the state a part moved the ticket from and to.
	PreviousTicketState ticketState `json:"previous_ticket_state"`
	TicketState         ticketState `json:"ticket_state"`
}

type reference struct {
	Type string            `json:"type"`
	ID   adapter.TrimmedID `json:"id"`
}

type rating struct {
	Rating    *int       `json:"rating"`
	Remark    string     `json:"remark"`
	CreatedAt int64      `json:"created_at"`
	UpdatedAt int64      `json:"updated_at"`
	Contact   *reference `json:"contact"`
	// API 1.x names the rating contact "customer".
	Customer *reference `json:"customer"`
}

type contactList struct {
	Contacts []reference `json:"contacts"`
}

// Map turns one notification into events. Parts are identified by their own ids, not by the
// notification id: one part can arrive under several topics (a reply that also assigns), and
// must become one event.
func (*Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	var n notification
	if err := adapter.DecodeJSON(d.Body, &n); err != nil {
		return adapter.Result{}, err
	}
	if n.Type != "notification_event" {
		return adapter.Result{}, adapter.Malformed("type", "must be \"notification_event\", not %q", adapter.Truncate(n.Type, 40))
	}
	if n.Topic == "" {
		return adapter.Result{}, adapter.Malformed("topic", "required")
	}
	var res adapter.Result
	switch n.Topic {
	case "conversation.rating.added", "conversation.priority.updated", "conversation.deleted":
	default:
		if !partTopics[n.Topic] && !ticketTopics[n.Topic] {
			res.Skipped = append(res.Skipped, adapter.Skip{Reason: SkipUnsupportedEvent, Detail: "topic " + adapter.Truncate(n.Topic, 80)})
			return res, nil
		}
	}
	if n.Data == nil || len(n.Data.Item) == 0 || string(n.Data.Item) == "null" {
		return adapter.Result{}, adapter.Malformed("data.item", "required for topic %s", adapter.Truncate(n.Topic, 80))
	}
	var c conversation
	if err := adapter.DecodeJSON(n.Data.Item, &c); err != nil {
		return adapter.Result{}, prefixed("data.item", err)
	}
	cid, err := requiredID("data.item.id", c.ID)
	if err != nil {
		return adapter.Result{}, err
	}
	if n.Topic == "conversation.deleted" {
		res.Skipped = append(res.Skipped, adapter.Skip{Reason: SkipDeleted, Detail: "conversation " + cid})
		return res, nil
	}
	m := &mapper{n: &n, c: &c, cid: cid, sourceField: "data.item.source"}
	if ticketTopics[n.Topic] {
		if err := m.ticket(); err != nil {
			return adapter.Result{}, err
		}
		return m.res, nil
	}
	m.normalise()
	if err := m.run(); err != nil {
		return adapter.Result{}, err
	}
	return m.res, nil
}

// mapper holds one notification's conversation while its events are built.
type mapper struct {
	n   *notification
	c   *conversation
	cid string
	res adapter.Result
	// sourceField is where the opening message is in this item's API version, for problems.
	sourceField string
}

// normalise reads an API 1.x conversation into the 2.x fields the mapping uses: the opening
// message is conversation_message (no channel in 1.x), the assignee an object that is an
// admin, a team or nobody_admin, the customer user (or the first of customers).
func (m *mapper) normalise() {
	c := m.c
	if c.Source == nil && c.ConversationMessage != nil {
		msg := *c.ConversationMessage
		// Its type is "conversation_message", not a channel.
		msg.Type = ""
		// 1.x leaves the author type null on some messages; the conversation's user wrote
		// them when the ids agree.
		if msg.Author.Type == "" && c.User != nil && msg.Author.ID != "" && msg.Author.ID == c.User.ID {
			msg.Author.Type = c.User.Type
			if msg.Author.Type == "" {
				msg.Author.Type = "user"
			}
		}
		c.Source = &msg
		m.sourceField = "data.item.conversation_message"
	}
	if c.AdminAssigneeID == "" && c.TeamAssigneeID == "" && c.Assignee != nil {
		switch adapter.Lower(c.Assignee.Type) {
		case "admin":
			c.AdminAssigneeID = c.Assignee.ID
		case "team":
			c.TeamAssigneeID = c.Assignee.ID
		}
	}
	if c.Contacts == nil {
		var people []reference
		if c.User != nil {
			people = append(people, *c.User)
		}
		people = append(people, c.Customers...)
		if len(people) > 0 {
			c.Contacts = &contactList{Contacts: people}
		}
	}
	if r := c.Rating; r != nil && r.Contact == nil && r.Customer != nil {
		r.Contact = r.Customer
	}
}

func (m *mapper) run() error {
	switch m.n.Topic {
	case "conversation.rating.added":
		return m.rating()
	case "conversation.priority.updated":
		return m.priority()
	case "conversation.user.created", "conversation.admin.single.created":
		if m.c.Source != nil {
			switch m.c.Source.DeliveredAs {
			case "automated", "campaigns_initiated":
				m.skip(SkipCampaign, "conversation "+m.cid+" delivered as "+adapter.Truncate(m.c.Source.DeliveredAs, 40))
				return nil
			}
		}
		if err := m.created(); err != nil {
			return err
		}
	}
	var parts []part
	if m.c.Parts != nil {
		parts = m.c.Parts.Parts
	}
	for i := range parts {
		if err := m.part("data.item.conversation_parts.conversation_parts["+strconv.Itoa(i)+"]", &parts[i], false); err != nil {
			return err
		}
	}
	if len(m.res.Events) == 0 && len(m.res.Skipped) == 0 {
		m.skip(SkipNoParts, "topic "+m.n.Topic+" without conversation parts")
	}
	return nil
}

func (m *mapper) skip(reason, detail string) {
	m.res.Skipped = append(m.res.Skipped, adapter.Skip{Reason: reason, Detail: detail})
}

// event is an event of this conversation with its assignee, team, priority, channel and tags as
// the notification shows them; the caller sets the id.
func (m *mapper) event(typ string, at time.Time, actor canonical.Actor) canonical.Event {
	ev := canonical.Event{
		Source:     Source,
		TicketID:   m.cid,
		Type:       typ,
		OccurredAt: at,
		Actor:      actor,
		AssigneeID: optionalID(m.c.AdminAssigneeID),
		TeamID:     optionalID(m.c.TeamAssigneeID),
		Priority:   priorityOf(m.c.Priority),
	}
	if m.c.Source != nil {
		ev.Channel = adapter.OptionalText(m.c.Source.Type, canonical.MaxChannelBytes)
	}
	if m.c.Tags != nil {
		tags := make([]string, len(m.c.Tags.Tags))
		for i, t := range m.c.Tags.Tags {
			tags[i] = t.Name
		}
		ev.Tags = adapter.Tags(tags)
	}
	return ev
}

// created maps the conversation's opening: the ticket and its first message (the source).
func (m *mapper) created() error {
	at, err := requiredTime("data.item.created_at", m.c.CreatedAt)
	if err != nil {
		return err
	}
	if m.c.Source == nil {
		return adapter.Malformed("data.item.source", "required for topic %s (API 1.x: data.item.conversation_message)", m.n.Topic)
	}
	actor, known, err := actorOf(m.sourceField+".author", m.c.Source.Author)
	if err != nil {
		return err
	}
	if !known {
		m.skip(SkipUnknownAuthor, "source of conversation "+m.cid)
		return nil
	}
	ev := m.event("ticket_created", at, actor)
	ev.ID = adapter.EventID(Source, m.cid, "created")
	ev.Status = statusOf(m.c.State)
	m.res.Events = append(m.res.Events, ev)

	msg := m.message(at, actor, true)
	sid := optionalID(m.c.Source.ID)
	msg.ID = adapter.EventID(Source, m.cid, "source", sid)
	m.res.Events = append(m.res.Events, msg)
	return nil
}

func (m *mapper) message(at time.Time, actor canonical.Actor, public bool) canonical.Event {
	typ := "agent_message"
	if actor.Kind == "customer" {
		typ = "customer_message"
	}
	ev := m.event(typ, at, actor)
	ev.Public = adapter.Bool(public)
	return ev
}

// Part types that change the state, by the status they lead to.
var statusByPart = map[string]string{
	"close":               "solved",
	"open":                "open",
	"snoozed":             "on_hold",
	"unsnoozed":           "open",
	"timer_unsnooze":      "open",
	"assign_and_reopen":   "open",
	"assign_and_unsnooze": "open",
}

// Part types that assign the conversation.
var assignmentParts = map[string]bool{
	"assignment":           true,
	"default_assignment":   true,
	"away_mode_assignment": true,
	"assign_and_reopen":    true,
	"assign_and_unsnooze":  true,
}

// part maps one conversation or ticket part at field. A conversation part's type says the
// state it leads to; a ticket part says it in ticket_state, whatever its type.
func (m *mapper) part(field string, p *part, ticket bool) error {
	pid, err := requiredID(field+".id", p.ID)
	if err != nil {
		return err
	}
	at, err := requiredTime(field+".created_at", p.CreatedAt)
	if err != nil {
		return err
	}
	kind := p.PartType
	status, changesStatus := statusByPart[kind]
	if ticket && kind == "quick_reply" {
		// The ticket parts page lists notes, comments and quick replies as a ticket's messages.
		kind = "comment"
	}
	if ticket {
		status, changesStatus = "", false
		if to := p.TicketState.Category; to != "" && to != p.PreviousTicketState.Category {
			s, ok := ticketStatusOf(to)
			if !ok {
				m.skip(SkipUnmappedState, "part "+pid+" to ticket state "+strconv.Quote(adapter.Truncate(to, 40)))
				if kind != "comment" && kind != "note" && !assignmentParts[kind] {
					return nil
				}
			}
			status, changesStatus = s, ok
		}
	}
	if kind != "comment" && kind != "note" && !changesStatus && !assignmentParts[kind] {
		m.skip(SkipActivityPart, "part "+pid+" of type "+adapter.Truncate(kind, 64))
		return nil
	}
	actor, known, err := actorOf(field+".author", p.Author)
	if err != nil {
		return err
	}
	if !known {
		m.skip(SkipUnknownAuthor, "part "+pid)
		return nil
	}
	// Part ids increase as parts are added to the conversation, and Intercom's times are whole
	// seconds: the part id orders a conversation's same-second parts. The opening message (the
	// source) has none, so it sorts before any part of its second.
	seq := adapter.Sequence(pid)
	switch kind {
	case "comment", "note":
		// Notes are internal: visible to teammates only, never a response.
		ev := m.message(at, actor, kind == "comment")
		ev.ID = adapter.EventID(Source, m.cid, "part", pid)
		ev.Sequence = seq
		m.res.Events = append(m.res.Events, ev)
	}
	if assignmentParts[kind] {
		ev := m.event("ticket_assigned", at, actor)
		ev.ID = adapter.EventID(Source, m.cid, "part", pid)
		ev.Sequence = seq
		if a := p.AssignedTo; a != nil {
			switch a.Type {
			case "admin":
				if id := optionalID(a.ID); id != "" {
					ev.AssigneeID = id
				}
			case "team":
				if id := optionalID(a.ID); id != "" {
					ev.TeamID = id
				}
			case "nobody_admin":
				ev.AssigneeID = ""
			}
		}
		m.res.Events = append(m.res.Events, ev)
	}
	if changesStatus {
		ev := m.event("status_changed", at, actor)
		ev.ID = adapter.EventID(Source, m.cid, "part", pid, "status")
		ev.Sequence = seq
		ev.Status = status
		m.res.Events = append(m.res.Events, ev)
	}
	return nil
}

// rating maps conversation.rating.added: Intercom's 1..5 rating stays on a 5-point scale.
func (m *mapper) rating() error {
	r := m.c.Rating
	if r == nil || r.Rating == nil {
		return adapter.Malformed("data.item.conversation_rating.rating", "required for conversation.rating.added")
	}
	if *r.Rating < 1 || *r.Rating > 5 {
		return adapter.Malformed("data.item.conversation_rating.rating", "must be between 1 and 5, not %d", *r.Rating)
	}
	// updated_at is when the customer rated; created_at is when the rating was requested.
	ts := r.UpdatedAt
	if ts == 0 {
		ts = r.CreatedAt
	}
	if ts == 0 {
		ts = m.n.CreatedAt
	}
	at, err := requiredTime("data.item.conversation_rating.updated_at", ts)
	if err != nil {
		return err
	}
	customer := ""
	if r.Contact != nil {
		customer = optionalID(r.Contact.ID)
	}
	if customer == "" && m.c.Contacts != nil && len(m.c.Contacts.Contacts) > 0 {
		customer = optionalID(m.c.Contacts.Contacts[0].ID)
	}
	if customer == "" {
		return adapter.Malformed("data.item.conversation_rating.contact.id", "required: the rating names the contact who gave it")
	}
	ev := m.event("satisfaction_rated", at, canonical.Actor{ID: customer, Kind: "customer"})
	ev.ID = adapter.EventID(Source, m.cid, "rating", strconv.FormatInt(ts, 10), strconv.Itoa(*r.Rating))
	ev.Satisfaction = &canonical.Satisfaction{Score: *r.Rating, Scale: 5, Comment: adapter.Comment(r.Remark)}
	m.res.Events = append(m.res.Events, ev)
	return nil
}

// priority maps conversation.priority.updated. The notification names no part, so its own id,
// which Intercom keeps across retries, identifies the event.
func (m *mapper) priority() error {
	nid, err := requiredID("id", m.n.ID)
	if err != nil {
		return err
	}
	p := priorityOf(m.c.Priority)
	if p == "" {
		m.skip(SkipUnmappedPriority, "priority "+strconv.Quote(adapter.Truncate(m.c.Priority, 40)))
		return nil
	}
	ts := m.c.UpdatedAt
	if ts == 0 {
		ts = m.n.CreatedAt
	}
	at, err := requiredTime("data.item.updated_at", ts)
	if err != nil {
		return err
	}
	// The notification does not say who changed the priority.
	ev := m.event("priority_changed", at, canonical.Actor{Kind: "system"})
	ev.ID = adapter.EventID(Source, m.cid, "notification", nid)
	m.res.Events = append(m.res.Events, ev)
	return nil
}

// actorOf classifies a part author. known is false for an author without a type.
func actorOf(field string, a author) (actor canonical.Actor, known bool, err error) {
	var kind string
	switch adapter.Lower(a.Type) {
	case "admin":
		kind = "agent"
		// Fin answers on behalf of an admin; its replies are not a teammate's response.
		if a.FromAIAgent {
			kind = "bot"
		}
	case "user", "lead", "contact":
		kind = "customer"
	case "bot":
		kind = "bot"
	case "team":
		// Workflows and assignment rules act in a team's name.
		kind = "automation"
	case "":
		return canonical.Actor{}, false, nil
	default:
		return canonical.Actor{}, false, adapter.Malformed(field+".type", "unknown value %q; want admin, user, lead, contact, bot or team", adapter.Truncate(a.Type, 40))
	}
	id := optionalID(a.ID)
	if id == "" && (kind == "agent" || kind == "customer") {
		if present(a.ID) {
			return canonical.Actor{}, false, adapter.Malformed(field+".id", "longer than %d bytes or contains a control character", canonical.MaxIDBytes)
		}
		return canonical.Actor{}, false, adapter.Malformed(field+".id", "required for a %s author", a.Type)
	}
	return canonical.Actor{ID: id, Kind: kind}, true, nil
}

// Intercom's conversation states. Closed is Intercom's solved; snoozed waits for a time or a
// reply, which is our on_hold.
func statusOf(state string) string {
	switch state {
	case "open":
		return "open"
	case "closed":
		return "solved"
	case "snoozed":
		return "on_hold"
	}
	return ""
}

// priorityOf maps "priority"/"not_priority" (API 2.x) and the levels of the preview API.
func priorityOf(p string) string {
	switch p {
	case "priority", "high":
		return "high"
	case "not_priority", "none", "medium":
		return "normal"
	case "low":
		return "low"
	case "urgent":
		return "urgent"
	}
	return ""
}

// Unix seconds of a plausible source timestamp; they also keep the canonical encoding valid.
const (
	minUnix = 1 // 1970-01-01T00:00:01Z
	maxUnix = 253402300799
)

func requiredTime(field string, ts int64) (time.Time, error) {
	if ts == 0 {
		return time.Time{}, adapter.Malformed(field, "required")
	}
	if ts < minUnix || ts > maxUnix {
		return time.Time{}, adapter.Malformed(field, "out of range: %d", ts)
	}
	return time.Unix(ts, 0).UTC(), nil
}

func requiredID(field string, id adapter.TrimmedID) (string, error) {
	return adapter.RequiredID(field, string(id), present(id))
}

// optionalID is the id when it names someone: Intercom reports "no admin" as null or 0.
func optionalID(id adapter.TrimmedID) string {
	if !present(id) || id == "0" {
		return ""
	}
	return adapter.OptionalText(string(id), canonical.MaxIDBytes)
}

// prefixed puts the item's path before the fields of the problems found decoding it alone.
func prefixed(prefix string, err error) error {
	ps, ok := err.(canonical.Problems)
	if !ok {
		return err
	}
	for i := range ps.List {
		if ps.List[i].Field == "" {
			ps.List[i].Field = prefix
		} else {
			ps.List[i].Field = prefix + "." + ps.List[i].Field
		}
	}
	return ps
}

// present reports whether an Intercom id holds a value. The API documents ids as strings, but
// admin_assignee_id is a number and team ids arrive as either, hence adapter.TrimmedID.
func present(f adapter.TrimmedID) bool { return f != "" }
