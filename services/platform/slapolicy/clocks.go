package slapolicy

import (
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
	"github.com/ticketpulse/ticketpulse/services/platform/slaclock"
)

// Event is the part of a ticket event the SLA clocks read.
type Event struct {
	Type      tpv1.EventType
	At        time.Time
	ActorKind tpv1.ActorKind
	// Public: a message the customer sees.
	Public bool
	Status tpv1.TicketStatus
	// CallDirection and CallAgent are a call event's direction and the agent the call is with
	// (call.agent_id). Only the calls linked to the ticket are among its events: a call with no
	// ticket is no event of any ticket, whatever its ticket_id (docs/events.md, "Calls").
	CallDirection tpv1.CallDirection
	CallAgent     string
}

// Clocks are a ticket's three SLA clocks after some of its events, with whether each still
// counts. The zero Clocks is a ticket before its first event.
type Clocks struct {
	First, Next, Resolution slaclock.Clock
	// Outbound: the ticket was opened by an agent, so it needs no first response.
	Outbound bool
	Started  bool
	// FirstDone: the first response was sent, or the ticket needs none (outbound, solved unanswered).
	FirstDone bool
	// NextWaiting: a customer message waits for an agent's reply after the first response.
	NextWaiting bool
	// NextSince is when the waiting customer message came.
	NextSince time.Time
	Resolved  bool
	// Paused: the ticket is in a status that stops the clocks.
	Paused bool
}

// Replay runs the clocks of policy p through evs, which must be in the ticket's order; outbound
// says whether an agent opened the ticket.
func Replay(evs []Event, p *Policy, outbound bool) Clocks {
	c := Clocks{Outbound: outbound}
	for _, e := range evs {
		c.Apply(p, e)
	}
	return c
}

// Apply moves the clocks past one event. The first response counts from the ticket's creation
// (or its first customer message when the creation event is missing); the next response from the
// first customer message that has no reply yet; the resolution from the creation until solved,
// going on from where it stopped when the ticket is reopened. A reply (IsReply) ends the first
// response and answers the waiting customer, whether a message or an answered call; no other call
// event, nor a QA review, starts or stops anything. After each event every clock is set
// running or stopped by what the ticket now waits for, so no sequence of events can leave a clock
// in a state the flags do not explain.
func (c *Clocks) Apply(p *Policy, e Event) {
	switch e.Type {
	case tpv1.EventType_EVENT_TYPE_TICKET_CREATED:
		c.Paused = p.Pauses(e.Status)
		c.start(e.At)
	case tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE:
		c.start(e.At)
		if c.FirstDone && !c.NextWaiting && !c.Resolved {
			c.NextWaiting, c.NextSince = true, e.At
			c.Next = slaclock.Clock{}.Start(e.At)
		}
	case tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, tpv1.EventType_EVENT_TYPE_CALL_ANSWERED:
		if IsReply(e) && c.Started {
			c.FirstDone, c.NextWaiting = true, false
		}
	case tpv1.EventType_EVENT_TYPE_STATUS_CHANGED:
		switch {
		case e.Status == tpv1.TicketStatus_TICKET_STATUS_UNSPECIFIED:
		case Solved(e.Status):
			// Solved without a reply needs none, and nobody waits on a solved ticket.
			c.Resolved, c.FirstDone, c.NextWaiting = true, true, false
		default:
			c.Resolved = false
			c.Paused = p.Pauses(e.Status)
		}
	}
	c.sync(p.Calendar, e.At)
}

// IsReply reports whether e is an agent's response to the customer: a public message by a human
// agent, or an inbound call answered by a named agent (IsAnsweredCall), at the answer. It is the
// one definition of a response: kpi's response times, SLA figures and one-touch, and escalation's
// SLA clocks all ask it, so a ticket answered only by phone is met in both (docs/kpis.md, "Calls
// and responses"). Bots, automations, private notes, outbound and unanswered calls are not.
func IsReply(e Event) bool {
	switch e.Type {
	case tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE:
		return e.Public && e.ActorKind == tpv1.ActorKind_ACTOR_KIND_AGENT
	case tpv1.EventType_EVENT_TYPE_CALL_ANSWERED:
		return IsAnsweredCall(e)
	}
	return false
}

// IsAnsweredCall reports whether e is an inbound call answered by a named agent. The agent is
// required on call_answered (ingest refuses one without); a producer that sent none anyway
// names nobody who responded, so it is no response. An outbound call's answer is the customer
// picking up, not an agent answering them.
func IsAnsweredCall(e Event) bool {
	return e.Type == tpv1.EventType_EVENT_TYPE_CALL_ANSWERED && e.CallDirection == tpv1.CallDirection_CALL_DIRECTION_INBOUND && e.CallAgent != ""
}

// Solved reports whether s ends the ticket's clocks: solved or closed.
func Solved(s tpv1.TicketStatus) bool {
	return s == tpv1.TicketStatus_TICKET_STATUS_SOLVED || s == tpv1.TicketStatus_TICKET_STATUS_CLOSED
}

// FirstWaiting, ResolutionWaiting: whether the first-response and resolution clocks still count
// towards their target (the next-response clock does while NextWaiting).
func (c *Clocks) FirstWaiting() bool      { return c.Started && !c.FirstDone }
func (c *Clocks) ResolutionWaiting() bool { return c.Started && !c.Resolved }

func (c *Clocks) start(at time.Time) {
	if c.Started {
		return
	}
	c.Started = true
	if c.Outbound {
		c.FirstDone = true
	} else {
		c.First = c.First.Start(at)
	}
	c.Resolution = c.Resolution.Start(at)
}

// sync sets each clock running or stopped at t by what the ticket waits for.
func (c *Clocks) sync(cal *calendar.Calendar, t time.Time) {
	for _, k := range []struct {
		clock *slaclock.Clock
		want  bool
	}{
		{&c.First, !c.FirstDone},
		{&c.Next, c.NextWaiting},
		{&c.Resolution, !c.Resolved},
	} {
		if k.want && !c.Paused {
			*k.clock = k.clock.Resume(t)
		} else {
			*k.clock = k.clock.Pause(cal, t)
		}
	}
}
