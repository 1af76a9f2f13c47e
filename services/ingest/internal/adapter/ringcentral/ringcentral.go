// Package ringcentral maps RingCentral telephony session notifications (the event filter
// /restapi/v1.0/account/~/telephony/sessions, delivered by a WebHook subscription) onto the
// canonical call events. A notification names one call (telephonySessionId) and its parties,
// each with its status; the party on the account's side (an extension) tells what happened to
// the call there. See docs/contactcentres.md for the mapping table and what is uncertain.
package ringcentral

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "ringcentral"

// Skip reasons, the metric labels of what a delivery deliberately does not map.
const (
	// SkipHandshake: the subscription's validation request (Validation-Token, no body), which
	// carries no notification.
	SkipHandshake = "handshake"
	// SkipUnsupportedEvent: a notification of another event filter (presence, messages, ...).
	SkipUnsupportedEvent = "unsupported_event"
	// SkipUntrackedStatus: a party status that is no step of the call's life here (Setup,
	// Hold, Parked, VoiceMail, Gone, FaxReceive, ...).
	SkipUntrackedStatus = "untracked_status"
	// SkipNoExtensionParty: no party of the notification is an extension of the account, so
	// nothing says what happened on the account's side.
	SkipNoExtensionParty = "no_extension_party"
)

// MaxParties bounds the parties one notification may list; a call with more (a large
// conference) is refused rather than walked.
const MaxParties = 64

// Adapter maps RingCentral notifications. It needs no tenant settings.
type Adapter struct{}

var _ adapter.Adapter = Adapter{}

// New returns the RingCentral adapter.
func New() Adapter { return Adapter{} }

// Source returns "ringcentral".
func (Adapter) Source() string { return Source }

type notification struct {
	UUID      string          `json:"uuid"`
	Event     *string         `json:"event"`
	Timestamp string          `json:"timestamp"`
	Body      json.RawMessage `json:"body"`
}

type session struct {
	TelephonySessionID string  `json:"telephonySessionId"`
	SessionID          string  `json:"sessionId"`
	EventTime          string  `json:"eventTime"`
	Sequence           *uint64 `json:"sequence"`
	Parties            []party `json:"parties"`
}

type party struct {
	ID          string `json:"id"`
	ExtensionID string `json:"extensionId"`
	Direction   string `json:"direction"`
	MissedCall  bool   `json:"missedCall"`
	QueueCall   bool   `json:"queueCall"`
	Status      *struct {
		Code   string `json:"code"`
		Reason string `json:"reason"`
	} `json:"status"`
	To *struct {
		ExtensionID string `json:"extensionId"`
	} `json:"to"`
}

var timeLayouts = []string{time.RFC3339Nano}

// Map turns one notification into at most one call event.
func (Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	if len(strings.TrimSpace(string(d.Body))) == 0 {
		if d.Header.Get("Validation-Token") != "" {
			return adapter.Skipped(SkipHandshake, "subscription validation request"), nil
		}
		return adapter.Result{}, adapter.Malformed("", "empty body (only the subscription's validation request, with Validation-Token, may be empty)")
	}
	var n notification
	if err := adapter.DecodeJSON(d.Body, &n); err != nil {
		return adapter.Result{}, err
	}
	if n.Event == nil || *n.Event == "" {
		return adapter.Result{}, adapter.Malformed("event", "required")
	}
	if !strings.HasSuffix(*n.Event, "/telephony/sessions") && !strings.Contains(*n.Event, "/telephony/sessions?") {
		return adapter.Skipped(SkipUnsupportedEvent, "event %q", adapter.Truncate(*n.Event, 120)), nil
	}
	if len(n.Body) == 0 || string(n.Body) == "null" {
		return adapter.Result{}, adapter.Malformed("body", "required")
	}
	var s session
	if err := json.Unmarshal(n.Body, &s); err != nil {
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			field := "body"
			if te.Field != "" {
				field += "." + te.Field
			}
			kind := te.Type.Kind().String()
			if kind == "struct" {
				kind = "object"
			}
			return adapter.Result{}, adapter.Malformed(field, "must be a JSON %s, not %s", kind, te.Value)
		}
		return adapter.Result{}, adapter.Malformed("body", "must be an object")
	}
	callID, err := adapter.RequiredIdent(s.TelephonySessionID, "body.telephonySessionId")
	if err != nil {
		return adapter.Result{}, err
	}
	at, err := adapter.ParseTime(s.EventTime, "body.eventTime", "an RFC 3339 time", timeLayouts)
	if err != nil {
		return adapter.Result{}, err
	}
	if len(s.Parties) == 0 {
		return adapter.Result{}, adapter.Malformed("body.parties", "required: a notification names the call's parties")
	}
	if len(s.Parties) > MaxParties {
		return adapter.Result{}, adapter.Malformed("body.parties", "%d parties; at most %d are read", len(s.Parties), MaxParties)
	}
	for i := range s.Parties {
		p := &s.Parties[i]
		if p.ExtensionID == "" {
			continue
		}
		return mapParty(callID, at, i, p)
	}
	return adapter.Skipped(SkipNoExtensionParty, "call %s", adapter.Truncate(callID, 64)), nil
}

// mapParty maps the call as the extension party at index i sees it.
func mapParty(callID string, at time.Time, i int, p *party) (adapter.Result, error) {
	field := func(name string) string { return "body.parties[" + strconv.Itoa(i) + "]." + name }
	ext, err := adapter.Ident(strings.TrimSpace(p.ExtensionID), field("extensionId"))
	if err != nil {
		return adapter.Result{}, err
	}
	partyID, err := adapter.RequiredIdent(p.ID, field("id"))
	if err != nil {
		return adapter.Result{}, err
	}
	if p.Status == nil || p.Status.Code == "" {
		return adapter.Result{}, adapter.Malformed(field("status.code"), "required")
	}
	var dir string
	switch p.Direction {
	case "Inbound":
		dir = "inbound"
	case "Outbound":
		dir = "outbound"
	default:
		return adapter.Result{}, adapter.Malformed(field("direction"), "must be Inbound or Outbound, not %q", adapter.Truncate(p.Direction, 24))
	}
	call := &canonical.Call{CallID: callID, Direction: dir}
	if p.QueueCall && p.To != nil && p.To.ExtensionID != "" && p.To.ExtensionID != ext {
		// A call-queue call is addressed to the queue's extension and rings its members.
		q, err := adapter.Ident(strings.TrimSpace(p.To.ExtensionID), field("to.extensionId"))
		if err != nil {
			return adapter.Result{}, err
		}
		call.QueueID = q
	}
	var typ string
	switch code := p.Status.Code; code {
	case "Proceeding":
		typ = "call_offered"
	case "Answered":
		typ = "call_answered"
		call.AgentID = ext
	case "Disconnected":
		// missedCall marks a call that rang this party and was never answered.
		if p.MissedCall {
			typ = "call_abandoned"
		} else {
			typ = "call_ended"
			call.AgentID = ext
		}
	default:
		return adapter.Skipped(SkipUntrackedStatus, "call %s party %s status %q", adapter.Truncate(callID, 64), adapter.Truncate(partyID, 40), adapter.Truncate(code, 24)), nil
	}
	ev := canonical.Event{
		Source: Source, Type: typ, TicketID: callID, OccurredAt: at,
		Actor: canonical.Actor{Kind: "system"}, Call: call,
	}
	// A status is reported again when something else of the party changes (mute, a recording
	// starts), and Answered again after every hold: the id is the party and the status, so each
	// step of the call counts once, whatever RingCentral repeats.
	ev.ID = adapter.EventID(Source, callID, partyID, typ)
	return adapter.One(ev), nil
}

// Validation is the header RingCentral's subscription handshake carries, and that the answer
// must carry back with a 200 (see docs/contactcentres.md). A token longer than RingCentral's
// 1024 bytes, or with a byte outside printable ASCII, is not one.
func Validation(h http.Header) (string, bool) {
	v := h.Get("Validation-Token")
	if v == "" || len(v) > 1024 {
		return "", false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return "", false
		}
	}
	return v, true
}

// Handshake answers RingCentral's subscription validation: its Validation-Token goes back.
func (Adapter) Handshake(h http.Header) (name, value string, ok bool) {
	v, ok := Validation(h)
	return "Validation-Token", v, ok
}
