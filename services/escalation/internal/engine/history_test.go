package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
)

// A deadline escalation planned a timer for is raised even when the timer is handled days late
// (the service was down): it knew of the deadline before it passed. A ticket of the same age
// learned of only now is historical: counted, not raised.
func TestLateTimerIsNotHistory(t *testing.T) {
	f := newFixture(t, testRules)
	var mu sync.Mutex
	counted := map[string]int{}
	f.engine = New(f.rdb, escalationstore.New(f.rdb, time.Hour), f.queue, f.pub, ruleset(t, testRules), func() time.Time { return f.now },
		Options{TicketRetention: 24 * time.Hour, HistoryHorizon: 24 * time.Hour, OnHistorical: func(kind string) {
			mu.Lock()
			counted[kind]++
			mu.Unlock()
		}}, quiet)
	ctx := context.Background()
	if err := f.engine.Tickets(ctx, []*tpv1.TicketEvent{created("e1", "T-1", f.now.Add(-30*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(72 * time.Hour)
	if err := f.engine.Tickets(ctx, []*tpv1.TicketEvent{created("e2", "T-old", f.now.Add(-72*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	cs, err := f.queue.Claim(ctx, f.now)
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim: %v %v, want T-1's timer", err, cs)
	}
	if errs := f.engine.Fire(ctx, cs); errs[0] != nil {
		t.Fatal(errs[0])
	}
	subj := func(id string) escalationstore.Subject {
		return escalationstore.Subject{Kind: escalationstore.Ticket, ID: id}
	}
	rec, err := f.engine.Store().Current(ctx, "acme", rulesfile.RuleFirstResponse, subj("T-1"))
	if err != nil || rec == nil {
		t.Fatalf("T-1's breach, judged 72h late by its timer: %v %v, want raised", err, rec)
	}
	rec, err = f.engine.Store().Current(ctx, "acme", rulesfile.RuleFirstResponse, subj("T-old"))
	if err != nil || rec != nil {
		t.Fatalf("T-old's breach, learned of 71h after it: %v %+v, want none", err, rec)
	}
	if n := f.stored(t); n != 1 {
		t.Errorf("%d changes published, want T-1's trigger only", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if counted[rulesfile.RuleFirstResponse] != 1 || len(counted) != 1 {
		t.Errorf("historical breaches %v, want one of %s", counted, rulesfile.RuleFirstResponse)
	}
}
