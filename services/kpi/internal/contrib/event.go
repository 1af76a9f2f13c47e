// Package contrib computes a ticket's KPI contribution as a pure function of the set of its events
// (DESIGN.md §4, §5). Because the result depends only on the set, delivering the same events in any
// order, with any duplicates, yields the same contribution; the write path stores the contribution
// it applied and moves only the difference into the KPI buckets.
package contrib

import (
	"math"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/eventorder"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
)

// Event is the part of a TicketEvent the KPI math needs, in a compact form.
type Event struct {
	// Key is a 64-bit hash of the event id (eventorder.IDHash): the identity used for
	// deduplication and the last tie-break of the order.
	Key      uint64
	Type     tpv1.EventType
	AtMillis int64
	// Sequence is the source's own order of the ticket's events (TicketEvent.sequence), 0 if none.
	Sequence uint64
	ActorID  string
	Actor    tpv1.ActorKind
	Assignee string
	Team     string
	Priority tpv1.Priority
	Status   tpv1.TicketStatus
	// Public is 0 when the source did not say, 1 for private, 2 for public.
	Public uint8
	Score  uint8
	// Channel and Tags are what SLA policies match on besides priority and team. Tags are joined
	// by TagSep so that an Event stays comparable.
	Channel string
	Tags    string
	// A qa_scored event's review: QAReview is a hash of its review id (KeyOf), QAAgent and
	// QATeam the reviewed agent and team, QAScore the score in hundredths of a point (0 to
	// 10000), QAAutoFail whether it failed automatically.
	QAReview   uint64
	QAAgent    string
	QATeam     string
	QAScore    uint16
	QAAutoFail bool
	// A call event's call (call_offered, call_answered, call_abandoned, call_ended): CallKey is a
	// hash of its call id (KeyOf), CallAgent, CallTeam and CallQueue the call's own agent, team
	// and queue, CallDir its direction, and the durations the source measured, in milliseconds
	// (0: not given).
	CallKey                                  uint64
	CallAgent, CallTeam, CallQueue           string
	CallDir                                  tpv1.CallDirection
	CallWait, CallTalk, CallHold, CallWrapUp uint32
}

// QAState is the id under which the write path keeps a ticket's QA reviews: a state of their
// own, apart from the ticket's, since reviews come days or weeks after a solve, long after the
// ticket's own state may be compacted (a review is not a ticket event that could change its
// figures either). The NUL bytes cannot occur in a ticket id (ingest refuses control
// characters), so it names no real ticket; the state is never solved, so never compacted.
func QAState(ticketID string) string { return "\x00qa\x00" + ticketID }

// IsCall reports whether t is a call event's type.
func IsCall(t tpv1.EventType) bool {
	switch t {
	case tpv1.EventType_EVENT_TYPE_CALL_OFFERED, tpv1.EventType_EVENT_TYPE_CALL_ANSWERED,
		tpv1.EventType_EVENT_TYPE_CALL_ABANDONED, tpv1.EventType_EVENT_TYPE_CALL_ENDED:
		return true
	}
	return false
}

// CallState is the id under which the write path keeps the events of a call linked to no ticket.
// Ingest has such a call name its call id as ticket_id; a state of its own keeps it apart from a
// ticket that happens to have the same id (call and ticket ids come from different systems), so
// no ticket's figures move. The NUL bytes cannot occur in a ticket id (ingest refuses control
// characters), so it names no real ticket.
func CallState(callID string) string { return "\x00call\x00" + callID }

// StateID is the state an event is written to: its ticket's; for a qa_scored event the ticket's
// QA state (QAState); for an event of a call with no linked ticket, the call's (CallState). A
// linked call's events are the ticket's, which is what lets an answered call count as the
// ticket's response.
func StateID(e *tpv1.TicketEvent) string {
	if e.GetType() == tpv1.EventType_EVENT_TYPE_QA_SCORED {
		return QAState(e.GetTicketId())
	}
	if k := e.GetCall(); k != nil && IsCall(e.GetType()) && k.GetTicketId() == "" {
		return CallState(k.GetCallId())
	}
	return e.GetTicketId()
}

// callMillis converts a duration the source gave in seconds; ingest bounds it to a day, the
// clamp only guards against a producer that did not.
func callMillis(sec float64) uint32 {
	return uint32(min(max(math.Round(sec*1000), 0), math.MaxUint32))
}

// TagSep joins an event's tags.
const TagSep = "\x1f"

// KeyOf hashes an event id. It is eventorder.IDHash, so keys of stored histories stay valid.
func KeyOf(id string) uint64 { return eventorder.IDHash(id) }

// FromProto converts a canonical event.
func FromProto(e *tpv1.TicketEvent) Event {
	ev := Event{
		Key:      KeyOf(e.GetId()),
		Type:     e.GetType(),
		AtMillis: e.GetOccurredAt().AsTime().UnixMilli(),
		Sequence: e.GetSequence(),
		ActorID:  e.GetActor().GetId(),
		Actor:    e.GetActor().GetKind(),
		Assignee: e.GetAssigneeId(),
		Team:     e.GetTeamId(),
		Priority: e.GetPriority(),
		Status:   e.GetStatus(),
		Score:    uint8(e.GetSatisfaction().GetScore()),
		Channel:  e.GetChannel(),
		Tags:     strings.Join(e.GetTags(), TagSep),
	}
	if q := e.GetQa(); q != nil {
		ev.QAReview, ev.QAAgent, ev.QATeam, ev.QAAutoFail = KeyOf(q.GetReviewId()), q.GetAgentId(), q.GetTeamId(), q.GetAutoFail()
		// Ingest keeps hundredths; clamping only guards against a producer that did not.
		ev.QAScore = uint16(min(max(math.Round(q.GetScore()*100), 0), 10000))
	}
	if k := e.GetCall(); k != nil && IsCall(e.GetType()) {
		ev.CallKey, ev.CallAgent, ev.CallTeam, ev.CallQueue, ev.CallDir = KeyOf(k.GetCallId()), k.GetAgentId(), k.GetTeamId(), k.GetQueueId(), k.GetDirection()
		ev.CallWait, ev.CallTalk = callMillis(k.GetWaitSeconds()), callMillis(k.GetTalkSeconds())
		ev.CallHold, ev.CallWrapUp = callMillis(k.GetHoldSeconds()), callMillis(k.GetWrapUpSeconds())
	}
	if e.Public != nil {
		ev.Public = 1
		if e.GetPublic() {
			ev.Public = 2
		}
	}
	return ev
}

// Compare orders events the way every service orders a ticket's events (eventorder.Compare):
// by time, kind, the source's sequence, then key. Any set sorts the same way on every replica, and
// events of one instant take the order of a ticket's life, not of their ids.
func Compare(a, b *Event) int {
	return eventorder.Compare(a.orderKey(), b.orderKey())
}

// Less reports whether a sorts before b in Compare's order.
func Less(a, b *Event) bool { return Compare(a, b) < 0 }

func (e *Event) orderKey() eventorder.Key {
	return eventorder.Key{AtMillis: e.AtMillis, Type: e.Type, Sequence: e.Sequence, ID: e.Key}
}

// SLA holds first-response targets per priority. A zero target means no SLA for that priority.
// With Rules, the SLA policies of the rules file judge instead (see policySLA) and FirstResponse
// is not used.
type SLA struct {
	FirstResponse map[tpv1.Priority]time.Duration
	Rules         bool
	// Policies are the tenant's SLA policies in file order.
	Policies []*slapolicy.Policy
	// CallServiceLevel is the tenant's call service-level threshold: an inbound call answered
	// within it counts as answered in service level. 0 is DefaultCallServiceLevel.
	CallServiceLevel time.Duration
}

// DefaultCallServiceLevel is the service-level threshold of a tenant whose rules file sets none
// (the common 80/20 target's 20 seconds).
const DefaultCallServiceLevel = 20 * time.Second

func (s SLA) callServiceLevel() time.Duration {
	if s.CallServiceLevel > 0 {
		return s.CallServiceLevel
	}
	return DefaultCallServiceLevel
}

// DefaultSLA is used when no policy file is configured.
func DefaultSLA() SLA {
	return SLA{FirstResponse: map[tpv1.Priority]time.Duration{
		tpv1.Priority_PRIORITY_URGENT: time.Hour,
		tpv1.Priority_PRIORITY_HIGH:   4 * time.Hour,
		tpv1.Priority_PRIORITY_NORMAL: 8 * time.Hour,
		tpv1.Priority_PRIORITY_LOW:    24 * time.Hour,
	}}
}

// target is the first-response target for p; an unknown priority is treated as NORMAL.
func (s SLA) target(p tpv1.Priority) time.Duration {
	if p == tpv1.Priority_PRIORITY_UNSPECIFIED {
		p = tpv1.Priority_PRIORITY_NORMAL
	}
	return s.FirstResponse[p]
}
