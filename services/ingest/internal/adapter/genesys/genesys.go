// Package genesys maps Genesys Cloud conversation detail events onto the canonical call events.
// A Process Automation trigger on the topic invokes a workflow whose Data Action posts the event
// here, in the notification's envelope. Each delivery is one event of a
// v2.detail.events.conversation.{id}.* topic: acd.start (the call entered a queue), acd.end (it
// left the queue, answered or abandoned), user.end (the agent's part of it ended, with the
// talk and hold) and acw (the agent's after-call work, with the wrap-up). See docs/contactcentres.md for the mapping table and what is uncertain.
package genesys

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "genesys"

// Skip reasons, the metric labels of what a delivery deliberately does not map.
const (
	// SkipUnsupportedTopic: a topic that is no step of a call here (customer.start, user.start,
	// attributes, flow.*, ...).
	SkipUnsupportedTopic = "unsupported_topic"
	// SkipNotVoice: a conversation of another media type (chat, email, message, callback).
	SkipNotVoice = "not_voice"
	// SkipAfterCallWork: an acw event (AfterCallWorkEvent) without a wrapupDurationMs: the
	// after-call work tells nothing to count.
	SkipAfterCallWork = "after_call_work"
	// SkipUnmappedOutcome: an acd.end whose outcome is neither an answer nor an abandon
	// (FLOW_OUT: the flow took the call out of the queue; UNKNOWN).
	SkipUnmappedOutcome = "unmapped_outcome"
)

const topicPrefix = "v2.detail.events.conversation."

// Adapter maps Genesys Cloud notifications. It needs no tenant settings.
type Adapter struct{}

var _ adapter.Adapter = Adapter{}

// New returns the Genesys Cloud adapter.
func New() Adapter { return Adapter{} }

// Source returns "genesys".
func (Adapter) Source() string { return Source }

type notification struct {
	TopicName *string         `json:"topicName"`
	EventBody json.RawMessage `json:"eventBody"`
}

// body holds the fields of the AcdStartEvent, AcdEndEvent and UserEndEvent this adapter reads.
type body struct {
	EventID               string          `json:"eventId"`
	EventTime             json.RawMessage `json:"eventTime"`
	ConversationID        string          `json:"conversationId"`
	MediaType             string          `json:"mediaType"`
	Direction             string          `json:"direction"`
	QueueID               string          `json:"queueId"`
	UserID                string          `json:"userId"`
	AcdOutcome            string          `json:"acdOutcome"`
	AnsweredUserID        string          `json:"answeredUserId"`
	ConnectedDurationMs   *float64        `json:"connectedDurationMs"`
	InteractingDurationMs *float64        `json:"interactingDurationMs"`
	HeldDurationMs        *float64        `json:"heldDurationMs"`
	WrapupDurationMs      *float64        `json:"wrapupDurationMs"`
}

// Map turns one notification into at most one call event.
func (Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	var n notification
	if err := adapter.DecodeJSON(d.Body, &n); err != nil {
		return adapter.Result{}, err
	}
	if n.TopicName == nil || strings.TrimSpace(*n.TopicName) == "" {
		return adapter.Result{}, adapter.Malformed("topicName", "required")
	}
	topic := *n.TopicName
	rest, ok := strings.CutPrefix(topic, topicPrefix)
	if !ok {
		return adapter.Skipped(SkipUnsupportedTopic, "topic %q", adapter.Truncate(topic, 120)), nil
	}
	_, kind, ok := strings.Cut(rest, ".")
	if !ok {
		return adapter.Result{}, adapter.Malformed("topicName", "want v2.detail.events.conversation.{id}.{event}, not %q", adapter.Truncate(topic, 120))
	}
	var typ string
	switch kind {
	case "acd.start":
		typ = "call_offered"
	case "acd.end":
		typ = "call_answered" // or call_abandoned, by the outcome
	case "user.end":
		typ = "call_ended"
	case "acw":
		// The wrap-up, after user.end: a second call_ended that gives only the wrap-up, which
		// kpi adds to the talk and hold of user.end's (docs/kpis.md, call_handle_time).
		typ = "call_ended"
	default:
		return adapter.Skipped(SkipUnsupportedTopic, "topic %q", adapter.Truncate(topic, 120)), nil
	}
	if len(n.EventBody) == 0 || string(n.EventBody) == "null" {
		return adapter.Result{}, adapter.Malformed("eventBody", "required")
	}
	var b body
	if err := json.Unmarshal(n.EventBody, &b); err != nil {
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			field, k := "eventBody", te.Type.Kind().String()
			if te.Field != "" {
				field += "." + te.Field
			}
			if k == "struct" {
				k = "object"
			}
			return adapter.Result{}, adapter.Malformed(field, "must be a JSON %s, not %s", k, te.Value)
		}
		return adapter.Result{}, adapter.Malformed("eventBody", "must be an object")
	}
	conv, err := adapter.RequiredIdent(b.ConversationID, "eventBody.conversationId")
	if err != nil {
		return adapter.Result{}, err
	}
	if m := strings.ToUpper(strings.TrimSpace(b.MediaType)); m != "VOICE" {
		if m == "" {
			return adapter.Result{}, adapter.Malformed("eventBody.mediaType", "required")
		}
		return adapter.Skipped(SkipNotVoice, "conversation %s media %q", adapter.Truncate(conv, 64), adapter.Truncate(b.MediaType, 24)), nil
	}
	at, err := millis(b.EventTime)
	if err != nil {
		return adapter.Result{}, err
	}
	call := &canonical.Call{CallID: conv}
	switch adapter.Lower(b.Direction) {
	case "inbound":
		call.Direction = "inbound"
	case "outbound":
		call.Direction = "outbound"
	default:
		return adapter.Result{}, adapter.Malformed("eventBody.direction", "must be INBOUND or OUTBOUND, not %q", adapter.Truncate(b.Direction, 24))
	}
	if call.QueueID, err = adapter.Ident(strings.TrimSpace(b.QueueID), "eventBody.queueId"); err != nil {
		return adapter.Result{}, err
	}
	switch kind {
	case "acd.end":
		wait, err := seconds(b.ConnectedDurationMs, "eventBody.connectedDurationMs")
		if err != nil {
			return adapter.Result{}, err
		}
		call.WaitSeconds = wait
		switch strings.ToUpper(b.AcdOutcome) {
		case "ANSWERED":
			if call.AgentID, err = adapter.RequiredIdent(b.AnsweredUserID, "eventBody.answeredUserId"); err != nil {
				return adapter.Result{}, err
			}
		case "ABANDON":
			typ = "call_abandoned"
		case "":
			return adapter.Result{}, adapter.Malformed("eventBody.acdOutcome", "required")
		default:
			return adapter.Skipped(SkipUnmappedOutcome, "conversation %s outcome %q", adapter.Truncate(conv, 64), adapter.Truncate(b.AcdOutcome, 24)), nil
		}
	case "acw":
		if b.WrapupDurationMs == nil {
			return adapter.Skipped(SkipAfterCallWork, "conversation %s: no wrapupDurationMs", adapter.Truncate(conv, 64)), nil
		}
		if call.AgentID, err = adapter.RequiredIdent(b.UserID, "eventBody.userId"); err != nil {
			return adapter.Result{}, err
		}
		if call.WrapUpSeconds, err = seconds(b.WrapupDurationMs, "eventBody.wrapupDurationMs"); err != nil {
			return adapter.Result{}, err
		}
	case "user.end":
		if call.AgentID, err = adapter.RequiredIdent(b.UserID, "eventBody.userId"); err != nil {
			return adapter.Result{}, err
		}
		if call.TalkSeconds, err = seconds(b.InteractingDurationMs, "eventBody.interactingDurationMs"); err != nil {
			return adapter.Result{}, err
		}
		if call.HoldSeconds, err = seconds(b.HeldDurationMs, "eventBody.heldDurationMs"); err != nil {
			return adapter.Result{}, err
		}
	}
	ev := canonical.Event{
		Source: Source, Type: typ, TicketID: conv, OccurredAt: at,
		Actor: canonical.Actor{Kind: "system"}, Call: call,
	}
	// One step of the call is one event, whichever detail event told it and however often the
	// trigger delivers it: a transferred call's second queue or second agent adds nothing.
	ev.ID = adapter.EventID(Source, conv, typ)
	if kind == "acw" {
		ev.ID = adapter.EventID(Source, conv, "acw")
	}
	return adapter.One(ev), nil
}

// millis reads eventTime, unix milliseconds.
func millis(raw json.RawMessage) (time.Time, error) {
	var n *int64
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, adapter.Malformed("eventBody.eventTime", "required")
	}
	if err := json.Unmarshal(raw, &n); err != nil || n == nil || *n <= 0 {
		return time.Time{}, adapter.Malformed("eventBody.eventTime", "must be unix milliseconds, not %s", adapter.Truncate(string(raw), 24))
	}
	t := time.UnixMilli(*n).UTC()
	if !canonical.Representable(t) {
		return time.Time{}, adapter.Malformed("eventBody.eventTime", "outside the years 0001 to 9999")
	}
	return t, nil
}

// seconds reads an optional duration in milliseconds as seconds.
func seconds(ms *float64, field string) (float64, error) {
	if ms == nil {
		return 0, nil
	}
	if *ms < 0 || *ms > canonical.MaxCallSeconds*1000 {
		return 0, adapter.Malformed(field, "must be milliseconds between 0 and %d", canonical.MaxCallSeconds*1000)
	}
	return canonical.RoundSeconds(*ms / 1000), nil
}
