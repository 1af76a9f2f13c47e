package contrib

import (
	"slices"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// history is one ticket's events in order, with the ticket's fields as of each of them: the one
// walk that every KPI step reads, so each step only says what it measures.
type history struct {
	evs []Event
	// at[i] holds the fields as of evs[i], its own changes included.
	at []fields
	// created anchors first response and resolution time; nil until it has arrived (those samples
	// are left out until it does, since everything is recomputed).
	created *Event
	// outbound: the ticket was opened by an agent, so there is no first response to measure.
	outbound bool
	// firstReply is the index of the first public agent reply, -1 without one.
	firstReply int
}

// fields are the ticket's fields as of an event.
type fields struct {
	agent, team string
	priority    tpv1.Priority
	status      tpv1.TicketStatus
}

// orderEvents returns the events in Compare's order with duplicate keys removed. When a source
// resends an id with a different time, kind or sequence, the copy that sorts first wins, whatever
// the arrival.
func orderEvents(events []Event) []Event {
	evs := slices.Clone(events)
	slices.SortFunc(evs, func(a, b Event) int { return Compare(&a, &b) })
	seen := make(map[uint64]struct{}, len(evs))
	out := evs[:0]
	for _, e := range evs {
		if _, dup := seen[e.Key]; dup {
			continue
		}
		seen[e.Key] = struct{}{}
		out = append(out, e)
	}
	return out
}

// walkHistory follows the ticket's assignee, team, priority and status through its ordered events.
// It keeps them in buf when that has room (the caller's stack spares the write path an allocation
// per ticket).
func walkHistory(evs []Event, buf []fields) history {
	h := history{evs: evs, at: buf[:0], firstReply: -1}
	if cap(buf) < len(evs) {
		h.at = make([]fields, 0, len(evs))
	}
	h.at = h.at[:len(evs)]
	for i := range evs {
		if evs[i].Type == tpv1.EventType_EVENT_TYPE_TICKET_CREATED {
			h.created = &evs[i]
			break
		}
	}
	h.outbound = h.created != nil && h.created.Actor == tpv1.ActorKind_ACTOR_KIND_AGENT
	cur := fields{status: tpv1.TicketStatus_TICKET_STATUS_NEW}
	for i := range evs {
		e := &evs[i]
		// Fields "as of this event", when the source says. Only an assignment event can clear the
		// assignee; elsewhere an empty id means "not said".
		if setsAssignee(e) {
			cur.agent = e.Assignee
		}
		if e.Team != "" {
			cur.team = e.Team
		}
		if e.Priority != tpv1.Priority_PRIORITY_UNSPECIFIED {
			cur.priority = e.Priority
		}
		// The created event may say the status it starts in; a status change says the next one.
		if e.Status != tpv1.TicketStatus_TICKET_STATUS_UNSPECIFIED && (e == h.created || e.Type == tpv1.EventType_EVENT_TYPE_STATUS_CHANGED) {
			cur.status = e.Status
		}
		if h.firstReply < 0 && isPublicReply(e) {
			h.firstReply = i
		}
		h.at[i] = cur
	}
	return h
}

// before returns the fields just before evs[i].
func (h *history) before(i int) fields {
	if i == 0 {
		return fields{status: tpv1.TicketStatus_TICKET_STATUS_NEW}
	}
	return h.at[i-1]
}

// last returns the fields as of the latest event.
func (h *history) last() fields { return h.at[len(h.at)-1] }

// asOf returns the fields as of time t (before the first event: none).
func (h *history) asOf(t int64) fields {
	var f fields
	for i := range h.evs {
		if h.evs[i].AtMillis > t {
			break
		}
		f = h.at[i]
	}
	return f
}

// solves reports whether evs[i] moves the ticket from an open state into SOLVED or CLOSED
// (SOLVED → CLOSED is not a new resolution).
func (h *history) solves(i int) bool {
	return h.evs[i].Type == tpv1.EventType_EVENT_TYPE_STATUS_CHANGED && !resolved(h.before(i).status) && resolved(h.evs[i].Status)
}

// reopens reports whether evs[i] moves the ticket from SOLVED or CLOSED back to an open state.
func (h *history) reopens(i int) bool {
	next := h.evs[i].Status
	return h.evs[i].Type == tpv1.EventType_EVENT_TYPE_STATUS_CHANGED && resolved(h.before(i).status) &&
		!resolved(next) && next != tpv1.TicketStatus_TICKET_STATUS_UNSPECIFIED
}

// setsAssignee reports whether e says who the assignee is: an assignment event always does (an
// empty id unassigns), any other event only when it names one.
func setsAssignee(e *Event) bool {
	return e.Type == tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED || e.Assignee != ""
}

// isPublicReply reports whether e is a response to the customer, as slapolicy.IsReply defines it
// for kpi and escalation alike: a public message by a human agent, or an inbound call on the
// ticket answered by a named agent, at the answer. Bots, automations and private notes are not.
// A call with no ticket is never among a ticket's events (StateID), so it answers nothing.
func isPublicReply(e *Event) bool {
	return slapolicy.IsReply(e.slaEvent())
}

// slaEvent is e as the shared SLA clocks and response rule read it (package slapolicy).
func (e *Event) slaEvent() slapolicy.Event {
	return slapolicy.Event{
		Type: e.Type, At: time.UnixMilli(e.AtMillis), ActorKind: e.Actor, Public: e.Public == 2, Status: e.Status,
		CallDirection: e.CallDir, CallAgent: e.CallAgent,
	}
}
