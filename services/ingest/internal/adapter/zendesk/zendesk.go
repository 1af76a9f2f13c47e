// Package zendesk maps Zendesk webhooks onto canonical ticket events. It accepts both ways a
// Zendesk webhook can be wired, told apart by the body's shape:
//
//   - event subscriptions: Zendesk's own "zen:event-type:ticket.*" payloads (type, id, time,
//     subject, detail, event), the id of which is the event id;
//   - trigger webhooks: the JSON body the admin writes with placeholders, in the shape of
//     deploy/webhooks/zendesk-trigger-body.json, which says what happened in "tp_event".
//
// Zendesk's event subscriptions carry no documented satisfaction payload, so ratings arrive by
// trigger; deploy/webhooks/zendesk-triggers.md says which triggers to create.
package zendesk

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "zendesk"

// Skip reasons. They label a metric, so the set is small and fixed.
const (
	// SkipUnsupported: an event type that says nothing the KPIs use (subject, tags, brand ...).
	SkipUnsupported = "unsupported_event"
	// SkipSpam: the ticket was marked as spam; it is not support work.
	SkipSpam = "spam"
	// SkipMerged: the ticket was merged into another; its closing is not a resolution.
	SkipMerged = "merged"
	// SkipDeleted: the ticket was deleted (soft or permanently), or the event concerns one.
	SkipDeleted = "deleted"
	// SkipUnassigned: an assignment change that removed the assignee; nobody was assigned.
	SkipUnassigned = "unassigned"
	// SkipUnmapped: a status or priority the canonical form has no word for (a cleared
	// priority, Zendesk's internal "deleted"/"archived" states).
	SkipUnmapped = "unmapped_value"
	// SkipNoRating: a rating trigger fired while the ticket has no rating (offered/unoffered).
	SkipNoRating = "no_rating"
	// SkipUnknownActor: a messaging message whose actor type Zendesk does not document; it is
	// left out rather than guessed to be a person (a new bot type must never count as a reply).
	SkipUnknownActor = "unknown_actor"
)

// systemUserID is the author id Zendesk gives comments and changes made by the system itself
// (triggers, automations), which are never responses.
const systemUserID = "-1"

// mergedTag is the tag Zendesk puts on a ticket it closes by merging it into another.
const mergedTag = "closed_by_merge"

// Adapter maps Zendesk deliveries. It has no configuration.
type Adapter struct{}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns the Zendesk adapter.
func New() *Adapter { return &Adapter{} }

// Source returns "zendesk".
func (*Adapter) Source() string { return Source }

// Map turns one delivery into events.
func (*Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	var probe struct {
		Type    json.RawMessage `json:"type"`
		TPEvent json.RawMessage `json:"tp_event"`
	}
	if err := adapter.DecodeJSON(d.Body, &probe); err != nil {
		return adapter.Result{}, err
	}
	switch {
	case len(probe.TPEvent) > 0 && !bytes.Equal(probe.TPEvent, []byte("null")):
		return mapTrigger(d.Body)
	case bytes.HasPrefix(bytes.TrimSpace(probe.Type), []byte(`"zen:event-type:`)):
		return mapEvent(d.Body)
	}
	return adapter.Result{}, adapter.Malformed("", "neither a Zendesk event payload (type \"zen:event-type:...\") nor a Ticketpulse trigger body (tp_event)")
}

// status maps a Zendesk status (event payloads send "HOLD", placeholders "On-hold" or
// "Hold") to the canonical word; ok is false for the states that have none.
func status(s string) (string, bool) {
	switch strings.NewReplacer("-", "_", " ", "_").Replace(adapter.Lower(s)) {
	case "new":
		return "new", true
	case "open":
		return "open", true
	case "pending":
		return "pending", true
	case "hold", "on_hold":
		return "on_hold", true
	case "solved":
		return "solved", true
	case "closed":
		return "closed", true
	}
	return "", false
}

// priority maps a Zendesk priority; a ticket may have none ("" or "-").
func priority(s string) (string, bool) {
	switch p := adapter.Lower(s); p {
	case "low", "normal", "high", "urgent":
		return p, true
	}
	return "", false
}

// commentEventID is the event id of a comment in both payload styles, so an account that wires
// both never counts a reply twice.
func commentEventID(commentID string) string {
	return adapter.EventID(Source, "comment", commentID)
}

// createdEventID is the id of a ticket's creation, the same in both payload styles.
func createdEventID(ticketID string) string {
	return adapter.EventID(Source, "created", ticketID)
}

func hasTag(tags []string, tag string) bool {
	for _, t := range tags {
		if strings.EqualFold(strings.TrimSpace(t), tag) {
			return true
		}
	}
	return false
}
