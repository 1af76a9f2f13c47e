package eventorder

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

func ev(id string, at time.Time, typ tpv1.EventType, seq uint64) *tpv1.TicketEvent {
	return &tpv1.TicketEvent{Id: id, OccurredAt: timestamppb.New(at), Type: typ, Sequence: seq}
}

func TestCompare(t *testing.T) {
	minute := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		give  []*tpv1.TicketEvent
		order []string
	}{
		{"created and solved in one minute: created first",
			[]*tpv1.TicketEvent{
				ev("solve", minute, tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 0),
				ev("create", minute, tpv1.EventType_EVENT_TYPE_TICKET_CREATED, 0),
			}, []string{"create", "solve"}},
		{"reply and solve in one second: the reply answers before the solve",
			[]*tpv1.TicketEvent{
				ev("solve", minute, tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 0),
				ev("reply", minute, tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, 0),
				ev("ask", minute, tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE, 0),
				ev("assign", minute, tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, 0),
				ev("rate", minute, tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, 0),
			}, []string{"assign", "ask", "reply", "solve", "rate"}},
		{"two status changes in one minute: by sequence, whatever the ids",
			[]*tpv1.TicketEvent{
				ev("a-reopen", minute, tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 9),
				ev("z-solve", minute, tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 4),
			}, []string{"z-solve", "a-reopen"}},
		{"time first, whatever the kind",
			[]*tpv1.TicketEvent{
				ev("create", minute.Add(time.Millisecond), tpv1.EventType_EVENT_TYPE_TICKET_CREATED, 0),
				ev("rate", minute, tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, 0),
			}, []string{"rate", "create"}},
		{"unknown type after every known one",
			[]*tpv1.TicketEvent{
				ev("new", minute, tpv1.EventType(99), 0),
				ev("rate", minute, tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, 0),
			}, []string{"rate", "new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sorted(tt.give)
			if !slices.Equal(got, tt.order) {
				t.Fatalf("order %v, want %v", got, tt.order)
			}
		})
	}
}

func sorted(evs []*tpv1.TicketEvent) []string {
	evs = slices.Clone(evs)
	slices.SortFunc(evs, func(a, b *tpv1.TicketEvent) int { return Compare(Of(a), Of(b)) })
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.GetId()
	}
	return ids
}

// Any arrival order of a history full of equal times sorts to one order, and only the same
// event compares equal to itself.
func TestCompareIsTotalOnShuffledHistories(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for round := range 200 {
		var evs []*tpv1.TicketEvent
		for i := range 2 + r.IntN(30) {
			at := base.Add(time.Duration(r.IntN(3)) * time.Minute)
			evs = append(evs, ev(string(rune('a'+i%26))+string(rune('0'+i/26)), at, tpv1.EventType(1+r.IntN(7)), uint64(r.IntN(3))))
		}
		want := sorted(evs)
		for range 5 {
			r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
			if got := sorted(evs); !slices.Equal(got, want) {
				t.Fatalf("round %d: a shuffle sorted to %v, want %v", round, got, want)
			}
		}
		for i := range evs {
			for j := range evs {
				if (Compare(Of(evs[i]), Of(evs[j])) == 0) != (i == j) {
					t.Fatalf("round %d: %q and %q compare equal", round, evs[i].GetId(), evs[j].GetId())
				}
			}
		}
	}
}
