package intercom

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// The ticket topics mapped like conversations (webhook models 2.9 and later, "Ticket topics").
// ticket.contact.attached/detached and ticket.attribute.updated carry nothing the KPIs use
// and are skipped with the other unsupported topics.
var ticketTopics = map[string]bool{
	"ticket.created":         true,
	"ticket.note.created":    true,
	"ticket.state.updated":   true,
	"ticket.admin.assigned":  true,
	"ticket.team.assigned":   true,
	"ticket.admin.replied":   true,
	"ticket.contact.replied": true,
}

// ticketState is a ticket state: a string before API 2.11, an object whose category is the
// state's kind from 2.11 on (custom states keep one of the four categories).
type ticketState struct {
	Category string
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *ticketState) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		s.Category = ""
		return nil
	case b[0] == '"':
		return json.Unmarshal(b, &s.Category)
	case b[0] == '{':
		var o struct {
			Category string `json:"category"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		s.Category = o.Category
		return nil
	}
	return &json.UnmarshalTypeError{Value: adapter.JSONKind(b), Type: reflect.TypeFor[string]()}
}

// ticketStatusOf maps the ticket state categories: submitted is a new request nobody has
// started on, in_progress is open, waiting_on_customer is pending, resolved is solved.
func ticketStatusOf(state string) (string, bool) {
	switch adapter.Lower(state) {
	case "submitted":
		return "new", true
	case "in_progress":
		return "open", true
	case "waiting_on_customer":
		return "pending", true
	case "resolved":
		return "solved", true
	}
	return "", false
}

// ticket maps a ticket notification. Customer tickets are mapped like conversations: the
// ticket's parts one by one, plus the ticket's creation; a state or assignment topic whose
// item carries no part falls back to the ticket as it is now, identified by the change it
// shows. Back-office and tracker tickets are internal work and skipped whole.
func (m *mapper) ticket() error {
	c := m.c
	category := c.Category
	if category == "" && c.TicketType != nil {
		category = c.TicketType.Category
	}
	if category != "" && adapter.Lower(category) != "customer" {
		m.skip(SkipInternalTicket, "ticket "+m.cid+" of category "+strconv.Quote(adapter.Truncate(category, 40)))
		return nil
	}
	if m.n.Topic == "ticket.created" {
		if err := m.ticketCreated(); err != nil {
			return err
		}
	}
	var parts []part
	if c.TicketParts != nil {
		parts = c.TicketParts.Parts
	}
	for i := range parts {
		if err := m.part("data.item.ticket_parts.ticket_parts["+strconv.Itoa(i)+"]", &parts[i], true); err != nil {
			return err
		}
	}
	if len(m.res.Events) > 0 || len(m.res.Skipped) > 0 {
		return nil
	}
	switch m.n.Topic {
	case "ticket.state.updated":
		return m.ticketStateSnapshot()
	case "ticket.admin.assigned", "ticket.team.assigned":
		return m.ticketAssignmentSnapshot()
	}
	m.skip(SkipNoParts, "topic "+m.n.Topic+" without ticket parts")
	return nil
}

// ticketCreated is the ticket's creation. The notification does not say who created it, so
// the ticket's first contact, whose request it is, opens it; without one it is the system's.
func (m *mapper) ticketCreated() error {
	at, err := requiredTime("data.item.created_at", m.c.CreatedAt)
	if err != nil {
		return err
	}
	actor := canonical.Actor{Kind: "system"}
	if m.c.Contacts != nil && len(m.c.Contacts.Contacts) > 0 {
		if id := optionalID(m.c.Contacts.Contacts[0].ID); id != "" {
			actor = canonical.Actor{ID: id, Kind: "customer"}
		}
	}
	ev := m.event("ticket_created", at, actor)
	ev.ID = adapter.EventID(Source, m.cid, "created")
	if st := m.c.TicketState.Category; st != "" {
		ev.Status, _ = ticketStatusOf(st)
	}
	m.res.Events = append(m.res.Events, ev)
	return nil
}

// ticketStateSnapshot is a state change read from the ticket itself, at its updated_at.
func (m *mapper) ticketStateSnapshot() error {
	st := m.c.TicketState.Category
	if st == "" {
		return adapter.Malformed("data.item.ticket_state", "required for %s without ticket parts", m.n.Topic)
	}
	status, ok := ticketStatusOf(st)
	if !ok {
		m.skip(SkipUnmappedState, "ticket "+m.cid+" state "+strconv.Quote(adapter.Truncate(st, 40)))
		return nil
	}
	at, err := requiredTime("data.item.updated_at", m.c.UpdatedAt)
	if err != nil {
		return err
	}
	ev := m.event("status_changed", at, canonical.Actor{Kind: "system"})
	ev.ID = adapter.EventID(Source, m.cid, "state", st, strconv.FormatInt(m.c.UpdatedAt, 10))
	ev.Status = status
	m.res.Events = append(m.res.Events, ev)
	return nil
}

// ticketAssignmentSnapshot is an assignment read from the ticket's assignee fields.
func (m *mapper) ticketAssignmentSnapshot() error {
	at, err := requiredTime("data.item.updated_at", m.c.UpdatedAt)
	if err != nil {
		return err
	}
	ev := m.event("ticket_assigned", at, canonical.Actor{Kind: "system"})
	ev.ID = adapter.EventID(Source, m.cid, "assignment", ev.AssigneeID, ev.TeamID, strconv.FormatInt(m.c.UpdatedAt, 10))
	m.res.Events = append(m.res.Events, ev)
	return nil
}
