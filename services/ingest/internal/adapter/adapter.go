// Package adapter turns one helpdesk webhook delivery into canonical ticket events. Each source
// has its own package; they all build canonical.Event values, so every event a webhook yields
// goes through the same rules (canonical.Validate) as the body of POST /v1/tenants/{t}/events.
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
	// Settings are the tenant's mapping settings for this source, from the tenants file; the
	// zero value for sources that need none (the helpdesks).
	Settings Settings
}

// Settings tell an adapter where a tenant keeps what its payloads do not name by themselves.
// Surveys need them: the ticket a response rates and its score sit in fields the tenant named
// when building the survey.
type Settings struct {
	// TicketField is the hidden field (Typeform), custom variable (SurveyMonkey) or embedded
	// data field (Qualtrics) that carries the helpdesk's ticket id.
	TicketField string
	// AgentField, optional, carries the agent the ticket was assigned to when the survey was sent.
	AgentField string
	// ScoreQuestion is the question whose answer is the score: a Typeform field ref or id, a
	// SurveyMonkey question id, a Qualtrics question id (QID).
	ScoreQuestion string
	// CommentQuestion, optional, is the question whose text answer becomes the rating's comment.
	CommentQuestion string
	// Scale is the score question's scale, one of the survey package's scale names ("1-5", ...).
	Scale string
}

// Skip is something in a delivery the adapter leaves out on purpose. Reason is a short
// snake_case word from a small fixed set (it labels a metric), Detail is for the log.
type Skip struct {
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Result is what one delivery became: zero or more events, and what was left out.
type Result struct {
	Events  []canonical.Event `json:"events"`
	Skipped []Skip            `json:"skipped,omitempty"`
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

// FormSource is an Adapter whose source posts application/x-www-form-urlencoded bodies instead
// of JSON (Qualtrics event subscriptions); the webhook route then accepts that content type.
type FormSource interface {
	Adapter
	FormEncoded()
}

// Malformed returns the error for a payload the source cannot have sent: field is the dotted
// JSON path ("ticket.id"), empty for the whole body.
func Malformed(field, reason string, args ...any) error {
	return canonical.Reject(0, field, fmt.Sprintf(reason, args...))
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

// Bool returns a pointer to b, for canonical.Event.Public.
func Bool(b bool) *bool { return &b }

// Lower is strings.ToLower after trimming spaces, for the source's enum-like strings.
func Lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// One is the Result of a delivery that became exactly one event, the common case.
func One(ev canonical.Event) Result { return Result{Events: []canonical.Event{ev}} }

// Skipped is the Result of a delivery left out on purpose: one Skip with the reason (a
// Reason* word of the source package) and a detail formatted like fmt.Sprintf.
func Skipped(reason, format string, args ...any) Result {
	return Result{Skipped: []Skip{{Reason: reason, Detail: fmt.Sprintf(format, args...)}}}
}
