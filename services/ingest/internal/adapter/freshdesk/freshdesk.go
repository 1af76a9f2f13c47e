// Package freshdesk maps Freshdesk webhooks onto canonical ticket events.
//
// Freshdesk has no event subscriptions: admins add a "Trigger webhook" action to automation
// rules and write its JSON body with placeholders. This adapter reads the body of
// deploy/webhooks/freshdesk-automation-body.json, in which each rule states literally what
// happened ("tp_event") and who did it ("tp_actor", the rule's "performed by"), and carries
// Freshdesk's own {{triggered_event}} ("{status:{from:2,to:4}}", "{note_type:private}") for the
// details. docs/helpdesks.md (How each helpdesk maps) lists the rules.
package freshdesk

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "freshdesk"

// Skip reasons. They label a metric, so the set is small and fixed.
const (
	// SkipSpam: the ticket was marked as spam.
	SkipSpam = "spam"
	// SkipDeleted: the ticket was deleted.
	SkipDeleted = "deleted"
	// SkipUnassigned: an assignment rule fired while the ticket has neither agent nor group.
	SkipUnassigned = "unassigned"
	// SkipUnknownAgent: an agent's reply or note on a ticket with no agent; Freshdesk's
	// placeholders do not name a reply's author, only the ticket's agent.
	SkipUnknownAgent = "unknown_agent"
	// SkipUnmapped: a status or priority the canonical form has no word for (custom statuses).
	SkipUnmapped = "unmapped_value"
)

// The tp_event values of the body template, one per rule (freshdesk-automations.md).
const (
	tpCreated    = "created"
	tpReply      = "reply"
	tpNote       = "note"
	tpStatus     = "status"
	tpPriority   = "priority"
	tpAssignment = "assignment"
	tpRating     = "rating"
	tpSpam       = "spam"
	tpDeleted    = "deleted"
)

// body is the template once Freshdesk has filled in its placeholders.
type body struct {
	TPEvent        string `json:"tp_event"`
	TPActor        string `json:"tp_actor"`
	TriggeredEvent string `json:"triggered_event"`
	Ticket         *struct {
		ID             json.RawMessage `json:"id"`
		Status         string          `json:"status"`
		Priority       string          `json:"priority"`
		AgentEmail     string          `json:"agent_email"`
		GroupName      string          `json:"group_name"`
		RequesterID    json.RawMessage `json:"requester_id"`
		RequesterEmail string          `json:"requester_email"`
		Source         string          `json:"source"`
		Tags           string          `json:"tags"`
		CreatedOn      string          `json:"created_on"`
		ModifiedOn     string          `json:"modified_on"`
	} `json:"ticket"`
}

// Adapter maps Freshdesk deliveries. It has no configuration.
type Adapter struct{}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns the Freshdesk adapter.
func New() *Adapter { return &Adapter{} }

// Source returns "freshdesk".
func (*Adapter) Source() string { return Source }

// ticket is the checked part of the body the event builders share.
type ticket struct {
	id, agent, group, customer string
	modified                   time.Time
	change                     change
	actor                      string
}

// Map turns one delivery into events.
func (*Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	var b body
	if err := adapter.DecodeJSON(d.Body, &b); err != nil {
		return adapter.Result{}, err
	}
	what := adapter.Lower(b.TPEvent)
	switch what {
	case tpCreated, tpReply, tpNote, tpStatus, tpPriority, tpAssignment, tpRating, tpSpam, tpDeleted:
	case "":
		return adapter.Result{}, adapter.Malformed("tp_event", "required: the body is not the Ticketpulse automation template")
	default:
		return adapter.Result{}, adapter.Malformed("tp_event", "unknown value %q; want one of created, reply, note, status, priority, assignment, rating, spam, deleted", adapter.Truncate(b.TPEvent, 40))
	}
	bt := b.Ticket
	if bt == nil {
		return adapter.Result{}, adapter.Malformed("ticket", "required")
	}
	var t ticket
	var err error
	if t.id, err = adapter.RawID(bt.ID, "ticket.id"); err != nil {
		return adapter.Result{}, err
	}
	if t.id == "" {
		return adapter.Result{}, adapter.Malformed("ticket.id", "required")
	}
	switch what {
	case tpSpam:
		return adapter.Skipped(SkipSpam, "ticket %s marked as spam", t.id), nil
	case tpDeleted:
		return adapter.Skipped(SkipDeleted, "ticket %s deleted", t.id), nil
	}
	if t.agent, err = adapter.Ident(strings.TrimSpace(bt.AgentEmail), "ticket.agent_email"); err != nil {
		return adapter.Result{}, err
	}
	if t.group, err = adapter.Ident(strings.TrimSpace(bt.GroupName), "ticket.group_name"); err != nil {
		return adapter.Result{}, err
	}
	if t.customer, err = adapter.RawID(bt.RequesterID, "ticket.requester_id"); err != nil {
		return adapter.Result{}, err
	}
	if t.customer == "" {
		if t.customer, err = adapter.Ident(strings.TrimSpace(bt.RequesterEmail), "ticket.requester_email"); err != nil {
			return adapter.Result{}, err
		}
	}
	if t.change, err = parseChange(b.TriggeredEvent); err != nil {
		return adapter.Result{}, err
	}
	switch t.actor = adapter.Lower(b.TPActor); t.actor {
	case "", "agent", "customer", "system", "bot":
	default:
		return adapter.Result{}, adapter.Malformed("tp_actor", "unknown value %q; want agent, customer, system or bot", adapter.Truncate(b.TPActor, 40))
	}
	if t.modified, err = parseTime(bt.ModifiedOn, "ticket.modified_on"); err != nil {
		return adapter.Result{}, err
	}
	channel := adapter.Channel(bt.Source)
	ev := canonical.Event{
		Source:     Source,
		TicketID:   t.id,
		OccurredAt: t.modified,
		AssigneeID: t.agent,
		TeamID:     t.group,
		Channel:    channel,
		Tags:       adapter.Tags(strings.Split(bt.Tags, ",")),
		Actor:      t.changer(),
	}
	ev.Priority, _ = priority(t.change.to("priority"), bt.Priority)
	// Freshdesk gives a reply or note no id a placeholder can reach, so an event is named by
	// what happened to which ticket at which update: all of it is the same on every retry.
	ev.ID = adapter.EventID(Source, what, t.id, t.actor, strings.TrimSpace(b.TriggeredEvent), t.modified.Format(time.RFC3339Nano))

	switch what {
	case tpCreated:
		ev.ID, ev.Type = adapter.EventID(Source, tpCreated, t.id), "ticket_created"
		ev.Status, _ = status("", bt.Status)
		if ev.Actor, err = t.creator(channel); err != nil {
			return adapter.Result{}, err
		}
		// created_on is the ticket's own creation instant; a creation rule may fire after a
		// first update, so modified_on is only the fallback.
		if strings.TrimSpace(bt.CreatedOn) != "" {
			if ev.OccurredAt, err = parseTime(bt.CreatedOn, "ticket.created_on"); err != nil {
				return adapter.Result{}, err
			}
		}
	case tpReply, tpNote:
		public := true
		if what == tpNote {
			switch adapter.Lower(t.change.value("note_type")) {
			case "public":
			case "private":
				public = false
			default:
				return adapter.Result{}, adapter.Malformed("triggered_event", "a note rule sends {note_type:public} or {note_type:private}, not %q", adapter.Truncate(b.TriggeredEvent, 60))
			}
		}
		ev.Public = adapter.Bool(public)
		switch t.actor {
		case "customer":
			if t.customer == "" {
				return adapter.Result{}, adapter.Malformed("ticket.requester_id", "required for a customer's reply")
			}
			ev.Type = "customer_message"
		case "agent", "":
			if t.agent == "" {
				return adapter.Skipped(SkipUnknownAgent, "%s on ticket %s, which has no agent", what, t.id), nil
			}
			ev.Type = "agent_message"
			ev.Actor = canonical.Actor{ID: t.agent, Kind: "agent"}
		default:
			ev.Type = "agent_message"
		}
	case tpStatus:
		s, ok := status(t.change.to("status"), bt.Status)
		if !ok {
			return adapter.Skipped(SkipUnmapped, "ticket %s status %.40q", t.id, bt.Status), nil
		}
		ev.Type, ev.Status = "status_changed", s
	case tpPriority:
		if ev.Priority == "" {
			return adapter.Skipped(SkipUnmapped, "ticket %s priority %.40q", t.id, bt.Priority), nil
		}
		ev.Type = "priority_changed"
	case tpAssignment:
		if t.agent == "" && t.group == "" {
			return adapter.Skipped(SkipUnassigned, "ticket %s has no agent or group", t.id), nil
		}
		ev.Type = "ticket_assigned"
	case tpRating:
		sat, err := rating(t.change.value("customer_feedback"))
		if err != nil {
			return adapter.Result{}, err
		}
		if t.customer == "" {
			return adapter.Result{}, adapter.Malformed("ticket.requester_id", "required for a rating")
		}
		ev.Type, ev.Satisfaction = "satisfaction_rated", sat
		ev.Actor = canonical.Actor{ID: t.customer, Kind: "customer"}
	}
	return adapter.One(ev), nil
}

// changer is the actor a rule's "performed by" names. Freshdesk's placeholders do not say which
// agent acted, so an agent is taken to be the ticket's agent (see docs/helpdesks.md).
func (t ticket) changer() canonical.Actor {
	switch t.actor {
	case "customer":
		if t.customer != "" {
			return canonical.Actor{ID: t.customer, Kind: "customer"}
		}
	case "agent":
		if t.agent != "" {
			return canonical.Actor{ID: t.agent, Kind: "agent"}
		}
	case "bot":
		return canonical.Actor{Kind: "bot"}
	case "system":
		return canonical.Actor{Kind: "automation"}
	}
	return canonical.Actor{Kind: "system"}
}

// creator is who opened the ticket: the requester, unless an agent sent it (outbound email,
// or a creation rule that says tp_actor agent), which has no first-response sample.
func (t ticket) creator(channel string) (canonical.Actor, error) {
	if t.actor == "agent" || channel == "outbound email" {
		if t.agent == "" {
			return canonical.Actor{Kind: "system"}, nil
		}
		return canonical.Actor{ID: t.agent, Kind: "agent"}, nil
	}
	if t.actor == "system" || t.actor == "bot" {
		return t.changer(), nil
	}
	if t.customer == "" {
		return canonical.Actor{}, adapter.Malformed("ticket.requester_id", "required for a ticket a customer created")
	}
	return canonical.Actor{ID: t.customer, Kind: "customer"}, nil
}

// status maps a Freshdesk status: the numeric code of {{triggered_event}} when there is one,
// else the name {{ticket.status}} renders. Custom statuses have neither a fixed code nor name.
func status(code, name string) (string, bool) {
	switch strings.TrimSpace(code) {
	case "2":
		return "open", true
	case "3", "6":
		return "pending", true
	case "4":
		return "solved", true
	case "5":
		return "closed", true
	case "7":
		return "on_hold", true
	}
	switch adapter.Lower(name) {
	case "open":
		return "open", true
	case "pending", "waiting on customer":
		return "pending", true
	case "resolved":
		return "solved", true
	case "closed":
		return "closed", true
	case "waiting on third party":
		return "on_hold", true
	}
	return "", false
}

// priority maps a priority code (1 low .. 4 urgent) or its name; Medium is normal.
func priority(code, name string) (string, bool) {
	switch strings.TrimSpace(code) {
	case "1":
		return "low", true
	case "2":
		return "normal", true
	case "3":
		return "high", true
	case "4":
		return "urgent", true
	}
	switch adapter.Lower(name) {
	case "low":
		return "low", true
	case "medium":
		return "normal", true
	case "high":
		return "high", true
	case "urgent":
		return "urgent", true
	}
	return "", false
}

// rating maps a Freshdesk survey rating code onto 1..5. The classic survey answers on three
// points (103 happy, 100 neutral, -103 unhappy: 5/3/1 on scale 3); custom surveys add
// 102/101 and -101/-102 between them, mapped 4/4 and 2/2 on scale 5 so that CSAT % (>= 4)
// counts every "happy" answer as satisfied.
func rating(code string) (*canonical.Satisfaction, error) {
	n, err := strconv.Atoi(strings.TrimSpace(code))
	if err != nil {
		return nil, adapter.Malformed("triggered_event", "a rating rule sends {customer_feedback:<rating>}, not %q", adapter.Truncate(code, 40))
	}
	switch n {
	case 103:
		return &canonical.Satisfaction{Score: 5, Scale: 3}, nil
	case 100:
		return &canonical.Satisfaction{Score: 3, Scale: 3}, nil
	case -103:
		return &canonical.Satisfaction{Score: 1, Scale: 3}, nil
	case 102, 101:
		return &canonical.Satisfaction{Score: 4, Scale: 5}, nil
	case -101, -102:
		return &canonical.Satisfaction{Score: 2, Scale: 5}, nil
	}
	return nil, adapter.Malformed("triggered_event", "unknown rating %d; want 103, 102, 101, 100, -101, -102 or -103", n)
}

// Layouts of the timestamps the template's placeholders render: {{ticket.created_on}} and
// {{ticket.modified_on}} print a Ruby time ("2026-11-20 09:00:00 UTC", or with the account's
// offset "2026-11-20 14:30:00 +0530"); RFC 3339 is accepted too.
var timeLayouts = []string{
	"2006-01-02 15:04:05 UTC",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05 -07:00",
	time.RFC3339Nano,
}
