package zendesk

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// eventPayload is the part of a Zendesk event-subscription payload the KPIs need
// (developer.zendesk.com/api-reference/webhooks/event-types/ticket-events).
type eventPayload struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Time    string          `json:"time"`
	Subject string          `json:"subject"`
	Detail  ticketDetail    `json:"detail"`
	Event   json.RawMessage `json:"event"`
}

// ticketDetail is the ticket as of the event. Ids are strings in the documented examples;
// rawID also takes the integers Zendesk's other event shapes use.
type ticketDetail struct {
	ID          json.RawMessage `json:"id"`
	ActorID     json.RawMessage `json:"actor_id"`
	AssigneeID  json.RawMessage `json:"assignee_id"`
	GroupID     json.RawMessage `json:"group_id"`
	RequesterID json.RawMessage `json:"requester_id"`
	SubmitterID json.RawMessage `json:"submitter_id"`
	Status      string          `json:"status"`
	Priority    string          `json:"priority"`
	Tags        []string        `json:"tags"`
	CreatedAt   string          `json:"created_at"`
	Via         struct {
		Channel json.RawMessage `json:"channel"`
	} `json:"via"`
}

// eventChange is the event object: current/previous for the *_changed events, comment for
// comment_added.
type eventChange struct {
	Current json.RawMessage `json:"current"`
	Comment *struct {
		ID       json.RawMessage `json:"id"`
		IsPublic *bool           `json:"is_public"`
		Author   struct {
			ID      json.RawMessage `json:"id"`
			IsStaff bool            `json:"is_staff"`
		} `json:"author"`
	} `json:"comment"`
}

// ticket ids of the detail the event builders share.
type ticketIDs struct {
	ticket, actor, assignee, group, requester, submitter string
}

func mapEvent(body []byte) (adapter.Result, error) {
	var p eventPayload
	if err := adapter.DecodeJSON(body, &p); err != nil {
		return adapter.Result{}, err
	}
	kind := strings.TrimPrefix(strings.TrimSpace(p.Type), "zen:event-type:")
	if strings.HasPrefix(kind, "messaging_ticket.") {
		ids, err := detailIDs(p)
		if err != nil {
			return adapter.Result{}, err
		}
		return mapMessaging(p, kind, ids)
	}
	if !strings.HasPrefix(kind, "ticket.") {
		return adapter.Skipped(SkipUnsupported, "%.80s is not a ticket event", kind), nil
	}
	ids, err := detailIDs(p)
	if err != nil {
		return adapter.Result{}, err
	}
	switch kind {
	case "ticket.marked_as_spam":
		return adapter.Skipped(SkipSpam, "ticket %s marked as spam", ids.ticket), nil
	case "ticket.merged":
		return adapter.Skipped(SkipMerged, "ticket %s merged", ids.ticket), nil
	case "ticket.soft_deleted", "ticket.permanently_deleted":
		return adapter.Skipped(SkipDeleted, "ticket %s deleted", ids.ticket), nil
	}
	if adapter.Lower(p.Detail.Status) == "deleted" {
		return adapter.Skipped(SkipDeleted, "%s on deleted ticket %s", kind, ids.ticket), nil
	}
	if hasTag(p.Detail.Tags, mergedTag) {
		return adapter.Skipped(SkipMerged, "%s on ticket %s, closed by a merge", kind, ids.ticket), nil
	}
	eventID, err := adapter.RequiredIdent(p.ID, "id")
	if err != nil {
		return adapter.Result{}, err
	}
	at, err := parseTime(p.Time, "time")
	if err != nil {
		return adapter.Result{}, err
	}
	var change eventChange
	if len(p.Event) > 0 {
		if err := adapter.DecodeJSON(p.Event, &change); err != nil {
			return adapter.Result{}, prefixed(err, "event")
		}
	}
	ev := canonical.Event{
		ID:         eventID,
		Source:     Source,
		TicketID:   ids.ticket,
		OccurredAt: at,
		AssigneeID: ids.assignee,
		TeamID:     ids.group,
		Tags:       adapter.Tags(p.Detail.Tags),
		Actor:      detailActor(ids),
	}
	ev.Priority, _ = priority(p.Detail.Priority)
	ev.Channel = adapter.Channel(stringOf(p.Detail.Via.Channel))

	switch kind {
	case "ticket.created":
		ev.ID = createdEventID(ids.ticket)
		ev.Type = "ticket_created"
		ev.Status, _ = status(p.Detail.Status)
		ev.Actor = creator(ids, ev.Channel)
		// The detail's created_at is the ticket's own creation instant, which first response
		// time is measured from; the event time is when Zendesk published it.
		if p.Detail.CreatedAt != "" {
			if ev.OccurredAt, err = parseTime(p.Detail.CreatedAt, "detail.created_at"); err != nil {
				return adapter.Result{}, err
			}
		}
	case "ticket.comment_added":
		if err := commentEvent(&ev, change); err != nil {
			return adapter.Result{}, err
		}
	case "ticket.status_changed":
		cur := stringOf(change.Current)
		if adapter.Lower(cur) == "deleted" {
			return adapter.Skipped(SkipDeleted, "ticket %s deleted", ids.ticket), nil
		}
		s, ok := status(cur)
		if !ok {
			return adapter.Skipped(SkipUnmapped, "ticket %s status %.40q", ids.ticket, cur), nil
		}
		ev.Type, ev.Status = "status_changed", s
	case "ticket.priority_changed":
		cur := stringOf(change.Current)
		pr, ok := priority(cur)
		if !ok {
			return adapter.Skipped(SkipUnmapped, "ticket %s priority %.40q", ids.ticket, cur), nil
		}
		ev.Type, ev.Priority = "priority_changed", pr
	case "ticket.agent_assignment_changed":
		cur, err := adapter.RawID(change.Current, "event.current")
		if err != nil {
			return adapter.Result{}, err
		}
		if cur == "" {
			return adapter.Skipped(SkipUnassigned, "ticket %s unassigned", ids.ticket), nil
		}
		ev.Type, ev.AssigneeID = "ticket_assigned", cur
	case "ticket.group_assignment_changed":
		cur, err := adapter.RawID(change.Current, "event.current")
		if err != nil {
			return adapter.Result{}, err
		}
		if cur == "" {
			return adapter.Skipped(SkipUnassigned, "ticket %s removed from its group", ids.ticket), nil
		}
		ev.Type, ev.TeamID = "ticket_assigned", cur
	default:
		return adapter.Skipped(SkipUnsupported, "%.80s", kind), nil
	}
	return adapter.One(ev), nil
}

// detailIDs reads and checks the detail's ids; the ticket id may also come from the subject
// ("zen:ticket:5158").
func detailIDs(p eventPayload) (ticketIDs, error) {
	var ids ticketIDs
	var err error
	d := p.Detail
	for _, f := range []struct {
		dst   *string
		raw   json.RawMessage
		field string
	}{
		{&ids.ticket, d.ID, "detail.id"},
		{&ids.actor, d.ActorID, "detail.actor_id"},
		{&ids.assignee, d.AssigneeID, "detail.assignee_id"},
		{&ids.group, d.GroupID, "detail.group_id"},
		{&ids.requester, d.RequesterID, "detail.requester_id"},
		{&ids.submitter, d.SubmitterID, "detail.submitter_id"},
	} {
		if *f.dst, err = adapter.RawID(f.raw, f.field); err != nil {
			return ids, err
		}
	}
	if ids.ticket == "" {
		if id, ok := strings.CutPrefix(strings.TrimSpace(p.Subject), "zen:ticket:"); ok {
			if ids.ticket, err = adapter.Ident(id, "subject"); err != nil {
				return ids, err
			}
		}
	}
	if ids.ticket == "" {
		return ids, adapter.Malformed("detail.id", "required")
	}
	return ids, nil
}

// detailActor is who made a change: the system user is an automation, the requester is the
// customer, anyone else is an agent; no actor at all is the system.
func detailActor(ids ticketIDs) canonical.Actor {
	switch {
	case ids.actor == "":
		return canonical.Actor{Kind: "system"}
	case ids.actor == systemUserID:
		return canonical.Actor{ID: ids.actor, Kind: "automation"}
	case ids.actor == ids.requester:
		return canonical.Actor{ID: ids.actor, Kind: "customer"}
	}
	return canonical.Actor{ID: ids.actor, Kind: "agent"}
}

// creator is who opened the ticket: the requester submitting it is the customer; an agent
// submitting it for someone else opened it outbound (DESIGN.md §5: no first-response sample).
func creator(ids ticketIDs, channel string) canonical.Actor {
	if isRuleChannel(channel) {
		return canonical.Actor{Kind: "automation"}
	}
	submitter := ids.submitter
	if submitter == "" {
		submitter = ids.actor
	}
	switch {
	case submitter == systemUserID:
		return canonical.Actor{ID: submitter, Kind: "automation"}
	case submitter != "" && submitter != ids.requester:
		return canonical.Actor{ID: submitter, Kind: "agent"}
	case ids.requester != "":
		return canonical.Actor{ID: ids.requester, Kind: "customer"}
	}
	return canonical.Actor{Kind: "system"}
}

// isRuleChannel reports the via channels of business rules (Zendesk's via type "rule"; the
// placeholder renders its name) so their work never counts as a person's.
func isRuleChannel(channel string) bool {
	switch channel {
	case "rule", "trigger", "automation":
		return true
	}
	return false
}

// commentEvent fills ev from a comment_added event: the system user's comments are automation,
// staff comments agent messages (private ones are notes), the rest customer messages.
func commentEvent(ev *canonical.Event, change eventChange) error {
	c := change.Comment
	if c == nil {
		return adapter.Malformed("event.comment", "required for ticket.comment_added")
	}
	id, err := adapter.RawID(c.ID, "event.comment.id")
	if err != nil {
		return err
	}
	if id == "" {
		return adapter.Malformed("event.comment.id", "required")
	}
	if c.IsPublic == nil {
		return adapter.Malformed("event.comment.is_public", "required")
	}
	author, err := adapter.RawID(c.Author.ID, "event.comment.author.id")
	if err != nil {
		return err
	}
	ev.ID = commentEventID(id)
	// Comment ids grow with every update of the account, so they order a ticket's comments
	// of the same second; both payload styles carry the same id.
	ev.Sequence = adapter.Sequence(id)
	ev.Public = adapter.Bool(*c.IsPublic)
	switch {
	case author == systemUserID:
		ev.Type, ev.Actor = "agent_message", canonical.Actor{ID: author, Kind: "automation"}
	case author == "":
		return adapter.Malformed("event.comment.author.id", "required")
	case c.Author.IsStaff:
		ev.Type, ev.Actor = "agent_message", canonical.Actor{ID: author, Kind: "agent"}
	default:
		ev.Type, ev.Actor = "customer_message", canonical.Actor{ID: author, Kind: "customer"}
	}
	return nil
}

// stringOf returns a JSON string's value, "" for anything else (null, numbers, objects).
func stringOf(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// prefixed puts the path of a nested object in front of the fields of its problems.
func prefixed(err error, prefix string) error {
	var probs canonical.Problems
	if !errors.As(err, &probs) {
		return err
	}
	for i := range probs.List {
		probs.List[i].Field = strings.TrimSuffix(prefix+"."+probs.List[i].Field, ".")
	}
	return probs
}
