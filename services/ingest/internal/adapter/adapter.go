// Package adapter turns one helpdesk webhook delivery into canonical ticket events. Each source
// has its own package; they all build the canonical JSON form (DESIGN.md §2) with Event, so
// every event a webhook yields goes through the same validation as POST /v1/tenants/{t}/events.
package adapter

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Delivery is one webhook request whose signature has been verified.
type Delivery struct {
	Header http.Header
	Body   []byte
	// DeliveryID is the source's id of this delivery when it sends one (X-Chatwoot-Delivery,
	// X-Zammad-Delivery, webhook-id), empty otherwise. Stable across the source's retries.
	DeliveryID string
	Received   time.Time
}

// Event is the canonical JSON form of one event, as adapters build it. Enum fields take the
// canonical words: Type "ticket_created", "ticket_assigned", "agent_message", "customer_message",
// "status_changed", "priority_changed", "satisfaction_rated"; Priority "low", "normal", "high",
// "urgent"; Status "new", "open", "pending", "on_hold", "solved", "closed".
type Event struct {
	ID           string        `json:"id"`
	Source       string        `json:"source"`
	TicketID     string        `json:"ticket_id"`
	Type         string        `json:"type"`
	OccurredAt   time.Time     `json:"occurred_at"`
	Actor        Actor         `json:"actor"`
	AssigneeID   string        `json:"assignee_id,omitempty"`
	TeamID       string        `json:"team_id,omitempty"`
	Priority     string        `json:"priority,omitempty"`
	Status       string        `json:"status,omitempty"`
	Public       *bool         `json:"public,omitempty"`
	Satisfaction *Satisfaction `json:"satisfaction,omitempty"`
	Channel      string        `json:"channel,omitempty"`
	Tags         []string      `json:"tags,omitempty"`
}

// Actor is who caused an event; Kind is "agent", "customer", "bot", "automation" or "system".
// ID is required for agents and customers.
type Actor struct {
	ID   string `json:"id,omitempty"`
	Kind string `json:"kind"`
}

// Satisfaction is a rating already normalised to 1..5 (two-point good/bad is 5/1, three-point is
// 5/3/1); Scale is the source's own scale (2, 3 or 5).
type Satisfaction struct {
	Score   int    `json:"score"`
	Scale   int    `json:"scale,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// Skip is something in a delivery the adapter leaves out on purpose. Reason is a short
// snake_case word from a small fixed set (it labels a metric), Detail is for the log.
type Skip struct {
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Result is what one delivery became: zero or more events, and what was left out.
type Result struct {
	Events  []Event `json:"events"`
	Skipped []Skip  `json:"skipped,omitempty"`
}

// Adapter maps the deliveries of one source.
type Adapter interface {
	// Source is the canonical source name ("zendesk", ...), the {source} of the webhook path.
	Source() string
	// Map turns a delivery into events. A payload that is not what the source sends (malformed
	// JSON, a missing ticket id, a wrong type) is rejected with canonical.Problems naming the
	// JSON field and the reason; it must never panic, whatever the body.
	Map(d Delivery) (Result, error)
}

// Malformed returns the error for a payload the source cannot have sent: field is the dotted
// JSON path ("ticket.id"), empty for the whole body.
func Malformed(field, reason string, args ...any) error {
	return canonical.Problems{{Index: 0, Field: field, Reason: fmt.Sprintf(reason, args...)}}
}

// DecodeJSON unmarshals a delivery's body into v, rejecting malformed JSON with a Problem.
func DecodeJSON(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			return Malformed(te.Field, "must be a JSON %s, not %s", te.Type.Kind(), te.Value)
		}
		return Malformed("", "malformed JSON: %v", err)
	}
	return nil
}

// EventID derives a stable event id from the source's own identifiers, for sources that give an
// event no id of its own: the same parts (ticket id, the source's timestamp, what happened) give
// the same id on every retry of the delivery. Parts are joined unambiguously before hashing.
func EventID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Bool returns a pointer to b, for Event.Public.
func Bool(b bool) *bool { return &b }

// Encode returns the canonical JSON array of events, which canonical.Decode validates.
func Encode(events []Event) ([]byte, error) {
	b, err := json.Marshal(events)
	if err != nil {
		return nil, fmt.Errorf("encode canonical events: %w", err)
	}
	return b, nil
}

// Lower is strings.ToLower after trimming spaces, for the source's enum-like strings.
func Lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// One is the Result of a delivery that became exactly one event, the common case.
func One(ev Event) Result { return Result{Events: []Event{ev}} }

// Skipped is the Result of a delivery left out on purpose: one Skip with the reason (a
// Reason* word of the source package) and a detail formatted like fmt.Sprintf.
func Skipped(reason, format string, args ...any) Result {
	return Result{Skipped: []Skip{{Reason: reason, Detail: fmt.Sprintf(format, args...)}}}
}
