// Package contrib computes a ticket's KPI contribution as a pure function of the set of its events
// (DESIGN.md §4, §5). Because the result depends only on the set, delivering the same events in any
// order, with any duplicates, yields the same contribution; the write path stores the contribution
// it applied and moves only the difference into the KPI buckets.
package contrib

import (
	"hash/fnv"
	"strings"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
)

// Event is the part of a TicketEvent the KPI math needs, in a compact form.
type Event struct {
	// Key is a 64-bit hash of the event id: the identity used for deduplication and ordering ties.
	Key      uint64
	Type     tpv1.EventType
	AtMillis int64
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
}

// TagSep joins an event's tags.
const TagSep = "\x1f"

// KeyOf hashes an event id.
func KeyOf(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// FromProto converts a canonical event.
func FromProto(e *tpv1.TicketEvent) Event {
	ev := Event{
		Key:      KeyOf(e.GetId()),
		Type:     e.GetType(),
		AtMillis: e.GetOccurredAt().AsTime().UnixMilli(),
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
	if e.Public != nil {
		ev.Public = 1
		if e.GetPublic() {
			ev.Public = 2
		}
	}
	return ev
}

// Less orders events by time, then by key, so every replica sorts a set the same way.
func Less(a, b *Event) bool {
	if a.AtMillis != b.AtMillis {
		return a.AtMillis < b.AtMillis
	}
	return a.Key < b.Key
}

// SLA holds first-response targets per priority. A zero target means no SLA for that priority.
// With Rules, the SLA policies of the rules file judge instead (see policySLA) and FirstResponse
// is not used.
type SLA struct {
	FirstResponse map[tpv1.Priority]time.Duration
	Rules         bool
	// Policies are the tenant's SLA policies in file order.
	Policies []*slapolicy.Policy
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
