package app

import (
	"context"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

const callRulesYAML = `tenants:
  acme:
    call_service_level: 15s
    escalation_policies:
      leads:
        levels:
          - targets: [team-lead]
    quality_rules:
      - {name: abandons, kind: kpi, scope: team, metric: call_abandon_rate, window: 1h, above: 10%, min_sample: 20, escalation: leads}
      - {name: queue-abandons, kind: kpi, scope: queue, metric: call_abandon_rate, window: 1h, above: 10%, min_sample: 20, escalation: leads}
`

// A kind: kpi rule on call_abandon_rate fires on a team's or a queue's call figures in the KPI
// stream, decoded by the running service's consumer, and resolves when they recover; call events
// on TICKETS (an abandoned call with no ticket) raise nothing by themselves, and the rules file's
// call_service_level (kpi's) is accepted.
func TestCallAbandonRule(t *testing.T) {
	for _, sc := range []struct{ scope, id, rule string }{
		{"team", "phones", "abandons"},
		{"queue", "billing-line", "queue-abandons"},
	} {
		t.Run(sc.scope, func(t *testing.T) { testCallAbandonRule(t, sc.scope, sc.id, sc.rule) })
	}
}

func testCallAbandonRule(t *testing.T, scope, id, rule string) {
	s := newStack(t, "")
	if err := os.WriteFile(s.rules, []byte(callRulesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	ctx := context.Background()
	for _, typ := range []tpv1.EventType{tpv1.EventType_EVENT_TYPE_CALL_OFFERED, tpv1.EventType_EVENT_TYPE_CALL_ABANDONED} {
		s.publish(t, &tpv1.TicketEvent{
			TicketId: "CA-1", Type: typ, OccurredAt: timestamppb.New(s.clock.now()),
			Actor: &tpv1.Actor{Kind: tpv1.ActorKind_ACTOR_KIND_SYSTEM},
			Call:  &tpv1.CallInfo{CallId: "CA-1", TeamId: "phones", QueueId: "billing-line", Direction: tpv1.CallDirection_CALL_DIRECTION_INBOUND},
		})
	}
	snapshot := func(k *tpv1.Kpis) {
		snap := &tpv1.KpiSnapshot{Tenant: "acme", Scope: scope, Id: id, ComputedAt: timestamppb.New(s.clock.now()),
			Windows: map[string]*tpv1.Kpis{"1h": k}}
		data, _ := proto.Marshal(snap)
		if _, err := s.js.Publish(ctx, "kpi.acme."+scope+"."+id, data); err != nil {
			t.Fatal(err)
		}
	}
	snapshot(&tpv1.Kpis{CallsOffered: 10, CallsAbandoned: 5, CallAbandonRate: 0.5}) // too few calls
	snapshot(&tpv1.Kpis{CallsOffered: 40, CallsAbandoned: 6, CallAbandonRate: 0.15})
	waitFor(t, "the abandon escalation", func() bool { return len(s.changes(t)) >= 1 })
	got := s.changes(t)[0]
	e := got.GetEscalation()
	if got.GetKind() != tpv1.ChangeKind_CHANGE_KIND_TRIGGERED || e.GetRule() != rule || e.GetSubjectKind() != scope || e.GetSubjectId() != id ||
		!strings.Contains(e.GetSummary(), "call abandon rate over 1h is 0.15, above 0.10 (40 calls offered)") {
		t.Errorf("first change %v, want %s triggered for %s %s", got, rule, scope, id)
	}
	snapshot(&tpv1.Kpis{CallsOffered: 60, CallsAbandoned: 3, CallAbandonRate: 0.05})
	waitFor(t, "the abandon resolution", func() bool { return len(s.changes(t)) >= 2 })
	if last := s.changes(t)[1]; last.GetKind() != tpv1.ChangeKind_CHANGE_KIND_RESOLVED || last.GetEscalation().GetRule() != rule {
		t.Errorf("after recovery: %v", last)
	}
	if n := len(s.changes(t)); n != 2 {
		t.Errorf("%d changes, want 2: %v", n, s.changes(t))
	}
}
