package contrib

import (
	"testing"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// TestStateID checks the one routing of events to states with both families in it: a ticket's
// own events, its QA reviews, a call linked to it and a call linked to none each land where the
// write path keeps them, and the same id used as ticket, review ticket and call id never makes
// two of them share a state.
func TestStateID(t *testing.T) {
	review := &tpv1.QaReview{ReviewId: "r-1", AgentId: "ana", Score: 90}
	linked := &tpv1.CallInfo{CallId: "X-1", TicketId: "X-1", Direction: inbound}
	unlinked := &tpv1.CallInfo{CallId: "X-1", Direction: inbound}
	tests := []struct {
		name string
		give *tpv1.TicketEvent
		want string
	}{
		{"ticket event", &tpv1.TicketEvent{TicketId: "X-1", Type: created}, "X-1"},
		{"QA review", &tpv1.TicketEvent{TicketId: "X-1", Type: qaScored, Qa: review}, QAState("X-1")},
		{"call linked to the ticket", &tpv1.TicketEvent{TicketId: "X-1", Type: answered, Call: linked}, "X-1"},
		{"call with no ticket", &tpv1.TicketEvent{TicketId: "X-1", Type: offered, Call: unlinked}, CallState("X-1")},
		{"call with no ticket, ended", &tpv1.TicketEvent{TicketId: "X-1", Type: ended, Call: unlinked}, CallState("X-1")},
		// The type decides, not a stray member: ingest refuses both, a producer that did not
		// must not move a ticket event out of its ticket.
		{"call member on a review", &tpv1.TicketEvent{TicketId: "X-1", Type: qaScored, Qa: review, Call: unlinked}, QAState("X-1")},
		{"call member on a ticket event", &tpv1.TicketEvent{TicketId: "X-1", Type: created, Call: unlinked}, "X-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StateID(tt.give); got != tt.want {
				t.Errorf("StateID = %q, want %q", got, tt.want)
			}
		})
	}
	if ids := map[string]bool{"X-1": true, QAState("X-1"): true, CallState("X-1"): true}; len(ids) != 3 {
		t.Errorf("ticket, QA and call states share an id: %v", ids)
	}
}
