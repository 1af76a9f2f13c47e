// Package chatwoot maps Chatwoot account webhooks (conversation_created, conversation_updated,
// conversation_status_changed, message_created, message_updated) to canonical ticket events.
// The payloads are Chatwoot's webhook_data: a message event carries the message at the top level
// and its conversation under "conversation"; a conversation event is the conversation itself.
// See the README (How each helpdesk maps) for the table and the documentation it follows.
package chatwoot

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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
		return skip(ReasonUnsupportedEvent, "event %q", truncate(head.Event, 60)), nil
	}
}

// message is Message#webhook_data.
type message struct {
	ID                flexID          `json:"id"`
	CreatedAt         json.RawMessage `json:"created_at"`
	MessageType       string          `json:"message_type"`
	ContentType       string          `json:"content_type"`
	Private           bool            `json:"private"`
	ContentAttributes struct {
		// An object for input_csat, an array for the bot forms: decoded only for CSAT.
		SubmittedValues json.RawMessage `json:"submitted_values"`
	} `json:"content_attributes"`
	AdditionalAttributes struct {
		CampaignID flexID `json:"campaign_id"`
	} `json:"additional_attributes"`
	Sender       *person       `json:"sender"`
	Conversation *conversation `json:"conversation"`
}

// conversation is Conversation#webhook_data (Conversations::EventDataPresenter#push_data),
// plus changed_attributes on the update events.
type conversation struct {
	ID       flexID   `json:"id"` // the display id, as in the dashboard URL
	Status   string   `json:"status"`
	Priority string   `json:"priority"`
	Channel  string   `json:"channel"`
	Labels   []string `json:"labels"`
	Meta     struct {
		Sender       *person `json:"sender"`
		Assignee     *person `json:"assignee"`
		AssigneeType string  `json:"assignee_type"`
		Team         *person `json:"team"`
	} `json:"meta"`
	TeamID       flexID `json:"team_id"`
	ContactInbox struct {
		ContactID flexID `json:"contact_id"`
	} `json:"contact_inbox"`
	CreatedAt         json.RawMessage              `json:"created_at"`
	UpdatedAt         json.RawMessage              `json:"updated_at"`
	Timestamp         json.RawMessage              `json:"timestamp"`
	ChangedAttributes []map[string]json.RawMessage `json:"changed_attributes"`
}

// person is a sender, assignee or team: user, contact, agent_bot, captain_assistant.
type person struct {
	ID   flexID `json:"id"`
	Type string `json:"type"`
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
		return one(ev), nil
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
		ev.Actor = adapter.Actor{Kind: "system"}
		return one(ev), nil
	default: // conversation_updated
		return mapUpdate(c, base, prefix)
	}
}

// mapUpdate turns the assignee/team and priority changes of conversation_updated into events;
// status changes are left to conversation_status_changed, which Chatwoot sends as well.
func mapUpdate(c *conversation, base adapter.Event, prefix string) (adapter.Result, error) {
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
		return skip(ReasonNoKPIChange, "conversation %s", base.TicketID), nil
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
		ev.Actor = adapter.Actor{Kind: "system"}
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
			ev.Actor = adapter.Actor{Kind: "system"}
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
	if err := checkID("id", string(m.ID)); err != nil {
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
		return skip(ReasonMessageEdit, "message %s", m.ID), nil
	}
	switch kind {
	case "activity":
		return skip(ReasonActivity, "message %s", m.ID), nil
	case "template":
		return skip(ReasonTemplate, "message %s", m.ID), nil
	case "incoming", "outgoing":
	case "":
		return adapter.Result{}, adapter.Malformed("message_type", "required")
	default:
		return adapter.Result{}, adapter.Malformed("message_type", "unknown value %q; want incoming, outgoing, activity or template", truncate(m.MessageType, 40))
	}
	if kind == "outgoing" && m.AdditionalAttributes.CampaignID != "" {
		return skip(ReasonCampaign, "message %s of campaign %s", m.ID, truncate(string(m.AdditionalAttributes.CampaignID), 40)), nil
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
	ev.OccurredAt = at
	if kind == "incoming" {
		ev.Type = "customer_message"
		ev.Public = adapter.Bool(!m.Private)
		ev.Actor = customer(m.Conversation)
		if m.Sender != nil && m.Sender.Type == "contact" && m.Sender.ID != "" {
			ev.Actor = adapter.Actor{ID: string(m.Sender.ID), Kind: "customer"}
		}
		if ev.Actor.ID == "" {
			return adapter.Result{}, adapter.Malformed("sender.id", "required for an incoming message (no contact in the conversation either)")
		}
	} else {
		ev.Type = "agent_message"
		ev.Public = adapter.Bool(!m.Private)
		ev.Actor = author(m.Sender)
	}
	if err := checkID("sender.id", ev.Actor.ID); err != nil {
		return adapter.Result{}, err
	}
	return one(ev), nil
}

// author classifies who wrote an outgoing message. Only a user (a human agent) is an agent:
// agent bots and Captain assistants are bots, and a message without a sender was written by
// Chatwoot itself (automation rules, auto-resolve and out-of-office replies).
func author(s *person) adapter.Actor {
	switch {
	case s == nil || (s.Type == "" && s.ID == ""):
		return adapter.Actor{Kind: "automation"}
	case s.Type == "user" && s.ID != "":
		return adapter.Actor{ID: string(s.ID), Kind: "agent"}
	default:
		return adapter.Actor{ID: string(s.ID), Kind: "bot"}
	}
}

// mapRating turns a submitted CSAT survey (message_updated of the input_csat template message)
// into satisfaction_rated; a survey not answered yet is an edit like any other.
func mapRating(m *message, base adapter.Event) (adapter.Result, error) {
	var sv struct {
		Response *struct {
			Rating   json.Number `json:"rating"`
			Feedback string      `json:"feedback_message"`
		} `json:"csat_survey_response"`
	}
	raw := m.ContentAttributes.SubmittedValues
	if len(raw) == 0 || string(raw) == "null" {
		return skip(ReasonMessageEdit, "CSAT survey %s not answered yet", m.ID), nil
	}
	if err := json.Unmarshal(raw, &sv); err != nil {
		return adapter.Result{}, adapter.Malformed("content_attributes.submitted_values", "must be an object with csat_survey_response")
	}
	if sv.Response == nil {
		return skip(ReasonMessageEdit, "CSAT survey %s not answered yet", m.ID), nil
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
	comment := cleanComment(sv.Response.Feedback)
	// A re-rating updates the same message: the rating and comment are part of the id, so it
	// is a new event that replaces the old rating rather than a duplicate.
	ev.ID = adapter.EventID(Source, base.TicketID, "csat", string(m.ID), strconv.Itoa(score), comment)
	ev.Type = "satisfaction_rated"
	ev.OccurredAt = at
	ev.Actor = customer(m.Conversation)
	if ev.Actor.ID == "" {
		ev.Actor = adapter.Actor{Kind: "system"}
	}
	ev.Satisfaction = &adapter.Satisfaction{Score: score, Scale: 5, Comment: comment}
	return one(ev), nil
}

// ticket builds the fields every event of the conversation shares.
func ticket(c *conversation, prefix string) (adapter.Event, error) {
	if c.ID == "" {
		return adapter.Event{}, adapter.Malformed(prefix+"id", "required")
	}
	if err := checkID(prefix+"id", string(c.ID)); err != nil {
		return adapter.Event{}, err
	}
	ev := adapter.Event{Source: Source, TicketID: string(c.ID)}
	// An agent bot can hold a conversation too (assignee_type AgentBot); it is nobody's KPI.
	if a := c.Meta.Assignee; a != nil && a.Type != "agent_bot" && c.Meta.AssigneeType != "AgentBot" {
		ev.AssigneeID = string(a.ID)
	}
	if t := c.Meta.Team; t != nil {
		ev.TeamID = string(t.ID)
	} else {
		ev.TeamID = string(c.TeamID)
	}
	if err := checkID(prefix+"meta.assignee.id", ev.AssigneeID); err != nil {
		return adapter.Event{}, err
	}
	if err := checkID(prefix+"meta.team.id", ev.TeamID); err != nil {
		return adapter.Event{}, err
	}
	p, err := priority(prefix+"priority", c.Priority)
	if err != nil {
		return adapter.Event{}, err
	}
	ev.Priority = p
	if validText(c.Channel, canonical.MaxChannelBytes) {
		ev.Channel = c.Channel
	}
	ev.Tags = tags(c.Labels)
	return ev, nil
}

// customer is the conversation's contact, the author of what arrives without a sender.
func customer(c *conversation) adapter.Actor {
	if s := c.Meta.Sender; s != nil && s.ID != "" && validText(string(s.ID), canonical.MaxIDBytes) {
		return adapter.Actor{ID: string(s.ID), Kind: "customer"}
	}
	if id := string(c.ContactInbox.ContactID); id != "" && validText(id, canonical.MaxIDBytes) {
		return adapter.Actor{ID: id, Kind: "customer"}
	}
	return adapter.Actor{Kind: "system"}
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
		return "", adapter.Malformed(field, "unknown value %q; want open, resolved, pending or snoozed", truncate(s, 40))
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
		return "", adapter.Malformed(field, "unknown value %q; want low, medium, high or urgent", truncate(s, 40))
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
		return time.Time{}, false, adapter.Malformed(field, "not a timestamp: %q", truncate(s, 40))
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

// flexID is an id Chatwoot sends as a number (or, in the docs' samples, a string).
type flexID string

func (f *flexID) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexID(s)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*f = flexID(b)
	default:
		return &json.UnmarshalTypeError{Value: jsonKind(b[0]), Type: reflect.TypeFor[string]()}
	}
	return nil
}

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "value"
}

// checkID rejects an id the canonical form cannot carry (too long, control characters).
func checkID(field, id string) error {
	if id != "" && !validText(id, canonical.MaxIDBytes) {
		return adapter.Malformed(field, "must be at most %d bytes without control characters", canonical.MaxIDBytes)
	}
	return nil
}

func validText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// tags keeps the labels the canonical form can carry: invalid ones are dropped, not the event.
func tags(labels []string) []string {
	var out []string
	for _, l := range labels {
		if len(out) == canonical.MaxTags {
			break
		}
		if validText(l, canonical.MaxTagBytes) {
			out = append(out, l)
		}
	}
	return out
}

// cleanComment drops control characters other than line breaks and tabs and cuts the comment
// to the canonical limit on a character boundary: the rating counts even if its comment is odd.
func cleanComment(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t') {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) <= canonical.MaxCommentBytes {
		return s
	}
	cut := canonical.MaxCommentBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func stamp(t time.Time) string { return t.Format(time.RFC3339Nano) }

func one(ev adapter.Event) adapter.Result { return adapter.Result{Events: []adapter.Event{ev}} }

func skip(reason, detail string, args ...any) adapter.Result {
	return adapter.Result{Skipped: []adapter.Skip{{Reason: reason, Detail: fmt.Sprintf(detail, args...)}}}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
