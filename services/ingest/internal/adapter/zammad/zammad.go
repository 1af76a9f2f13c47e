// Package zammad maps Zammad trigger webhooks onto canonical ticket events. It reads both the
// default payload ({"ticket": {...}, "article": {...}}, a snapshot that does not say what
// changed) and the Ticketpulse custom payload (deploy/webhooks/zammad-custom-payload.json), whose
// "event" field names what the trigger saw. See docs/helpdesks.md (How each helpdesk maps) for the rules and their sources.
package zammad

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "zammad"

// Skip reasons, the metric labels of what a delivery deliberately does not map.
const (
	// SkipMerged: the ticket was merged into another; its events belong to the target ticket.
	SkipMerged = "merged"
	// SkipDeleted: the ticket is in Zammad's "removed" state.
	SkipDeleted = "deleted"
	// SkipUnmappedState: a custom ticket state whose meaning the payload does not reveal.
	SkipUnmappedState = "unmapped_state"
	// SkipUnmappedPriority: a custom priority other than Zammad's three built-in ones.
	SkipUnmappedPriority = "unmapped_priority"
)

// What the custom payload's "event" field may say: one value per trigger of
// deploy/webhooks/zammad-triggers.md.
const (
	eventTicketCreated   = "ticket_created"
	eventArticleCreated  = "article_created"
	eventStateChanged    = "state_changed"
	eventOwnerChanged    = "owner_changed"
	eventPriorityChanged = "priority_changed"
)

var customEvents = []string{eventTicketCreated, eventArticleCreated, eventStateChanged, eventOwnerChanged, eventPriorityChanged}

// systemUserID is Zammad's built-in user 1 ("-"): the owner of unassigned tickets and the
// author of what triggers and the scheduler do.
const systemUserID = "1"

// Zammad's seeded article senders (Ticket::Article::Sender ids), for the custom payload, which
// can only reach the ticket's create_article_sender_id, not its name.
var senderByID = map[string]string{"1": "agent", "2": "customer", "3": "system"}

// Adapter maps Zammad deliveries. It has no configuration: both payload shapes are recognised
// by their content.
type Adapter struct{}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns the Zammad adapter.
func New() *Adapter { return &Adapter{} }

// Source returns "zammad".
func (*Adapter) Source() string { return Source }

type payload struct {
	// Event is set only by the Ticketpulse custom payload; the default payload has no such key.
	Event   *string  `json:"event"`
	Ticket  *ticket  `json:"ticket"`
	Article *article `json:"article"`
}

type ticket struct {
	ID                    adapter.TrimmedID   `json:"id"`
	State                 ref                 `json:"state"`
	Priority              ref                 `json:"priority"`
	OwnerID               adapter.TrimmedID   `json:"owner_id"`
	Owner                 ref                 `json:"owner"`
	GroupID               adapter.TrimmedID   `json:"group_id"`
	Group                 ref                 `json:"group"`
	CustomerID            adapter.TrimmedID   `json:"customer_id"`
	CreatedByID           adapter.TrimmedID   `json:"created_by_id"`
	UpdatedByID           adapter.TrimmedID   `json:"updated_by_id"`
	CreatedAt             string              `json:"created_at"`
	UpdatedAt             string              `json:"updated_at"`
	ArticleIDs            []adapter.TrimmedID `json:"article_ids"`
	CreateArticleSender   ref                 `json:"create_article_sender"`
	CreateArticleSenderID adapter.TrimmedID   `json:"create_article_sender_id"`
	CreateArticleType     ref                 `json:"create_article_type"`
}

type article struct {
	ID          adapter.TrimmedID `json:"id"`
	Sender      ref               `json:"sender"`
	Type        ref               `json:"type"`
	Internal    flexBool          `json:"internal"`
	CreatedAt   string            `json:"created_at"`
	CreatedByID adapter.TrimmedID `json:"created_by_id"`
	OriginByID  adapter.TrimmedID `json:"origin_by_id"`
}

// Map turns one trigger delivery into events. Event ids come from Zammad's own ids and
// timestamps, never from X-Zammad-Delivery: two triggers firing on one update send the same
// facts in two deliveries, and the ids must collapse them.
func (*Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	var p payload
	if err := adapter.DecodeJSON(d.Body, &p); err != nil {
		return adapter.Result{}, err
	}
	if p.Ticket == nil {
		return adapter.Result{}, adapter.Malformed("ticket", "required: every Zammad trigger webhook carries the ticket")
	}
	t, err := snapshotOf(p.Ticket)
	if err != nil {
		return adapter.Result{}, err
	}
	event := ""
	if p.Event != nil {
		event = *p.Event
		if !slices.Contains(customEvents, event) {
			return adapter.Result{}, adapter.Malformed("event", "unknown value %q; want one of %s", adapter.Truncate(event, 40), strings.Join(customEvents, ", "))
		}
	}
	var msg *canonical.Event
	var articleID string
	if p.Article != nil && present(p.Article.ID) {
		m, err := t.message(p.Article)
		if err != nil {
			return adapter.Result{}, err
		}
		msg, articleID = &m, string(p.Article.ID)
	} else if event == eventArticleCreated {
		return adapter.Result{}, adapter.Malformed("article.id", "required for article_created")
	}

	var res adapter.Result
	switch t.stateWord {
	case "merged":
		res.Skipped = append(res.Skipped, adapter.Skip{Reason: SkipMerged, Detail: "ticket " + t.id + " was merged into another ticket"})
		return res, nil
	case "removed":
		res.Skipped = append(res.Skipped, adapter.Skip{Reason: SkipDeleted, Detail: "ticket " + t.id + " is removed"})
		return res, nil
	}

	// The default payload is a snapshot: it proves a ticket creation (the article is the
	// ticket's first) and an article, and it shows the state as of updated_at. A state event
	// that repeats the current state is harmless, as the KPIs count transitions only.
	created := event == eventTicketCreated || event == "" && articleID != "" && articleID == t.firstArticle
	if created {
		res.Events = append(res.Events, t.created())
	}
	if msg != nil {
		res.Events = append(res.Events, *msg)
	}
	switch {
	case event == eventStateChanged || event == "" && !created:
		if ev, ok := t.stateChanged(); ok {
			res.Events = append(res.Events, ev)
		} else {
			res.Skipped = append(res.Skipped, adapter.Skip{Reason: SkipUnmappedState, Detail: "state " + strconv.Quote(adapter.Truncate(t.stateName, 64))})
		}
	case event == eventOwnerChanged:
		res.Events = append(res.Events, t.ownerChanged())
	case event == eventPriorityChanged:
		if ev, ok := t.priorityChanged(); ok {
			res.Events = append(res.Events, ev)
		} else {
			res.Skipped = append(res.Skipped, adapter.Skip{Reason: SkipUnmappedPriority, Detail: "priority " + strconv.Quote(adapter.Truncate(t.priorityName, 64))})
		}
	}
	return res, nil
}

// snapshot is the validated ticket as of the delivery.
type snapshot struct {
	id                   string
	createdAt, updatedAt time.Time
	stateName, stateWord string // Zammad's name, and its lower-case form
	status               string // canonical, "" when unmapped
	priorityName         string
	priority             string // canonical, "" when unmapped
	assignee, team       string
	customer             string
	createdBy, updatedBy string
	createSender         string // "agent", "customer", "system" or ""
	channel              string
	firstArticle         string
}

func snapshotOf(t *ticket) (*snapshot, error) {
	s := &snapshot{}
	var err error
	if s.id, err = requiredID("ticket.id", t.ID); err != nil {
		return nil, err
	}
	if s.createdAt, err = requiredTime("ticket.created_at", t.CreatedAt); err != nil {
		return nil, err
	}
	if s.updatedAt, err = requiredTime("ticket.updated_at", t.UpdatedAt); err != nil {
		return nil, err
	}
	s.stateName = t.State.name()
	s.stateWord = adapter.Lower(s.stateName)
	s.status = statusByState[s.stateWord]
	s.priorityName = t.Priority.name()
	s.priority = priorityOf(s.priorityName)

	owner := optionalID(t.OwnerID)
	if owner == "" {
		owner = optionalID(t.Owner.ID)
	}
	if owner != systemUserID {
		s.assignee = owner
	}
	s.team = optionalID(t.GroupID)
	if s.team == "" {
		s.team = optionalID(t.Group.ID)
	}
	s.customer = optionalID(t.CustomerID)
	s.createdBy = optionalID(t.CreatedByID)
	s.updatedBy = optionalID(t.UpdatedByID)
	s.createSender = adapter.Lower(t.CreateArticleSender.name())
	if s.createSender == "" {
		s.createSender = senderByID[optionalID(t.CreateArticleSenderID)]
	}
	s.channel = adapter.OptionalText(adapter.Lower(t.CreateArticleType.name()), canonical.MaxChannelBytes)
	// Article ids grow with creation, so the smallest is the ticket's first article.
	first := int64(-1)
	for _, id := range t.ArticleIDs {
		if n, err := strconv.ParseInt(string(id), 10, 64); err == nil && (first < 0 || n < first) {
			first = n
		}
	}
	if first >= 0 {
		s.firstArticle = strconv.FormatInt(first, 10)
	}
	return s, nil
}

// Zammad's built-in states. "closed" is Zammad's solved: Zammad has no separate solved state,
// and a customer reply reopens a closed ticket, as a reopen after solved would.
var statusByState = map[string]string{
	"new":              "new",
	"open":             "open",
	"pending reminder": "pending",
	"pending close":    "pending",
	"closed":           "solved",
}

// priorityOf maps Zammad's built-in priorities "1 low", "2 normal", "3 high".
func priorityOf(name string) string {
	switch adapter.Lower(name) {
	case "1 low":
		return "low"
	case "2 normal":
		return "normal"
	case "3 high":
		return "high"
	}
	return ""
}

// event is an event of this ticket with the snapshot's assignee, team and priority; the caller
// sets its id.
func (s *snapshot) event(typ string, at time.Time, actor canonical.Actor, channel string) canonical.Event {
	return canonical.Event{
		Source:     Source,
		TicketID:   s.id,
		Type:       typ,
		OccurredAt: at,
		Actor:      actor,
		AssigneeID: s.assignee,
		TeamID:     s.team,
		Priority:   s.priority,
		Channel:    channel,
	}
}

// userActor classifies a Zammad user id: the system user, the ticket's customer, or an agent.
func (s *snapshot) userActor(id string) canonical.Actor {
	switch {
	case id == "" || id == systemUserID:
		return canonical.Actor{Kind: "system"}
	case id == s.customer:
		return canonical.Actor{ID: id, Kind: "customer"}
	}
	return canonical.Actor{ID: id, Kind: "agent"}
}

func (s *snapshot) created() canonical.Event {
	var actor canonical.Actor
	switch s.createSender {
	case "customer":
		actor = s.userActor(s.customer)
		if actor.Kind != "customer" {
			actor = canonical.Actor{Kind: "system"}
		}
	case "system":
		actor = canonical.Actor{Kind: "system"}
	default:
		actor = s.userActor(s.createdBy)
	}
	ev := s.event("ticket_created", s.createdAt, actor, s.channel)
	ev.ID = adapter.EventID(Source, s.id, "created")
	ev.Status = s.status
	return ev
}

func (s *snapshot) stateChanged() (canonical.Event, bool) {
	if s.status == "" {
		return canonical.Event{}, false
	}
	ev := s.event("status_changed", s.updatedAt, s.userActor(s.updatedBy), "")
	ev.ID = adapter.EventID(Source, s.id, "state", s.stateWord, stamp(s.updatedAt))
	ev.Status = s.status
	return ev, true
}

func (s *snapshot) ownerChanged() canonical.Event {
	ev := s.event("ticket_assigned", s.updatedAt, s.userActor(s.updatedBy), "")
	ev.ID = adapter.EventID(Source, s.id, "owner", s.assignee, stamp(s.updatedAt))
	return ev
}

func (s *snapshot) priorityChanged() (canonical.Event, bool) {
	if s.priority == "" {
		return canonical.Event{}, false
	}
	ev := s.event("priority_changed", s.updatedAt, s.userActor(s.updatedBy), "")
	ev.ID = adapter.EventID(Source, s.id, "priority", s.priority, stamp(s.updatedAt))
	return ev, true
}

// message maps an article by its sender: Customer articles are customer messages, Agent
// articles agent messages (internal ones are private notes), System articles (trigger
// auto-replies and notifications) agent messages by the system, which never count as responses.
func (s *snapshot) message(a *article) (canonical.Event, error) {
	id, err := requiredID("article.id", a.ID)
	if err != nil {
		return canonical.Event{}, err
	}
	at, err := requiredTime("article.created_at", a.CreatedAt)
	if err != nil {
		return canonical.Event{}, err
	}
	createdBy := optionalID(a.CreatedByID)
	var typ string
	var actor canonical.Actor
	switch sender := adapter.Lower(a.Sender.name()); sender {
	case "customer":
		typ = "customer_message"
		// A phone article is typed in by the agent on the caller's behalf: origin_by is the
		// customer who spoke.
		who := optionalID(a.OriginByID)
		if who == "" || who == systemUserID {
			who = createdBy
		}
		if who == "" || who == systemUserID {
			who = s.customer
		}
		if who == "" || who == systemUserID {
			return canonical.Event{}, adapter.Malformed("article.created_by_id", "required: a customer article names its author")
		}
		actor = canonical.Actor{ID: who, Kind: "customer"}
	case "agent":
		typ = "agent_message"
		actor = s.userActor(createdBy)
		if actor.Kind == "customer" {
			// An agent article in the name of the customer's own account is still the
			// agent side of the conversation.
			actor.Kind = "agent"
		}
	case "system":
		typ = "agent_message"
		actor = canonical.Actor{Kind: "system"}
	default:
		return canonical.Event{}, adapter.Malformed("article.sender", "unknown value %q; want Customer, Agent or System", adapter.Truncate(a.Sender.name(), 40))
	}
	ev := s.event(typ, at, actor, adapter.OptionalText(adapter.Lower(a.Type.name()), canonical.MaxChannelBytes))
	ev.ID = adapter.EventID(Source, s.id, "article", id)
	// Article ids grow with creation (as snapshotOf relies on): they order a ticket's articles
	// of the same second.
	ev.Sequence = adapter.Sequence(id)
	ev.Public = adapter.Bool(!bool(a.Internal))
	return ev, nil
}

// stamp is the canonical text of a timestamp inside event ids.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Time layouts Zammad sends: RFC 3339 in the default payload; Ruby's Time#to_s
// ("2026-03-02 09:14:05 UTC") where the custom payload substitutes a time placeholder. "UTC" is
// literal: Go would read any other zone abbreviation as a zero offset, so those are rejected.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05 UTC", "2006-01-02 15:04:05 -0700"}

// Bounds of a plausible source timestamp; they also keep the canonical encoding valid.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

func requiredTime(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, adapter.Malformed(field, "required")
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Before(minTime) || t.After(maxTime) {
				return time.Time{}, adapter.Malformed(field, "out of range: %q", adapter.Truncate(s, 40))
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, adapter.Malformed(field, "not a timestamp: %q", adapter.Truncate(s, 40))
}

func requiredID(field string, id adapter.TrimmedID) (string, error) {
	return adapter.RequiredID(field, string(id), present(id))
}

// optionalID is the id when it is usable, else "" (optional ids are left out, not rejected).
func optionalID(id adapter.TrimmedID) string {
	if !present(id) {
		return ""
	}
	return adapter.OptionalText(string(id), canonical.MaxIDBytes)
}

// present reports whether the id holds a value; a custom payload placeholder that Zammad could
// not resolve is rendered as "#{...}" and counts as absent, as does "" (a nil value).
func present(f adapter.TrimmedID) bool { return f != "" && !strings.HasPrefix(string(f), "#{") }

// flexBool reads true/false, the strings "true"/"false" older Zammad versions substitute, and
// the "#{...}" marker of a placeholder without a value (no article in a state-change trigger).
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch s := string(b); {
	case s == "true" || s == `"true"`:
		*f = true
	case s == "false" || s == `"false"` || s == "null" || s == `""` || strings.HasPrefix(s, `"#{`):
		*f = false
	default:
		return &json.UnmarshalTypeError{Value: adapter.JSONKind(b), Type: reflect.TypeFor[bool]()}
	}
	return nil
}

// ref is an association the default payload resolves to an object ({"id": 5, "name": ...,
// ...}) and the custom payload, or the default one for state, sends as a name.
type ref struct {
	ID   adapter.TrimmedID
	Name string
}

func (r *ref) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case 'n':
		*r = ref{}
	case '"':
		return json.Unmarshal(b, &r.Name)
	case '{':
		var o struct {
			ID   adapter.TrimmedID `json:"id"`
			Name any               `json:"name"` // a string; anything else is ignored, as it is optional
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		name, _ := o.Name.(string)
		*r = ref{ID: o.ID, Name: name}
	default:
		return &json.UnmarshalTypeError{Value: adapter.JSONKind(b), Type: reflect.TypeFor[string]()}
	}
	return nil
}

func (r ref) name() string { return strings.TrimSpace(r.Name) }
