// Package responsetest holds ticket histories that kpi and escalation both judge in their tests,
// so the two services are seen to agree on what a response is (slapolicy.IsReply) and on the
// first- and next-response SLA it decides: a ticket answered only by phone is met in both, and
// a call that answered nobody breaches in both. It is test data, imported by tests only.
package responsetest

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Rules is the rules file both services read (one file, two readers): urgent tickets have 30
// minutes for the first response and 10 for the next, around the clock.
const Rules = `tenants:
  acme:
    escalation_policies:
      leads: {levels: [{targets: [team-lead]}]}
    sla_policies:
      - name: phones
        escalation: leads
        at_risk: 80%
        targets:
          urgent: {first_response: 30m, next_response: 10m}
`

// Tenant is the tenant of Rules; Team the team every case's ticket is in.
const (
	Tenant = "acme"
	Team   = "billing"
)

// Verdict is what a response clock came to by Case.Now.
type Verdict int

const (
	// None: no verdict yet (still within its target, or never started).
	None Verdict = iota
	// Met: answered within its target.
	Met
	// Breached: past its target without an answer.
	Breached
)

func (v Verdict) String() string { return [...]string{"none", "met", "breached"}[v] }

// Case is one ticket's history.
type Case struct {
	Name string
	// Ticket is the ticket's id. Events holds every event published with it as ticket_id, a
	// call with no ticket under the same id included.
	Ticket string
	Events []*tpv1.TicketEvent
	// Replies are the ids of the events that are the ticket's responses.
	Replies []string
	// Now is when the case is judged: no event is later, and every clock that breached by Now
	// had an event after its deadline, so kpi (which knows only events) knows of the breach.
	Now         time.Time
	First, Next Verdict
}

// Cases are the histories of tickets created at start (minute-precision instants after it),
// with ids and ticket ids prefixed by prefix so several runs can share a stream.
func Cases(prefix string, start time.Time) []Case {
	b := func(name string) *builder { return &builder{ticket: prefix + name, start: start} }
	var cases []Case
	add := func(name string, bl *builder, replies []string, first, next Verdict) {
		for i, r := range replies {
			replies[i] = bl.ticket + "-" + r
		}
		cases = append(cases, Case{Name: name, Ticket: bl.ticket, Events: bl.evs, Replies: replies, Now: start.Add(45 * time.Minute), First: first, Next: next})
	}

	phone := b("phone-only")
	phone.created(0).call("o", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 5, "c1", inbound, "", true).
		call("a", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 6, "c1", inbound, "ana", true).
		call("e", tpv1.EventType_EVENT_TYPE_CALL_ENDED, 15, "c1", inbound, "ana", true)
	add("answered only by phone: first response met", phone, []string{"a"}, Met, None)

	abandoned := b("abandoned")
	abandoned.created(0).call("o", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 5, "c1", inbound, "", true).
		call("x", tpv1.EventType_EVENT_TYPE_CALL_ABANDONED, 7, "c1", inbound, "", true).customer("m", 40)
	add("an abandoned call answers nothing: first response breached", abandoned, nil, Breached, None)

	out := b("outbound")
	out.created(0).call("o", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 5, "c1", outbound, "ana", true).
		call("a", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 6, "c1", outbound, "ana", true).
		call("e", tpv1.EventType_EVENT_TYPE_CALL_ENDED, 20, "c1", outbound, "ana", true).customer("m", 40)
	add("an outbound call answers nothing: first response breached", out, nil, Breached, None)

	nobody := b("nobody")
	nobody.created(0).call("a", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 6, "c1", inbound, "", true).customer("m", 40)
	add("a call answered by no named agent answers nothing", nobody, nil, Breached, None)

	// The call's id is the ticket's id, and it names no ticket: it is a call of its own.
	unlinked := b("unlinked")
	unlinked.created(0).call("o", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 5, unlinked.ticket, inbound, "", false).
		call("a", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 6, unlinked.ticket, inbound, "ana", false).customer("m", 40)
	add("a call with no ticket under the ticket's id answers nothing", unlinked, nil, Breached, None)

	instant := b("same-minute")
	instant.call("a", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 0, "c1", inbound, "ana", true).created(0).customer("m", 40)
	add("answered by phone in the minute the ticket was created: met at once", instant, []string{"a"}, Met, None)

	solve := b("answer-and-solve")
	solve.created(0).status("s", 10, tpv1.TicketStatus_TICKET_STATUS_SOLVED).
		call("a", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 10, "c1", inbound, "ana", true)
	add("answered by phone in the second of the solve: the answer comes first, met", solve, []string{"a"}, Met, None)

	redelivered := b("redelivered")
	redelivered.created(0).call("o", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 5, "c1", inbound, "", true).
		call("a", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 6, "c1", inbound, "ana", true).
		call("e", tpv1.EventType_EVENT_TYPE_CALL_ENDED, 15, "c1", inbound, "ana", true)
	redelivered.evs = append(redelivered.evs, redelivered.evs[2], redelivered.evs[1], redelivered.evs[2])
	add("redelivered call events count once", redelivered, []string{"a"}, Met, None)

	next := b("next-by-phone")
	next.created(0).agent("r", 2).customer("m1", 10).call("o", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 11, "c1", inbound, "", true).
		call("a", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 12, "c1", inbound, "cy", true).customer("m2", 40)
	add("a call answers the waiting customer: next response met", next, []string{"r", "a"}, Met, Met)

	nextMissed := b("next-abandoned")
	nextMissed.created(0).agent("r", 2).customer("m1", 10).call("o", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 11, "c1", inbound, "", true).
		call("x", tpv1.EventType_EVENT_TYPE_CALL_ABANDONED, 13, "c1", inbound, "", true).customer("m2", 25)
	add("an abandoned call leaves the customer waiting: next response breached", nextMissed, []string{"r"}, Met, Breached)
	return cases
}

const (
	inbound  = tpv1.CallDirection_CALL_DIRECTION_INBOUND
	outbound = tpv1.CallDirection_CALL_DIRECTION_OUTBOUND
)

type builder struct {
	ticket string
	start  time.Time
	evs    []*tpv1.TicketEvent
}

func (b *builder) ev(id string, typ tpv1.EventType, minute int) *tpv1.TicketEvent {
	e := &tpv1.TicketEvent{
		Id: b.ticket + "-" + id, Tenant: Tenant, TicketId: b.ticket, Type: typ, Source: "api",
		OccurredAt: timestamppb.New(b.start.Add(time.Duration(minute) * time.Minute)),
	}
	b.evs = append(b.evs, e)
	return e
}

func (b *builder) created(minute int) *builder {
	e := b.ev("created", tpv1.EventType_EVENT_TYPE_TICKET_CREATED, minute)
	e.Actor = &tpv1.Actor{Id: "cus", Kind: tpv1.ActorKind_ACTOR_KIND_CUSTOMER}
	e.Priority, e.TeamId, e.AssigneeId, e.Status = tpv1.Priority_PRIORITY_URGENT, Team, "bo", tpv1.TicketStatus_TICKET_STATUS_NEW
	return b
}

func (b *builder) customer(id string, minute int) *builder {
	e := b.ev(id, tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE, minute)
	e.Actor, e.Public = &tpv1.Actor{Id: "cus", Kind: tpv1.ActorKind_ACTOR_KIND_CUSTOMER}, ptr(true)
	return b
}

func (b *builder) agent(id string, minute int) *builder {
	e := b.ev(id, tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, minute)
	e.Actor, e.Public = &tpv1.Actor{Id: "bo", Kind: tpv1.ActorKind_ACTOR_KIND_AGENT}, ptr(true)
	return b
}

func (b *builder) status(id string, minute int, s tpv1.TicketStatus) *builder {
	e := b.ev(id, tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, minute)
	e.Actor, e.Status = &tpv1.Actor{Id: "bo", Kind: tpv1.ActorKind_ACTOR_KIND_AGENT}, s
	return b
}

// call adds a call event as docs/events.md ("Calls") describes it: a linked call names the
// ticket in call.ticket_id; a call with no ticket has its call id as the event's ticket_id,
// which the builder's ticket id must then be.
func (b *builder) call(id string, typ tpv1.EventType, minute int, callID string, dir tpv1.CallDirection, agent string, linked bool) *builder {
	e := b.ev(id, typ, minute)
	e.Actor = &tpv1.Actor{Kind: tpv1.ActorKind_ACTOR_KIND_SYSTEM}
	if agent != "" && typ == tpv1.EventType_EVENT_TYPE_CALL_ANSWERED {
		e.Actor = &tpv1.Actor{Id: agent, Kind: tpv1.ActorKind_ACTOR_KIND_AGENT}
	}
	e.Call = &tpv1.CallInfo{CallId: callID, Direction: dir, AgentId: agent, TeamId: "phones"}
	if linked {
		e.Call.TicketId = b.ticket
	}
	return b
}

func ptr[T any](v T) *T { return &v }
