package engine

import (
	"context"
	"strings"
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

// policyHorizonRules route four teams' SLA breaches to four escalation policies: one with the
// service's horizon (none of its own), one looking back a week, one an hour, one raising
// everything.
const policyHorizonRules = `tenants:
  acme:
    escalation_policies:
      flag: {levels: [{targets: [team-lead]}]}
      week: {levels: [{targets: [team-lead]}], history_horizon: 7d}
      hour: {levels: [{targets: [team-lead]}], history_horizon: 1h}
      always: {levels: [{targets: [team-lead]}], history_horizon: 0}
    sla_policies:
      - {name: flag, match: {team: flag}, escalation: flag, at_risk: off, targets: {default: {first_response: 1h}}}
      - {name: week, match: {team: week}, escalation: week, at_risk: off, targets: {default: {first_response: 1h}}}
      - {name: hour, match: {team: hour}, escalation: hour, at_risk: off, targets: {default: {first_response: 1h}}}
      - {name: always, match: {team: always}, escalation: always, at_risk: off, targets: {default: {first_response: 1h}}}
`

// The same breach is history for one escalation policy and live for another: a first response
// 71 hours overdue is raised by the policies looking back a week or raising everything, and
// counted as historical by the one with the service's 24 h and the one of an hour; a breach 90
// minutes old is raised with the service's horizon but historical with an hour. A reload that
// gives a policy history_horizon 0 raises its historical breach at the ticket's next judgement.
func TestHistoryHorizonPerPolicy(t *testing.T) {
	f := newFixture(t, policyHorizonRules)
	rules := ruleset(t, policyHorizonRules)
	var mu sync.Mutex
	counted := 0
	f.engine = New(f.rdb, escalationstore.New(f.rdb, time.Hour), f.queue, f.pub, rules, func() time.Time { return f.now },
		Options{TicketRetention: 24 * time.Hour, HistoryHorizon: 24 * time.Hour, OnHistorical: func(string) {
			mu.Lock()
			counted++
			mu.Unlock()
		}}, quiet)
	ctx := context.Background()
	inTeam := func(id, ticket, team string, at time.Time) *tpv1.TicketEvent {
		e := created(id, ticket, at)
		e.TeamId = team
		return e
	}
	threeDays, twoAndAHalfHours := f.now.Add(-72*time.Hour), f.now.Add(-150*time.Minute)
	var evs []*tpv1.TicketEvent
	for _, team := range []string{"flag", "week", "hour", "always"} {
		evs = append(evs, inTeam("old-"+team, "T-old-"+team, team, threeDays), inTeam("new-"+team, "T-new-"+team, team, twoAndAHalfHours))
	}
	if err := f.engine.Tickets(ctx, evs); err != nil {
		t.Fatal(err)
	}
	raised := func(ticket string) bool {
		t.Helper()
		rec, err := f.engine.Store().Current(ctx, "acme", rulesfile.RuleFirstResponse,
			escalationstore.Subject{Kind: escalationstore.Ticket, ID: ticket})
		if err != nil {
			t.Fatal(err)
		}
		return rec != nil
	}
	want := map[string]bool{
		"T-old-flag": false, "T-old-week": true, "T-old-hour": false, "T-old-always": true,
		"T-new-flag": true, "T-new-week": true, "T-new-hour": false, "T-new-always": true,
	}
	for ticket, w := range want {
		if got := raised(ticket); got != w {
			t.Errorf("%s raised = %v, want %v", ticket, got, w)
		}
	}
	if n := f.stored(t); n != 5 {
		t.Errorf("%d changes published, want the 5 raised escalations' triggers", n)
	}
	mu.Lock()
	if counted != 3 {
		t.Errorf("%d historical breaches counted, want 3 (T-old-flag, T-old-hour, T-new-hour)", counted)
	}
	mu.Unlock()

	// The flag policy now raises everything: T-old-flag's next judgement raises its breach, while
	// the hour policy, unchanged, still keeps T-old-hour's as history.
	rules.Store(ruleset(t, strings.Replace(policyHorizonRules, "flag: {levels: [{targets: [team-lead]}]}",
		"flag: {levels: [{targets: [team-lead]}], history_horizon: 0}", 1)).Load())
	msg := func(id, ticket string) *tpv1.TicketEvent {
		e := created(id, ticket, f.now.Add(-time.Minute))
		e.Type = tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE
		return e
	}
	if err := f.engine.Tickets(ctx, []*tpv1.TicketEvent{msg("m-flag", "T-old-flag"), msg("m-hour", "T-old-hour")}); err != nil {
		t.Fatal(err)
	}
	if !raised("T-old-flag") {
		t.Error("T-old-flag not raised after its policy's history_horizon became 0")
	}
	if raised("T-old-hour") {
		t.Error("T-old-hour raised, but its policy's horizon did not change")
	}
	if n := f.stored(t); n != 6 {
		t.Errorf("%d changes published, want 6 (T-old-flag's trigger added)", n)
	}
}
