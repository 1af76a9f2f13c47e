// Package five9 maps Five9 connector requests onto the canonical call events. A Five9 connector
// (VCC Administrator, Connectors) posts the parameters it is configured with, form-encoded, to
// a URL when its trigger fires; the parameters' names are the ones docs/contactcentres.md lists,
// each filled from a Five9 call or agent variable, with a constant `event` saying which trigger
// the connector is for. The URL's token is the credential (package verify).
package five9

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "five9"

// Skip reasons, the metric labels of what a delivery deliberately does not map.
const (
	// SkipInternalCall: a call between agents (type Internal or Agent), not a customer's.
	SkipInternalCall = "internal_call"
)

// The values of the connector's constant `event` parameter, one connector per trigger.
var events = map[string]string{
	"call_queued":       "call_offered",   // the IVR script's Query module, as the call enters a skill
	"call_accepted":     "call_answered",  // trigger: On Call Accepted
	"call_abandoned":    "call_abandoned", // the IVR script's Query module on the abandon branch
	"call_disconnected": "call_ended",     // trigger: On Call Disconnected
}

// Adapter maps Five9 connector requests; the tenant's ticket_field names the parameter holding
// the linked ticket.
type Adapter struct{}

var _ adapter.FormSource = Adapter{}

// New returns the Five9 adapter.
func New() Adapter { return Adapter{} }

// Source returns "five9".
func (Adapter) Source() string { return Source }

// FormEncoded implements adapter.FormSource: connectors post application/x-www-form-urlencoded.
func (Adapter) FormEncoded() {}

// Five9 renders a date-time variable without a zone; it is read as UTC, and the connector's
// time zone must be set so (docs/contactcentres.md).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.000", "2006-01-02 15:04:05"}

// Map turns one connector request into one call event.
func (Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	form, err := url.ParseQuery(string(d.Body))
	if err != nil {
		return adapter.Result{}, adapter.Malformed("", "not a form (application/x-www-form-urlencoded): %v", err)
	}
	word := adapter.Lower(form.Get("event"))
	if word == "" {
		return adapter.Result{}, adapter.Malformed("event", "required: the connector's constant parameter naming its trigger")
	}
	typ, ok := events[word]
	if !ok {
		return adapter.Result{}, adapter.Malformed("event", "unknown value %q; want one of call_queued, call_accepted, call_abandoned, call_disconnected", adapter.Truncate(word, 40))
	}
	callID, err := adapter.RequiredIdent(form.Get("call_id"), "call_id")
	if err != nil {
		return adapter.Result{}, err
	}
	at, err := timestamp(form.Get("timestamp"))
	if err != nil {
		return adapter.Result{}, err
	}
	call := &canonical.Call{CallID: callID}
	switch ct := adapter.Lower(form.Get("type")); ct {
	case "inbound":
		call.Direction = "inbound"
	case "outbound", "manual", "autodial", "preview", "predictive":
		call.Direction = "outbound"
	case "internal", "agent":
		return adapter.Skipped(SkipInternalCall, "call %s type %q", adapter.Truncate(callID, 64), ct), nil
	case "":
		return adapter.Result{}, adapter.Malformed("type", "required (call.type_name)")
	default:
		return adapter.Result{}, adapter.Malformed("type", "unknown call type %q; want Inbound, Outbound, Manual, Autodial, Preview, Predictive, Internal or Agent", adapter.Truncate(ct, 40))
	}
	if call.QueueID, err = adapter.Ident(strings.TrimSpace(form.Get("skill")), "skill"); err != nil {
		return adapter.Result{}, err
	}
	if call.AgentID, err = adapter.Ident(strings.TrimSpace(form.Get("agent")), "agent"); err != nil {
		return adapter.Result{}, err
	}
	if typ == "call_answered" && call.AgentID == "" {
		return adapter.Result{}, adapter.Malformed("agent", "required for call_accepted (agent.user_name)")
	}
	if f := d.Settings.TicketField; f != "" {
		if call.TicketID, err = adapter.Ident(strings.TrimSpace(form.Get(f)), f); err != nil {
			return adapter.Result{}, err
		}
	}
	durations := []struct {
		param string
		dst   *float64
		on    bool
	}{
		{"queue_time", &call.WaitSeconds, typ != "call_offered"},
		{"talk_time", &call.TalkSeconds, typ == "call_ended"},
		{"hold_time", &call.HoldSeconds, typ == "call_ended"},
		{"wrapup_time", &call.WrapUpSeconds, typ == "call_ended"},
	}
	for _, x := range durations {
		v, err := seconds(form.Get(x.param), x.param)
		if err != nil {
			return adapter.Result{}, err
		}
		// A connector built from one parameter list sends every duration on every trigger;
		// those the event type does not carry (talk time on an answer) are dropped, not refused.
		if x.on {
			*x.dst = v
		}
	}
	ticket := callID
	if call.TicketID != "" {
		ticket = call.TicketID
	}
	ev := canonical.Event{
		Source: Source, Type: typ, TicketID: ticket, OccurredAt: at,
		Actor: canonical.Actor{Kind: "system"}, Call: call,
	}
	// The step of the call and the ticket it is on: a resent request counts once, and a call
	// resent linked to a ticket (docs/events.md) gets new ids.
	ev.ID = adapter.EventID(Source, callID, ticket, typ)
	return adapter.One(ev), nil
}

// timestamp reads the required timestamp parameter: RFC 3339, Five9's "2006-01-02 15:04:05"
// (UTC), or unix milliseconds.
func timestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s != "" && strings.Trim(s, "0123456789") == "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || len(s) > 15 {
			return time.Time{}, adapter.Malformed("timestamp", "not unix milliseconds: %q", adapter.Truncate(s, 24))
		}
		t := time.UnixMilli(n).UTC()
		if !canonical.Representable(t) {
			return time.Time{}, adapter.Malformed("timestamp", "outside the years 0001 to 9999")
		}
		return t, nil
	}
	return adapter.ParseTime(s, "timestamp", "an RFC 3339 time, 2006-01-02 15:04:05 or unix milliseconds", timeLayouts)
}

// seconds reads an optional duration: seconds ("25", "25.4") or Five9's time period
// "HH:MM:SS" (with optional ".mmm"); "" is absent.
func seconds(s, field string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	bad := func() (float64, error) {
		return 0, adapter.Malformed(field, "must be seconds or HH:MM:SS between 0 and %d s, not %q", canonical.MaxCallSeconds, adapter.Truncate(s, 24))
	}
	var v float64
	if h, rest, ok := strings.Cut(s, ":"); ok {
		m, sec, ok := strings.Cut(rest, ":")
		if !ok || len(m) != 2 || len(sec) < 2 || strings.ContainsAny(h+m, ".+-") {
			return bad()
		}
		hh, err1 := strconv.ParseUint(h, 10, 16)
		mm, err2 := strconv.ParseUint(m, 10, 8)
		ss, err3 := strconv.ParseFloat(sec, 64)
		if err1 != nil || err2 != nil || err3 != nil || mm > 59 || ss >= 60 || ss < 0 || strings.ContainsAny(sec, "+-eEnNiI") {
			return bad()
		}
		v = float64(hh)*3600 + float64(mm)*60 + ss
	} else {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || strings.ContainsAny(s, "eEnNiIxX+") {
			return bad()
		}
		v = f
	}
	if !(v >= 0 && v <= canonical.MaxCallSeconds) {
		return bad()
	}
	return canonical.RoundSeconds(v), nil
}
