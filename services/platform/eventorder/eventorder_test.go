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
				ev("qa", minute, tpv1.EventType_EVENT_TYPE_QA_SCORED, 0),
				ev("rate", minute, tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, 0),
			}, []string{"rate", "qa", "new"}},
		{"a call answered in the minute the ticket was created answers after the creation",
			[]*tpv1.TicketEvent{
				ev("a-answer", minute, tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 0),
				ev("b-offer", minute, tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 0),
				ev("z-create", minute, tpv1.EventType_EVENT_TYPE_TICKET_CREATED, 0),
			}, []string{"z-create", "b-offer", "a-answer"}},
		{"a call answered with the customer's message and the solve: message, answer, solve",
			[]*tpv1.TicketEvent{
				ev("a-solve", minute, tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 0),
				ev("b-answer", minute, tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 0),
				ev("c-ask", minute, tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE, 0),
			}, []string{"c-ask", "b-answer", "a-solve"}},
		{"a call's own events: offer, answer, end; the agent's note after them",
			[]*tpv1.TicketEvent{
				ev("a-note", minute, tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, 0),
				ev("b-end", minute, tpv1.EventType_EVENT_TYPE_CALL_ENDED, 0),
				ev("c-answer", minute, tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 0),
				ev("d-offer", minute, tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 0),
				ev("e-assign", minute, tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, 0),
			}, []string{"e-assign", "d-offer", "c-answer", "b-end", "a-note"}},
		{"an abandon after the offer, before the end",
			[]*tpv1.TicketEvent{
				ev("a-end", minute, tpv1.EventType_EVENT_TYPE_CALL_ENDED, 0),
				ev("b-abandon", minute, tpv1.EventType_EVENT_TYPE_CALL_ABANDONED, 0),
				ev("c-offer", minute, tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 0),
			}, []string{"c-offer", "b-abandon", "a-end"}},
		{"two answers of one instant (a redelivery under a new id, a transfer): by sequence",
			[]*tpv1.TicketEvent{
				ev("a-second", minute, tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 2),
				ev("z-first", minute, tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 1),
			}, []string{"z-first", "a-second"}},
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
			evs = append(evs, ev(string(rune('a'+i%26))+string(rune('0'+i/26)), at, tpv1.EventType(1+r.IntN(13)), uint64(r.IntN(3))))
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

// The ranks of the ticket events are those they had before calls and reviews were ranked, every
// type the protocol defines has a rank of its own before the unknown one, and a type added to the
// protocol without a rank fails here instead of sorting last unnoticed.
func TestRank(t *testing.T) {
	want := []struct {
		typ  tpv1.EventType
		rank int
	}{
		{tpv1.EventType_EVENT_TYPE_TICKET_CREATED, 0},
		{tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, 1},
		{tpv1.EventType_EVENT_TYPE_PRIORITY_CHANGED, 1},
		{tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE, 2},
		{tpv1.EventType_EVENT_TYPE_CALL_OFFERED, 3},
		{tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, 4},
		{tpv1.EventType_EVENT_TYPE_CALL_ABANDONED, 5},
		{tpv1.EventType_EVENT_TYPE_CALL_ENDED, 6},
		{tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, 7},
		{tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 8},
		{tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, 9},
		{tpv1.EventType_EVENT_TYPE_QA_SCORED, 10},
		{tpv1.EventType(99), 11},
	}
	ranked := map[tpv1.EventType]bool{}
	for _, w := range want {
		if got := Rank(w.typ); got != w.rank {
			t.Errorf("Rank(%s) = %d, want %d", w.typ, got, w.rank)
		}
		ranked[w.typ] = true
	}
	unknown := Rank(tpv1.EventType(99))
	for n := range tpv1.EventType_name {
		typ := tpv1.EventType(n)
		if typ == tpv1.EventType_EVENT_TYPE_UNSPECIFIED {
			continue
		}
		if !ranked[typ] || Rank(typ) >= unknown {
			t.Errorf("%s has no explicit rank here (Rank %d, unknown %d)", typ, Rank(typ), unknown)
		}
	}
}
