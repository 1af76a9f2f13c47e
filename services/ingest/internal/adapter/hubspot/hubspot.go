// Package hubspot maps HubSpot webhook subscriptions on tickets onto canonical ticket events.
// HubSpot posts a JSON array of events per request (up to 100), each naming its subscription
// type, the object, and for a property change the one property and its new value. A
// conversation message names only its thread and its id, so with a tenant's access token the
// adapter asks HubSpot's conversations API for the thread's ticket and the message's sender
// (package hsapi). See docs/crms.md for the mapping table and its sources.
package hubspot

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/hubspot/hsapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "hubspot"

// Skip reasons, the metric labels of what a delivery deliberately does not map.
const (
	// SkipUnmappedStage: a pipeline stage neither the tenant's statuses: nor the defaults know.
	SkipUnmappedStage = "unmapped_stage"
	// SkipUnmappedPriority: an hs_ticket_priority value other than HubSpot's four.
	SkipUnmappedPriority = "unmapped_priority"
	// SkipPipelineChanged: a ticket moved to another pipeline. The move changes its stage too,
	// and HubSpot sends that change as its own event, which carries the status.
	SkipPipelineChanged = "pipeline_changed"
	// SkipUntrackedProperty: a property change the KPIs do not use.
	SkipUntrackedProperty = "untracked_property"
	// SkipConversationMessage: a conversation.newMessage names the thread and the message but
	// neither the ticket nor who wrote it, and the tenant gave no access_token to ask HubSpot.
	SkipConversationMessage = "conversation_message"
	// SkipNoTicket: the message's thread is associated with no ticket (a chat nobody turned
	// into a ticket): there is no ticket whose response times it could count in.
	SkipNoTicket = "no_ticket"
	// SkipThreadNotFound, SkipMessageNotFound: HubSpot answers 404 for the thread or message
	// (deleted, or archived for good, since the event left).
	SkipThreadNotFound  = "thread_not_found"
	SkipMessageNotFound = "message_not_found"
	// SkipUnsupportedMessage: a message type other than MESSAGE and COMMENT (welcome messages,
	// assignment and status notices), or a message with no direction.
	SkipUnsupportedMessage = "unsupported_message"
	// SkipLookupInvalid: HubSpot's API answered something it does not document (malformed or
	// oversized JSON, a message of another thread); asking again would not help.
	SkipLookupInvalid = "lookup_invalid"
	// SkipUnsupportedSubscription: another subscription type (contacts, deals, deletions).
	SkipUnsupportedSubscription = "unsupported_subscription"
)

// ticketTypeID is the object type id of tickets in generic webhook subscriptions.
const ticketTypeID = "0-5"

// MaxEvents is the most events one request may hold; HubSpot sends at most 100.
const MaxEvents = 100

// DefaultStatuses maps the stage ids of HubSpot's default ticket pipeline: 1 New, 2 Waiting on
// contact, 3 Waiting on us, 4 Closed. Other pipelines' stages have ids of their own, which a
// tenant maps with statuses:.
var DefaultStatuses = map[string]string{"1": "new", "2": "pending", "3": "open", "4": "closed"}

// Adapter maps HubSpot deliveries with one tenant's stage mapping and API access.
type Adapter struct {
	statuses map[string]string
	// api makes the conversation lookups of every tenant; nil never looks anything up.
	api    *hsapi.Client
	access hsapi.Access
	tenant string
}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns the HubSpot adapter with the default stage mapping and no API client: it skips
// conversation messages.
func New() *Adapter { return &Adapter{} }

// NewWithAPI returns the HubSpot adapter whose tenants with an access_token have their
// conversation messages looked up through api.
func NewWithAPI(api *hsapi.Client) *Adapter { return &Adapter{api: api} }

// Source returns "hubspot".
func (*Adapter) Source() string { return Source }

// For returns the adapter for a tenant whose statuses: setting maps its pipelines' stage ids,
// and whose access_token (when set) lets it look conversation messages up.
func (a *Adapter) For(sc *tenants.SourceConfig) adapter.Adapter {
	return &Adapter{statuses: sc.Statuses, api: a.api, access: sc.HubSpotAPI, tenant: sc.Tenant}
}

// lookups reports whether conversation messages are looked up.
func (a *Adapter) lookups() bool { return a.api != nil && a.access.Configured() }

// event is one element of the array. Ids come as JSON numbers (as strings in some older
// payloads): adapter.ID takes both.
type event struct {
	EventID          adapter.ID      `json:"eventId"`
	SubscriptionType *string         `json:"subscriptionType"`
	PortalID         adapter.ID      `json:"portalId"`
	ObjectID         adapter.ID      `json:"objectId"`
	OccurredAt       json.RawMessage `json:"occurredAt"`
	PropertyName     string          `json:"propertyName"`
	PropertyValue    *string         `json:"propertyValue"`
	ChangeSource     string          `json:"changeSource"`
	SourceID         string          `json:"sourceId"`
	ObjectTypeID     string          `json:"objectTypeId"`
	MessageID        adapter.ID      `json:"messageId"`
	MessageType      string          `json:"messageType"`
}

// Map turns one request into events, looking conversation messages up without a deadline of
// the request's; the webhook calls MapContext.
func (a *Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	return a.MapContext(context.Background(), d)
}

// MapContext turns one request into events. A lookup HubSpot cannot answer now (throttled,
// failing, too slow) fails the whole delivery with an error carrying RetryAfter, so nothing
// of it is stored and HubSpot sends it again.
func (a *Adapter) MapContext(ctx context.Context, d adapter.Delivery) (adapter.Result, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(d.Body, &raw); err != nil {
		if _, ok := err.(*json.UnmarshalTypeError); ok {
			return adapter.Result{}, adapter.Malformed("", "want a JSON array of events, as HubSpot sends")
		}
		return adapter.Result{}, adapter.Malformed("", "malformed JSON: %v", err)
	}
	if len(raw) > MaxEvents {
		return adapter.Result{}, adapter.Malformed("", "%d events; HubSpot sends at most %d per request", len(raw), MaxEvents)
	}
	// Each event's outcome in its own slot, so the lookups can run at once and the result
	// still keeps the order of the array.
	parts := make([]adapter.Result, len(raw))
	var lookups []lookup
	for i, r := range raw {
		var e event
		if err := json.Unmarshal(r, &e); err != nil {
			if te, ok := err.(*json.UnmarshalTypeError); ok {
				return adapter.Result{}, canonical.Reject(i, te.Field, "must be a JSON "+te.Type.Kind().String()+", not "+te.Value)
			}
			return adapter.Result{}, canonical.Reject(i, "", "not a JSON object")
		}
		if err := a.one(i, &e, &parts[i], &lookups); err != nil {
			return adapter.Result{}, err
		}
	}
	// Every event is valid by now: a malformed delivery is refused without a single request.
	if err := a.lookUp(ctx, lookups, parts); err != nil {
		return adapter.Result{}, err
	}
	var res adapter.Result
	for _, p := range parts {
		res.Events = append(res.Events, p.Events...)
		res.Skipped = append(res.Skipped, p.Skipped...)
	}
	return res, nil
}

// one maps the event at index i into res, or adds the lookups it needs to lookups.
func (a *Adapter) one(i int, e *event, res *adapter.Result, lookups *[]lookup) error {
	if e.SubscriptionType == nil || *e.SubscriptionType == "" {
		return canonical.Reject(i, "subscriptionType", "required")
	}
	sub := *e.SubscriptionType
	// Generic webhook subscriptions name the object type apart: object.creation of type 0-5 is
	// ticket.creation.
	if rest, ok := strings.CutPrefix(sub, "object."); ok && e.ObjectTypeID == ticketTypeID {
		sub = "ticket." + rest
	}
	skip := func(reason, format string, args ...any) error {
		res.Skipped = append(res.Skipped, adapter.Skipped(reason, format, args...).Skipped...)
		return nil
	}
	switch sub {
	case "ticket.creation", "ticket.propertyChange":
	case "conversation.newMessage":
		if !a.lookups() {
			return skip(SkipConversationMessage, "thread %s message %s", adapter.Truncate(string(e.ObjectID), 24), adapter.Truncate(string(e.MessageID), 40))
		}
		return a.message(i, e, res, lookups)
	default:
		return skip(SkipUnsupportedSubscription, "subscriptionType %q", adapter.Truncate(sub, 64))
	}
	ticket, err := numericID(i, "objectId", string(e.ObjectID))
	if err != nil {
		return err
	}
	portal, err := numericID(i, "portalId", string(e.PortalID))
	if err != nil {
		return err
	}
	if _, err := numericID(i, "eventId", string(e.EventID)); err != nil {
		return err
	}
	at, err := millis(i, e.OccurredAt)
	if err != nil {
		return err
	}
	ev := canonical.Event{Source: Source, TicketID: ticket, OccurredAt: at, Actor: actor(e)}
	// HubSpot's eventId is not promised to be unique, so the id hashes what the event says;
	// a retry differs only in attemptNumber, which is left out.
	value := ""
	if e.PropertyValue != nil {
		value = *e.PropertyValue
	}
	ev.ID = adapter.EventID(portal, string(e.EventID), sub, ticket, e.PropertyName, value, strconv.FormatInt(at.UnixMilli(), 10))
	if sub == "ticket.creation" {
		ev.Type, ev.Status = "ticket_created", "new"
		res.Events = append(res.Events, ev)
		return nil
	}
	if e.PropertyName == "" {
		return canonical.Reject(i, "propertyName", "required for ticket.propertyChange")
	}
	if e.PropertyValue == nil {
		return canonical.Reject(i, "propertyValue", "required for ticket.propertyChange")
	}
	switch e.PropertyName {
	case "hs_pipeline_stage":
		st, ok := a.statuses[value]
		if !ok {
			st, ok = DefaultStatuses[value]
		}
		if !ok {
			return skip(SkipUnmappedStage, "ticket %s stage %q (map it with statuses:)", ticket, adapter.Truncate(value, 40))
		}
		ev.Type, ev.Status = "status_changed", st
	case "hubspot_owner_id":
		owner, err := adapter.Ident(strings.TrimSpace(value), "propertyValue")
		if err != nil {
			return canonical.Reject(i, "propertyValue", "owner id: not a usable id")
		}
		ev.Type, ev.AssigneeID = "ticket_assigned", owner
	case "hs_ticket_priority":
		p, ok := priorities[value]
		if !ok {
			return skip(SkipUnmappedPriority, "ticket %s priority %q", ticket, adapter.Truncate(value, 40))
		}
		ev.Type, ev.Priority = "priority_changed", p
	case "hs_pipeline":
		return skip(SkipPipelineChanged, "ticket %s moved to pipeline %q", ticket, adapter.Truncate(value, 40))
	default:
		return skip(SkipUntrackedProperty, "ticket %s property %q", ticket, adapter.Truncate(e.PropertyName, 64))
	}
	res.Events = append(res.Events, ev)
	return nil
}

// priorities are hs_ticket_priority's internal values.
var priorities = map[string]string{"LOW": "low", "MEDIUM": "normal", "HIGH": "high", "URGENT": "urgent"}

// actor reads who caused the change: sourceId "userId:<n>" is a HubSpot user, an agent;
// automation sources (workflows, the API, integrations) are automation; the rest (forms,
// e-mail, chat) is the system acting for a customer whom the event does not name.
func actor(e *event) canonical.Actor {
	if id, ok := strings.CutPrefix(e.SourceID, "userId:"); ok && id != "" && adapter.ValidText(id, canonical.MaxIDBytes) {
		return canonical.Actor{ID: id, Kind: "agent"}
	}
	switch e.ChangeSource {
	case "AUTOMATION_PLATFORM", "WORKFLOWS", "API", "INTEGRATION", "BATCH_UPDATE", "IMPORT":
		return canonical.Actor{Kind: "automation"}
	}
	return canonical.Actor{Kind: "system"}
}

// numericID reads a required HubSpot id: a positive integer.
func numericID(i int, field, s string) (string, error) {
	if s == "" {
		return "", canonical.Reject(i, field, "required")
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil || n == 0 {
		return "", canonical.Reject(i, field, "must be a positive integer, not "+strconv.Quote(adapter.Truncate(s, 24)))
	}
	return strconv.FormatUint(n, 10), nil
}

// millis reads occurredAt, unix milliseconds.
func millis(i int, raw json.RawMessage) (time.Time, error) {
	s := string(raw)
	if s == "" || s == "null" {
		return time.Time{}, canonical.Reject(i, "occurredAt", "required")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, canonical.Reject(i, "occurredAt", "must be unix milliseconds, not "+adapter.Truncate(s, 24))
	}
	t := time.UnixMilli(n).UTC()
	if !canonical.Representable(t) {
		return time.Time{}, canonical.Reject(i, "occurredAt", "outside the years 0001 to 9999")
	}
	return t, nil
}
