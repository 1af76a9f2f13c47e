package judge

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
)

// Sources with minute or second precision stamp many events of a ticket with one time. The
// ids below sort against the true order on purpose: only the kind and the source's sequence
// may decide (docs/architecture.md, "Events at the same instant").

func reopenRule() []*rulesfile.QualityRule {
	return []*rulesfile.QualityRule{{Name: "reopened", Kind: rulesfile.KindReopens, MinReopens: 1, Severity: warning, Escalation: "default"}}
}

func ids(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// A ticket created and solved in the same minute, then closed days later, was solved at once:
// the creation comes first, the resolution clock stops at 0 and nothing reopened.
func TestCreatedAndSolvedInOneMinute(t *testing.T) {
	events := []Event{
		{ID: "m-closed", Type: status, At: m(72 * time.Hour), ActorKind: agent, Status: tpv1.TicketStatus_TICKET_STATUS_CLOSED, Priority: urgent},
		{ID: "a-solved", Type: status, At: m(0), ActorKind: agent, Status: solvedS, Priority: urgent},
		{ID: "z-created", Type: created, At: m(0), ActorKind: customer, Status: tpv1.TicketStatus_TICKET_STATUS_NEW, Priority: urgent},
	}
	if got, want := ids(ordered(events)), []string{"z-created", "a-solved", "m-closed"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	tn := tenant(urgentPolicy())
	tn.Quality = reopenRule()
	j := Ticket("T-1", events, tn, m(73*time.Hour))
	for _, rule := range []string{rulesfile.RuleFirstResponse, rulesfile.RuleNextResponse, rulesfile.RuleResolution, "reopened"} {
		if c := cond(t, j, rule); c.Active {
			t.Errorf("%s active: %s", rule, c.Summary)
		}
	}
	c := replay(describe("T-1", ordered(events)), ordered(events), urgentPolicy())
	if !c.Resolved || c.Resolution.Used != 0 {
		t.Errorf("resolution clock %+v resolved %v; want stopped at 0", c.Resolution, c.Resolved)
	}
	if !j.Wake.IsZero() {
		t.Errorf("wake %v for a closed ticket", j.Wake)
	}
}

// A reply and the solve in the same second: the reply came first, so the first response was
// met (after 10 minutes) before the ticket was solved.
func TestReplyAndSolveInOneSecond(t *testing.T) {
	events := []Event{
		{ID: "z-created", Type: created, At: m(0), ActorKind: customer, Priority: urgent},
		{ID: "a-solve", Type: status, At: m(10 * time.Minute), ActorKind: agent, Status: solvedS, Priority: urgent},
		{ID: "b-reply", Type: agentMsg, At: m(10 * time.Minute), ActorKind: agent, Public: true, Priority: urgent},
	}
	if got, want := ids(ordered(events)), []string{"z-created", "b-reply", "a-solve"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	j := Ticket("T-1", events, tenant(urgentPolicy()), m(10*time.Hour))
	for _, rule := range []string{rulesfile.RuleFirstResponse, rulesfile.RuleNextResponse, rulesfile.RuleResolution} {
		if c := cond(t, j, rule); c.Active {
			t.Errorf("%s active: %s", rule, c.Summary)
		}
	}
	c := replay(describe("T-1", ordered(events)), ordered(events), urgentPolicy())
	if !c.FirstDone || c.First.Used != 10*time.Minute || !c.Resolved || c.Resolution.Used != 10*time.Minute {
		t.Errorf("clocks %+v; want first response and resolution stopped at 10m", c)
	}
}

// A customer's message and the agent's answer in the same second: the answer answers it, so
// no next response is owed.
func TestMessageAndAnswerInOneSecond(t *testing.T) {
	events := evs{}.add(created, 0).add(agentMsg, 10*time.Minute)
	events = append(events,
		Event{ID: "z-ask", Type: custMsg, At: m(2 * time.Hour), ActorKind: customer, Priority: urgent},
		Event{ID: "a-answer", Type: agentMsg, At: m(2 * time.Hour), ActorKind: agent, Public: true, Priority: urgent},
	)
	j := Ticket("T-1", events, tenant(urgentPolicy()), m(4*time.Hour))
	if c := cond(t, j, rulesfile.RuleNextResponse); c.Active {
		t.Errorf("next response active: %s", c.Summary)
	}
}

// Two status changes in one minute are ordered by the source's sequence, whatever their ids:
// solve (4) then reopen (9) leaves the ticket open, reopened once, its resolution clock
// running; with the sequences swapped the ticket is solved.
func TestStatusChangesInOneMinuteBySequence(t *testing.T) {
	history := func(solveSeq, reopenSeq uint64) []Event {
		return []Event{
			{ID: "c", Type: created, At: m(0), ActorKind: customer, Priority: urgent},
			{ID: "r", Type: agentMsg, At: m(5 * time.Minute), ActorKind: agent, Public: true, Priority: urgent},
			{ID: "z-solve", Type: status, At: m(time.Hour), Sequence: solveSeq, ActorKind: agent, Status: solvedS, Priority: urgent},
			{ID: "a-reopen", Type: status, At: m(time.Hour), Sequence: reopenSeq, ActorKind: customer, Status: open, Priority: urgent},
		}
	}
	tests := []struct {
		name                 string
		solveSeq, reopenSeq  uint64
		wantStatus           tpv1.TicketStatus
		wantReopened, breach bool
	}{
		{"solve 4, reopen 9: open", 4, 9, open, true, true},
		{"solve 9, reopen 4: solved", 9, 4, solvedS, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := history(tt.solveSeq, tt.reopenSeq)
			if tk := describe("T-1", ordered(events)); tk.status != tt.wantStatus {
				t.Errorf("status %v, want %v", tk.status, tt.wantStatus)
			}
			tn := tenant(urgentPolicy())
			tn.Quality = reopenRule()
			j := Ticket("T-1", events, tn, m(9*time.Hour))
			if c := cond(t, j, "reopened"); c.Active != tt.wantReopened {
				t.Errorf("reopened active %v, want %v (%s)", c.Active, tt.wantReopened, c.Summary)
			}
			c := cond(t, j, rulesfile.RuleResolution)
			if c.Active != tt.breach || tt.breach && (c.Severity != critical || fact(c, "elapsed") != "9h0m0s") {
				t.Errorf("resolution %+v, want breached %v", c, tt.breach)
			}
		})
	}
}

// randomHistory is a ticket history with many equal times (four instants for up to 30 events)
// and sequences that often tie too.
func randomHistory(r *rand.Rand) []Event {
	types := []tpv1.EventType{created, agentMsg, custMsg, status, status, rated,
		tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, tpv1.EventType_EVENT_TYPE_PRIORITY_CHANGED}
	statuses := []tpv1.TicketStatus{open, pending, solvedS, tpv1.TicketStatus_TICKET_STATUS_CLOSED, tpv1.TicketStatus_TICKET_STATUS_ON_HOLD}
	kinds := []tpv1.ActorKind{agent, customer, bot}
	instants := []time.Duration{0, time.Minute, time.Hour, 9 * time.Hour}
	n := 2 + r.IntN(29)
	evs := make([]Event, n)
	for i := range evs {
		e := Event{
			ID: fmt.Sprintf("e%02d", i), Type: types[r.IntN(len(types))], At: m(instants[r.IntN(len(instants))]),
			Sequence: uint64(r.IntN(3)), ActorKind: kinds[r.IntN(len(kinds))], Public: r.IntN(4) > 0, Priority: urgent,
			Assignee: []string{"", "ana", "bo"}[r.IntN(3)],
		}
		switch e.Type {
		case status:
			e.Status = statuses[r.IntN(len(statuses))]
		case rated:
			e.Score = int32(1 + r.IntN(5))
		case tpv1.EventType_EVENT_TYPE_PRIORITY_CHANGED:
			e.Priority = []tpv1.Priority{urgent, low}[r.IntN(2)]
		}
		evs[i] = e
	}
	return evs
}

// Any arrival order of a history full of equal times, with duplicates, is judged the same:
// the same escalations are raised and resolved, with the same facts and wake-up.
func TestSameInstantShuffleProperty(t *testing.T) {
	tn := tenant(urgentPolicy())
	tn.Quality = []*rulesfile.QualityRule{
		{Name: "bad-rating", Kind: rulesfile.KindBadRating, MaxScore: 2, Severity: critical, Escalation: "default"},
		{Name: "reopened", Kind: rulesfile.KindReopens, MinReopens: 1, Severity: warning, Escalation: "default"},
	}
	r := rand.New(rand.NewPCG(13, 7))
	active, inactive := 0, 0
	for round := range 300 {
		events := randomHistory(r)
		for _, now := range []time.Duration{30 * time.Second, 2 * time.Minute, 5 * time.Hour, 20 * time.Hour} {
			want := Ticket("T-1", events, tn, m(now))
			for _, c := range want.Conditions {
				if c.Active {
					active++
				} else {
					inactive++
				}
			}
			for range 10 {
				shuffled := slices.Clone(events)
				shuffled = append(shuffled, shuffled[r.IntN(len(shuffled))]) // a redelivery
				r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				if got := Ticket("T-1", shuffled, tn, m(now)); !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d at %s: a shuffled delivery of %+v judged\n%+v\nwant\n%+v", round, now, events, got, want)
				}
			}
		}
	}
	// The histories must exercise both verdicts, or the property says nothing.
	if active == 0 || inactive == 0 {
		t.Fatalf("%d active and %d inactive conditions over all rounds; want both", active, inactive)
	}
}
