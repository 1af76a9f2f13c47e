// Package chatwoot maps Chatwoot account webhooks (conversation_created, conversation_updated,
// conversation_status_changed, message_created, message_updated) to canonical ticket events.
// The payloads are Chatwoot's webhook_data: a message event carries the message at the top level
// and its conversation under "conversation"; a conversation event is the conversation itself.
// See docs/helpdesks.md (How each helpdesk maps) for the table and the documentation it follows.
package chatwoot

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "chatwoot"

// Skip reasons: what a delivery can hold that is deliberately not an event.
const (
	// ReasonUnsupportedEvent: an event with no KPI meaning (contact_*, webwidget_triggered,
	// conversation_typing_*, the deprecated conversation_opened/conversation_resolved, which
	// duplicate conversation_status_changed).
	ReasonUnsupportedEvent = "unsupported_event"
	// ReasonActivity: an activity message ("Conversation was resolved by Ana"); the change
	// itself arrives as its own conversation event.
	ReasonActivity = "activity_message"
	// ReasonTemplate: a template message (widget forms, the CSAT survey prompt): no one wrote it.
	ReasonTemplate = "template_message"
	// ReasonCampaign: an outgoing campaign message; it was not a response to anyone.
	ReasonCampaign = "campaign"
	// ReasonMessageEdit: message_updated for anything but a submitted CSAT survey (edits,
	// deletions, delivery status); the message was counted when it was created.
	ReasonMessageEdit = "message_edit"
	// ReasonNoKPIChange: conversation_updated that changed neither assignee, team nor priority.
	ReasonNoKPIChange = "no_kpi_change"
)

// Adapter maps Chatwoot deliveries; it holds no state.
type Adapter struct{}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns the Chatwoot adapter.
func New() *Adapter { return &Adapter{} }

// Source implements adapter.Adapter.
func (*Adapter) Source() string { return Source }

// Map implements adapter.Adapter.
func (a *Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	var head struct {
		Event string `json:"event"`
	}
	if err := adapter.DecodeJSON(d.Body, &head); err != nil {
		return adapter.Result{}, err
	}
	switch head.Event {
	case "":
		return adapter.Result{}, adapter.Malformed("event", "required")
	case "conversation_created", "conversation_updated", "conversation_status_changed":
		var c conversation
		if err := adapter.DecodeJSON(d.Body, &c); err != nil {
			return adapter.Result{}, err
		}
		return mapConversation(head.Event, &c, "")
	case "message_created", "message_updated":
		var m message
		if err := adapter.DecodeJSON(d.Body, &m); err != nil {
			return adapter.Result{}, err
		}
		return mapMessage(head.Event, &m)
	default:
		return adapter.Skipped(ReasonUnsupportedEvent, "event %q", adapter.Truncate(head.Event, 60)), nil
	}
}

// message is Message#webhook_data.
type message struct {
	ID                adapter.ID      `json:"id"`
	CreatedAt         json.RawMessage `json:"created_at"`
	MessageType       string          `json:"message_type"`
	ContentType       string          `json:"content_type"`
	Private           bool            `json:"private"`
	ContentAttributes struct {
		// An object for input_csat, an array for the bot forms: decoded only for CSAT.
		SubmittedValues json.RawMessage `json:"submitted_values"`
	} `json:"content_attributes"`
	AdditionalAttributes struct {
		CampaignID adapter.ID `json:"campaign_id"`
	} `json:"additional_attributes"`
	Sender       *person       `json:"sender"`
	Conversation *conversation `json:"conversation"`
}

// conversation is Conversation#webhook_data (Conversations::EventDataPresenter#push_data),
// plus changed_attributes on the update events.
type conversation struct {
	ID       adapter.ID `json:"id"` // the display id, as in the dashboard URL
	Status   string     `json:"status"`
	Priority string     `json:"priority"`
	Channel  string     `json:"channel"`
	Labels   []string   `json:"labels"`
	Meta     struct {
		Sender       *person `json:"sender"`
		Assignee     *person `json:"assignee"`
		AssigneeType string  `json:"assignee_type"`
		Team         *person `json:"team"`
	} `json:"meta"`
	TeamID       adapter.ID `json:"team_id"`
	ContactInbox struct {
		ContactID adapter.ID `json:"contact_id"`
	} `json:"contact_inbox"`
	CreatedAt         json.RawMessage              `json:"created_at"`
	UpdatedAt         json.RawMessage              `json:"updated_at"`
	Timestamp         json.RawMessage              `json:"timestamp"`
	ChangedAttributes []map[string]json.RawMessage `json:"changed_attributes"`
}

// person is a sender, assignee or team: user, contact, agent_bot, captain_assistant.
type person struct {
	ID   adapter.ID `json:"id"`
	Type string     `json:"type"`
}

func mapConversation(event string, c *conversation, prefix string) (adapter.Result, error) {
	base, err := ticket(c, prefix)
	if err != nil {
		return adapter.Result{}, err
	}
	switch event {
	case "conversation_created":
		at, err := firstTime(prefix, c, "created_at", "timestamp")
		if err != nil {
			return adapter.Result{}, err
		}
		ev := base
		ev.ID = adapter.EventID(Source, base.TicketID, event)
		ev.Type = "ticket_created"
		ev.OccurredAt = at
		ev.Actor = customer(c)
		if ev.Status, err = status(prefix+"status", c.Status, false); err != nil {
			return adapter.Result{}, err
		}
		return adapter.One(ev), nil
	case "conversation_status_changed":
		at, err := firstTime(prefix, c, "updated_at", "timestamp")
		if err != nil {
			return adapter.Result{}, err
		}
		ev := base
		ev.Status, err = status(prefix+"status", c.Status, true)
		if err != nil {
			return adapter.Result{}, err
		}
		ev.ID = adapter.EventID(Source, base.TicketID, event, ev.Status, stamp(at))
		ev.Type = "status_changed"
		ev.OccurredAt = at
		// Chatwoot does not say who changed the status (an agent, an automation rule, the
		// auto-resolver); the resolution is credited to the assignee anyway.
		ev.Actor = canonical.Actor{Kind: "system"}
		return adapter.One(ev), nil
	default: // conversation_updated
		return mapUpdate(c, base, prefix)
	}
}

// mapUpdate turns the assignee/team and priority changes of conversation_updated into events;
// status changes are left to conversation_status_changed, which Chatwoot sends as well.
func mapUpdate(c *conversation, base canonical.Event, prefix string) (adapter.Result, error) {
	var assigned, prioritised bool
	for _, ch := range c.ChangedAttributes {
		for k := range ch {
			switch k {
			case "assignee_id", "team_id", "assignee_agent_bot_id":
				assigned = true
			case "priority":
				prioritised = true
			}
		}
	}
	if !assigned && !prioritised {
		return adapter.Skipped(ReasonNoKPIChange, "conversation %s", base.TicketID), nil
	}
	at, err := firstTime(prefix, c, "updated_at", "timestamp")
	if err != nil {
		return adapter.Result{}, err
	}
	var res adapter.Result
	if assigned {
		ev := base
		ev.ID = adapter.EventID(Source, base.TicketID, "assigned", base.AssigneeID, base.TeamID, stamp(at))
		ev.Type = "ticket_assigned"
		ev.OccurredAt = at
		ev.Actor = canonical.Actor{Kind: "system"}
		res.Events = append(res.Events, ev)
	}
	if prioritised {
		if base.Priority == "" {
			// Priority cleared: the canonical form has no "none", so there is nothing to say.
			res.Skipped = append(res.Skipped, adapter.Skip{Reason: ReasonNoKPIChange, Detail: "priority removed"})
		} else {
			ev := base
			ev.ID = adapter.EventID(Source, base.TicketID, "priority", base.Priority, stamp(at))
			ev.Type = "priority_changed"
			ev.OccurredAt = at
			ev.Actor = canonical.Actor{Kind: "system"}
			res.Events = append(res.Events, ev)
		}
	}
	return res, nil
}

func mapMessage(event string, m *message) (adapter.Result, error) {
	if m.Conversation == nil {
		return adapter.Result{}, adapter.Malformed("conversation", "required")
	}
	if m.ID == "" {
		return adapter.Result{}, adapter.Malformed("id", "required")
	}
	if err := adapter.CheckID("id", string(m.ID)); err != nil {
		return adapter.Result{}, err
	}
	base, err := ticket(m.Conversation, "conversation.")
	if err != nil {
		return adapter.Result{}, err
	}
	kind := adapter.Lower(m.MessageType)
	if event == "message_updated" {
		if adapter.Lower(m.ContentType) == "input_csat" {
			return mapRating(m, base)
		}
		return adapter.Skipped(ReasonMessageEdit, "message %s", m.ID), nil
	}
	switch kind {
	case "activity":
		return adapter.Skipped(ReasonActivity, "message %s", m.ID), nil
	case "template":
		return adapter.Skipped(ReasonTemplate, "message %s", m.ID), nil
	case "incoming", "outgoing":
	case "":
		return adapter.Result{}, adapter.Malformed("message_type", "required")
	default:
		return adapter.Result{}, adapter.Malformed("message_type", "unknown value %q; want incoming, outgoing, activity or template", adapter.Truncate(m.MessageType, 40))
	}
	if kind == "outgoing" && m.AdditionalAttributes.CampaignID != "" {
		return adapter.Skipped(ReasonCampaign, "message %s of campaign %s", m.ID, adapter.Truncate(string(m.AdditionalAttributes.CampaignID), 40)), nil
	}
	at, ok, err := parseTime("created_at", m.CreatedAt)
	if err != nil {
		return adapter.Result{}, err
	}
	if !ok {
		return adapter.Result{}, adapter.Malformed("created_at", "required")
	}
	ev := base
	ev.ID = "message:" + string(m.ID)
	// Message ids are the account's increasing integers: they order a conversation's messages
	// of the same instant.
	ev.Sequence = adapter.Sequence(string(m.ID))
	ev.OccurredAt = at
	if kind == "incoming" {
		ev.Type = "customer_message"
		ev.Public = adapter.Bool(!m.Private)
		ev.Actor = customer(m.Conversation)
		if m.Sender != nil && m.Sender.Type == "contact" && m.Sender.ID != "" {
			ev.Actor = canonical.Actor{ID: string(m.Sender.ID), Kind: "customer"}
		}
		if ev.Actor.ID == "" {
			return adapter.Result{}, adapter.Malformed("sender.id", "required for an incoming message (no contact in the conversation either)")
		}
	} else {
		ev.Type = "agent_message"
		ev.Public = adapter.Bool(!m.Private)
		ev.Actor = author(m.Sender)
	}
	if err := adapter.CheckID("sender.id", ev.Actor.ID); err != nil {
		return adapter.Result{}, err
	}
	return adapter.One(ev), nil
}

// author classifies who wrote an outgoing message. Only a user (a human agent) is an agent:
// agent bots and Captain assistants are bots, and a message without a sender was written by
// Chatwoot itself (automation rules, auto-resolve and out-of-office replies).
func author(s *person) canonical.Actor {
	switch {
	case s == nil || (s.Type == "" && s.ID == ""):
		return canonical.Actor{Kind: "automation"}
	case s.Type == "user" && s.ID != "":
		return canonical.Actor{ID: string(s.ID), Kind: "agent"}
	default:
		return canonical.Actor{ID: string(s.ID), Kind: "bot"}
	}
}

// mapRating turns a submitted CSAT survey (message_updated of the input_csat template message)
// into satisfaction_rated; a survey not answered yet is an edit like any other.
func mapRating(m *message, base canonical.Event) (adapter.Result, error) {
	var sv struct {
		Response *struct {
			Rating   json.Number `json:"rating"`
			Feedback string      `json:"feedback_message"`
		} `json:"csat_survey_response"`
	}
	raw := m.ContentAttributes.SubmittedValues
	if len(raw) == 0 || string(raw) == "null" {
		return adapter.Skipped(ReasonMessageEdit, "CSAT survey %s not answered yet", m.ID), nil
	}
	if err := json.Unmarshal(raw, &sv); err != nil {
		return adapter.Result{}, adapter.Malformed("content_attributes.submitted_values", "must be an object with csat_survey_response")
	}
	if sv.Response == nil {
		return adapter.Skipped(ReasonMessageEdit, "CSAT survey %s not answered yet", m.ID), nil
	}
	field := "content_attributes.submitted_values.csat_survey_response.rating"
	score, err := strconv.Atoi(sv.Response.Rating.String())
	if err != nil || score < 1 || score > 5 {
		return adapter.Result{}, adapter.Malformed(field, "must be an integer from 1 to 5")
	}
	// The message keeps its created_at (when the survey was sent); the conversation was touched
	// when the answer was saved, so its updated_at is the time of the rating.
	at, err := firstTime("conversation.", m.Conversation, "updated_at", "timestamp")
	if err != nil {
		return adapter.Result{}, err
	}
	ev := base
	comment := adapter.Comment(sv.Response.Feedback)
	// A re-rating updates the same message: the rating and comment are part of the id, so it
	// is a new event that replaces the old rating rather than a duplicate.
	ev.ID = adapter.EventID(Source, base.TicketID, "csat", string(m.ID), strconv.Itoa(score), comment)
	ev.Type = "satisfaction_rated"
	ev.OccurredAt = at
	ev.Actor = customer(m.Conversation)
	if ev.Actor.ID == "" {
		ev.Actor = canonical.Actor{Kind: "system"}
	}
	ev.Satisfaction = &canonical.Satisfaction{Score: score, Scale: 5, Comment: comment}
	return adapter.One(ev), nil
}

// ticket builds the fields every event of the conversation shares.
func ticket(c *conversation, prefix string) (canonical.Event, error) {
	if c.ID == "" {
		return canonical.Event{}, adapter.Malformed(prefix+"id", "required")
	}
	if err := adapter.CheckID(prefix+"id", string(c.ID)); err != nil {
		return canonical.Event{}, err
	}
	ev := canonical.Event{Source: Source, TicketID: string(c.ID)}
	// An agent bot can hold a conversation too (assignee_type AgentBot); it is nobody's KPI.
	if a := c.Meta.Assignee; a != nil && a.Type != "agent_bot" && c.Meta.AssigneeType != "AgentBot" {
		ev.AssigneeID = string(a.ID)
	}
	if t := c.Meta.Team; t != nil {
		ev.TeamID = string(t.ID)
	} else {
		ev.TeamID = string(c.TeamID)
	}
	if err := adapter.CheckID(prefix+"meta.assignee.id", ev.AssigneeID); err != nil {
		return canonical.Event{}, err
	}
	if err := adapter.CheckID(prefix+"meta.team.id", ev.TeamID); err != nil {
		return canonical.Event{}, err
	}
	p, err := priority(prefix+"priority", c.Priority)
	if err != nil {
		return canonical.Event{}, err
	}
	ev.Priority = p
	// Chatwoot's channel names are kept as sent ("Channel::WebWidget"), not lower-cased.
	ev.Channel = adapter.OptionalText(c.Channel, canonical.MaxChannelBytes)
	ev.Tags = adapter.Tags(c.Labels)
	return ev, nil
}

// customer is the conversation's contact, the author of what arrives without a sender.
func customer(c *conversation) canonical.Actor {
	if s := c.Meta.Sender; s != nil && s.ID != "" && adapter.ValidText(string(s.ID), canonical.MaxIDBytes) {
		return canonical.Actor{ID: string(s.ID), Kind: "customer"}
	}
	if id := string(c.ContactInbox.ContactID); id != "" && adapter.ValidText(id, canonical.MaxIDBytes) {
		return canonical.Actor{ID: id, Kind: "customer"}
	}
	return canonical.Actor{Kind: "system"}
}

// statuses maps Chatwoot's conversation statuses; snoozed waits on a date, like on_hold.
var statuses = map[string]string{"open": "open", "resolved": "solved", "pending": "pending", "snoozed": "on_hold"}

func status(field, s string, required bool) (string, error) {
	if s == "" {
		if required {
			return "", adapter.Malformed(field, "required")
		}
		return "", nil
	}
	st, ok := statuses[adapter.Lower(s)]
	if !ok {
		return "", adapter.Malformed(field, "unknown value %q; want open, resolved, pending or snoozed", adapter.Truncate(s, 40))
	}
	return st, nil
}

// priorities maps Chatwoot's conversation priorities (null when none is set).
var priorities = map[string]string{"low": "low", "medium": "normal", "high": "high", "urgent": "urgent"}

func priority(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	p, ok := priorities[adapter.Lower(s)]
	if !ok {
		return "", adapter.Malformed(field, "unknown value %q; want low, medium, high or urgent", adapter.Truncate(s, 40))
	}
	return p, nil
}

// firstTime returns the first of the named conversation timestamps that is present.
func firstTime(prefix string, c *conversation, names ...string) (time.Time, error) {
	raws := map[string]json.RawMessage{"created_at": c.CreatedAt, "updated_at": c.UpdatedAt, "timestamp": c.Timestamp}
	for _, n := range names {
		t, ok, err := parseTime(prefix+n, raws[n])
		if err != nil {
			return time.Time{}, err
		}
		if ok {
			return t, nil
		}
	}
	return time.Time{}, adapter.Malformed(prefix+names[0], "required")
}

// Representable range of the canonical form (years 0001 to 9999), in unix seconds.
const (
	minUnix = -62135596800
	maxUnix = 253402300799
)

// parseTime reads Chatwoot's timestamps: unix seconds (conversation created_at and timestamp,
// fractional updated_at) or a string (message created_at: ISO 8601 in current versions,
// "2020-03-03 13:05:57 UTC" in old ones). ok is false for an absent or null value.
func parseTime(field string, raw json.RawMessage) (t time.Time, ok bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, false, adapter.Malformed(field, "must be a string or unix seconds")
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05.999999999 MST"} {
			if t, err := time.Parse(layout, s); err == nil && t.Year() >= 1 && t.Year() <= 9999 {
				return t.UTC(), true, nil
			}
		}
		return time.Time{}, false, adapter.Malformed(field, "not a timestamp: %q", adapter.Truncate(s, 40))
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return time.Time{}, false, adapter.Malformed(field, "must be a string or unix seconds")
	}
	if f < minUnix || f > maxUnix {
		return time.Time{}, false, adapter.Malformed(field, "out of the representable range (years 0001 to 9999)")
	}
	sec := int64(f)
	if float64(sec) > f { // floor for negative values
		sec--
	}
	// Microseconds: what Chatwoot stores; more digits of a float64 are noise.
	usec := int64((f-float64(sec))*1e6 + 0.5)
	return time.Unix(sec, usec*1000).UTC(), true, nil
}

func stamp(t time.Time) string { return t.Format(time.RFC3339Nano) }
