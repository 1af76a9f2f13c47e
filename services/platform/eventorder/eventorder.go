// Package eventorder is the one order of a ticket's events every service uses (docs/architecture.md,
// "Events at the same instant"): by time; at the same instant by kind, in the order a ticket's
// life runs (created, assigned or reprioritised, customer message, the call events, agent
// message, status change, rating, QA review: Rank); then by the source's own sequence; then by a
// hash of the id, so every replica and service sorts any set the same way whatever order it
// arrived in.
//
// Sources with second or minute precision (helpdesk triggers, audit-log exports) stamp many
// events with one time: without the kind rank a ticket created and solved in the same minute
// could sort its creation after the solve.
package eventorder

import (
	"cmp"
	"hash/fnv"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Key is what orders one event.
type Key struct {
	AtMillis int64
	Type     tpv1.EventType
	// Sequence is TicketEvent.sequence; 0 (none) sorts before any given sequence.
	Sequence uint64
	// ID is IDHash of the event id.
	ID uint64
}

// Of returns the order key of e.
func Of(e *tpv1.TicketEvent) Key {
	return Key{AtMillis: e.GetOccurredAt().AsTime().UnixMilli(), Type: e.GetType(), Sequence: e.GetSequence(), ID: IDHash(e.GetId())}
}

// IDHash is the 64-bit FNV-1a hash of an event id: the last tie-break, and kpi's deduplication
// identity.
func IDHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// Rank is the place of an event type among events of the same instant, in the order a ticket's
// life runs:
//
//	0  ticket_created
//	1  ticket_assigned, priority_changed
//	2  customer_message
//	3  call_offered     the customer's call reaches the queue: a contact, like a message
//	4  call_answered    the agent's answer, a response (slapolicy.IsReply) like a message
//	5  call_abandoned
//	6  call_ended
//	7  agent_message
//	8  status_changed
//	9  satisfaction_rated
//	10 qa_scored        a review of the ticket's handling, after the handling it reviews
//	11 any other type
//
// So a call answered in the minute the ticket was created answers it after its creation, a call
// answered with the customer's message answers that message, and a call answered with the solve
// answers before the solve, exactly as an agent's message would. A call's own events run offer,
// answer (or abandon), end; its answer comes before an agent message of the same instant (the
// note written about the call). Ranking calls and reviews left the order of the other ticket
// events as it was. A type this version does not know sorts last, so an event of a newer
// producer never displaces a known one.
func Rank(t tpv1.EventType) int {
	switch t {
	case tpv1.EventType_EVENT_TYPE_TICKET_CREATED:
		return 0
	case tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, tpv1.EventType_EVENT_TYPE_PRIORITY_CHANGED:
		return 1
	case tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE:
		return 2
	case tpv1.EventType_EVENT_TYPE_CALL_OFFERED:
		return 3
	case tpv1.EventType_EVENT_TYPE_CALL_ANSWERED:
		return 4
	case tpv1.EventType_EVENT_TYPE_CALL_ABANDONED:
		return 5
	case tpv1.EventType_EVENT_TYPE_CALL_ENDED:
		return 6
	case tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE:
		return 7
	case tpv1.EventType_EVENT_TYPE_STATUS_CHANGED:
		return 8
	case tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED:
		return 9
	case tpv1.EventType_EVENT_TYPE_QA_SCORED:
		return 10
	}
	return 11
}

// Compare orders a before b (-1), after (+1) or as the same event (0).
func Compare(a, b Key) int {
	if c := cmp.Compare(a.AtMillis, b.AtMillis); c != 0 {
		return c
	}
	if c := cmp.Compare(Rank(a.Type), Rank(b.Type)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Sequence, b.Sequence); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}
