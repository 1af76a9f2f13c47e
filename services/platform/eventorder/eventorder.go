// Package eventorder is the one order of a ticket's events every service uses (docs/architecture.md,
// "Events at the same instant"): by time; at the same instant by kind, in the order a ticket's
// life runs (created, assigned or reprioritised, customer message, agent message, status change,
// rating); then by the source's own sequence; then by a hash of the id, so every replica and
// service sorts any set the same way whatever order it arrived in.
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

// Rank is the place of an event type among events of the same instant. A type this version
// does not know sorts last, so an event of a newer producer never displaces a known one.
func Rank(t tpv1.EventType) int {
	switch t {
	case tpv1.EventType_EVENT_TYPE_TICKET_CREATED:
		return 0
	case tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, tpv1.EventType_EVENT_TYPE_PRIORITY_CHANGED:
		return 1
	case tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE:
		return 2
	case tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE:
		return 3
	case tpv1.EventType_EVENT_TYPE_STATUS_CHANGED:
		return 4
	case tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED:
		return 5
	}
	return 6
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
