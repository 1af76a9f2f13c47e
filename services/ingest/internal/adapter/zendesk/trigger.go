package zendesk

import (
	"encoding/json"
	"strings"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// triggerBody is deploy/webhooks/zendesk-trigger-body.json once Zendesk has filled in its
// placeholders. Placeholders render as text, so every value is a string; ids also accept
// JSON numbers for admins who drop the quotes.
type triggerBody struct {
	TPEvent string `json:"tp_event"`
	Ticket  *struct {
		ID          json.RawMessage `json:"id"`
		Status      string          `json:"status"`
		Priority    string          `json:"priority"`
		AssigneeID  json.RawMessage `json:"assignee_id"`
		GroupID     json.RawMessage `json:"group_id"`
		RequesterID json.RawMessage `json:"requester_id"`
		Via         string          `json:"via"`
		Tags        string          `json:"tags"`
		CreatedAt   string          `json:"created_at"`
		UpdatedAt   string          `json:"updated_at"`
	} `json:"ticket"`
	CurrentUser struct {
		ID   json.RawMessage `json:"id"`
		Role string          `json:"role"`
	} `json:"current_user"`
	Comment struct {
		ID       json.RawMessage `json:"id"`
		AuthorID json.RawMessage `json:"author_id"`
		IsPublic json.RawMessage `json:"is_public"`
	} `json:"comment"`
	Satisfaction struct {
		CurrentRating  string `json:"current_rating"`
		CurrentComment string `json:"current_comment"`
	} `json:"satisfaction"`
}

// The tp_event values of the trigger template, one per trigger (zendesk-triggers.md).
const (
	tpCreated    = "created"
	tpComment    = "comment"
	tpStatus     = "status"
	tpAssignment = "assignment"
	tpPriority   = "priority"
	tpRating     = "rating"
)

func mapTrigger(body []byte) (adapter.Result, error) {
	var b triggerBody
	if err := adapter.DecodeJSON(body, &b); err != nil {
		return adapter.Result{}, err
	}
	what := adapter.Lower(b.TPEvent)
	switch what {
	case tpCreated, tpComment, tpStatus, tpAssignment, tpPriority, tpRating:
	default:
		return adapter.Result{}, adapter.Malformed("tp_event", "unknown value %q; want one of created, comment, status, assignment, priority, rating", adapter.Truncate(b.TPEvent, 40))
	}
	t := b.Ticket
	if t == nil {
		return adapter.Result{}, adapter.Malformed("ticket", "required")
	}
	var ids ticketIDs
	var user string
	var err error
	for _, f := range []struct {
		dst   *string
		raw   json.RawMessage
		field string
	}{
		{&ids.ticket, t.ID, "ticket.id"},
		{&ids.assignee, t.AssigneeID, "ticket.assignee_id"},
		{&ids.group, t.GroupID, "ticket.group_id"},
		{&ids.requester, t.RequesterID, "ticket.requester_id"},
		{&user, b.CurrentUser.ID, "current_user.id"},
	} {
		if *f.dst, err = adapter.RawID(f.raw, f.field); err != nil {
			return adapter.Result{}, err
		}
	}
	if ids.ticket == "" {
		return adapter.Result{}, adapter.Malformed("ticket.id", "required")
	}
	// {{ticket.tags}} renders the tags separated by spaces.
	tags := strings.Fields(t.Tags)
	if hasTag(tags, mergedTag) {
		return adapter.Skipped(SkipMerged, "%s on ticket %s, closed by a merge", what, ids.ticket), nil
	}
	if adapter.Lower(t.Status) == "deleted" {
		return adapter.Skipped(SkipDeleted, "%s on deleted ticket %s", what, ids.ticket), nil
	}
	updated, err := parseTime(t.UpdatedAt, "ticket.updated_at")
	if err != nil {
		return adapter.Result{}, err
	}
	ev := canonical.Event{
		Source:     Source,
		TicketID:   ids.ticket,
		OccurredAt: updated,
		AssigneeID: ids.assignee,
		TeamID:     ids.group,
		Channel:    adapter.Channel(t.Via),
		Tags:       adapter.Tags(tags),
		Actor:      updater(user, b.CurrentUser.Role, ids.requester),
	}
	ev.Priority, _ = priority(t.Priority)
	stamp := updated.Format("2006-01-02T15:04:05.999999999Z07:00")

	switch what {
	case tpCreated:
		ev.ID, ev.Type = createdEventID(ids.ticket), "ticket_created"
		ev.Status, _ = status(t.Status)
		ev.Actor = triggerCreator(user, b.CurrentUser.Role, ids.requester, ev.Channel)
		if t.CreatedAt != "" {
			if ev.OccurredAt, err = parseTime(t.CreatedAt, "ticket.created_at"); err != nil {
				return adapter.Result{}, err
			}
		}
	case tpComment:
		if err := triggerComment(&ev, b, user, ids.requester); err != nil {
			return adapter.Result{}, err
		}
	case tpStatus:
		s, ok := status(t.Status)
		if !ok {
			return adapter.Skipped(SkipUnmapped, "ticket %s status %.40q", ids.ticket, t.Status), nil
		}
		ev.ID, ev.Type, ev.Status = adapter.EventID(Source, tpStatus, ids.ticket, s, stamp), "status_changed", s
	case tpAssignment:
		if ids.assignee == "" && ids.group == "" {
			return adapter.Skipped(SkipUnassigned, "ticket %s has no assignee or group", ids.ticket), nil
		}
		ev.ID, ev.Type = adapter.EventID(Source, tpAssignment, ids.ticket, ids.assignee, ids.group, stamp), "ticket_assigned"
	case tpPriority:
		if ev.Priority == "" {
			return adapter.Skipped(SkipUnmapped, "ticket %s priority %.40q", ids.ticket, t.Priority), nil
		}
		ev.ID, ev.Type = adapter.EventID(Source, tpPriority, ids.ticket, ev.Priority, stamp), "priority_changed"
	case tpRating:
		return triggerRating(ev, b, ids, stamp)
	}
	return adapter.One(ev), nil
}

// updater is the actor of a ticket change: {{current_user}} is the user who updated the ticket
// ("End-user", "Agent", "Admin" or a custom agent role); the system user is an automation.
func updater(user, role, requester string) canonical.Actor {
	switch {
	case user == "":
		return canonical.Actor{Kind: "system"}
	case user == systemUserID:
		return canonical.Actor{ID: user, Kind: "automation"}
	case user == requester || isEndUser(role):
		return canonical.Actor{ID: user, Kind: "customer"}
	}
	return canonical.Actor{ID: user, Kind: "agent"}
}

func isEndUser(role string) bool {
	switch strings.NewReplacer("-", "", " ", "", "_", "").Replace(adapter.Lower(role)) {
	case "enduser":
		return true
	}
	return false
}

// triggerCreator is who opened the ticket: an agent creating it for a requester opened it
// outbound; a business rule is an automation.
func triggerCreator(user, role, requester, channel string) canonical.Actor {
	if isRuleChannel(channel) {
		return canonical.Actor{Kind: "automation"}
	}
	if user == "" || user == requester {
		if requester == "" {
			return canonical.Actor{Kind: "system"}
		}
		return canonical.Actor{ID: requester, Kind: "customer"}
	}
	return updater(user, role, requester)
}

// triggerComment maps the latest comment: its author decides the kind (the system user is an
// automation, the requester a customer); {{current_user.role}} tells agents from other end
// users when the author is the user who updated the ticket.
func triggerComment(ev *canonical.Event, b triggerBody, user, requester string) error {
	id, err := adapter.RawID(b.Comment.ID, "comment.id")
	if err != nil {
		return err
	}
	if id == "" {
		return adapter.Malformed("comment.id", "required")
	}
	public, err := boolText(b.Comment.IsPublic, "comment.is_public")
	if err != nil {
		return err
	}
	author, err := adapter.RawID(b.Comment.AuthorID, "comment.author_id")
	if err != nil {
		return err
	}
	if author == "" {
		author = user
	}
	ev.ID, ev.Public = commentEventID(id), adapter.Bool(public)
	ev.Sequence = adapter.Sequence(id) // as an event payload's comment: the same id, the same order
	switch {
	case author == "":
		return adapter.Malformed("comment.author_id", "required")
	case author == systemUserID || user == systemUserID:
		ev.Type, ev.Actor = "agent_message", canonical.Actor{ID: author, Kind: "automation"}
	case author == requester || author == user && isEndUser(b.CurrentUser.Role):
		ev.Type, ev.Actor = "customer_message", canonical.Actor{ID: author, Kind: "customer"}
	default:
		ev.Type, ev.Actor = "agent_message", canonical.Actor{ID: author, Kind: "agent"}
	}
	return nil
}

// triggerRating maps {{satisfaction.current_rating}}, which renders the rating's text ("Good,
// I'm satisfied" / "Bad, I'm unsatisfied"), or the survey state when there is no rating.
func triggerRating(ev canonical.Event, b triggerBody, ids ticketIDs, stamp string) (adapter.Result, error) {
	rating := adapter.Lower(b.Satisfaction.CurrentRating)
	var score int
	switch {
	case strings.HasPrefix(rating, "good"):
		score = 5
	case strings.HasPrefix(rating, "bad"):
		score = 1
	case rating == "", rating == "offered", rating == "unoffered":
		return adapter.Skipped(SkipNoRating, "ticket %s rating %.40q", ids.ticket, rating), nil
	default:
		return adapter.Result{}, adapter.Malformed("satisfaction.current_rating", "unknown rating %q; want good or bad", adapter.Truncate(b.Satisfaction.CurrentRating, 40))
	}
	if ids.requester == "" {
		return adapter.Result{}, adapter.Malformed("ticket.requester_id", "required for a rating")
	}
	ev.ID = adapter.EventID(Source, tpRating, ids.ticket, rating, stamp)
	ev.Type = "satisfaction_rated"
	ev.Actor = canonical.Actor{ID: ids.requester, Kind: "customer"}
	ev.Satisfaction = &canonical.Satisfaction{Score: score, Scale: 2, Comment: adapter.Comment(b.Satisfaction.CurrentComment)}
	return adapter.One(ev), nil
}

// boolText reads a placeholder that renders "true" or "false" (a JSON boolean also passes).
func boolText(raw json.RawMessage, field string) (bool, error) {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil || v == nil {
		return false, adapter.Malformed(field, "required")
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch adapter.Lower(x) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, adapter.Malformed(field, "must be true or false")
}
