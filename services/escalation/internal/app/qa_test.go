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

const qaRulesYAML = `tenants:
  acme:
    escalation_policies:
      leads:
        levels:
          - targets: [team-lead]
    quality_rules:
      - {name: low-qa, kind: kpi, scope: team, metric: qa_score_mean, window: 7d, below: 80, min_sample: 5, escalation: leads}
      - {name: qa-fails, kind: kpi, metric: qa_auto_fail_rate, window: 7d, above: 20%, min_sample: 5, escalation: leads}
`

// A kind: kpi rule on qa_score_mean fires on the team's QA figures in the KPI stream and
// resolves when they recover; a qa_scored event on TICKETS raises nothing by itself.
func TestQAScoreRule(t *testing.T) {
	s := newStack(t, "")
	if err := os.WriteFile(s.rules, []byte(qaRulesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	ctx := context.Background()
	s.publish(t, &tpv1.TicketEvent{
		TicketId: "Q-1", Type: tpv1.EventType_EVENT_TYPE_QA_SCORED, OccurredAt: timestamppb.New(s.clock.now()),
		Actor: &tpv1.Actor{Id: "lead", Kind: tpv1.ActorKind_ACTOR_KIND_AGENT},
		Qa:    &tpv1.QaReview{ReviewId: "r1", AgentId: "ana", TeamId: "billing", Score: 12, AutoFail: true},
	})
	snapshot := func(scope, id string, k *tpv1.Kpis) {
		snap := &tpv1.KpiSnapshot{Tenant: "acme", Scope: scope, Id: id, ComputedAt: timestamppb.New(s.clock.now()),
			Windows: map[string]*tpv1.Kpis{"7d": k}}
		data, _ := proto.Marshal(snap)
		if _, err := s.js.Publish(ctx, "kpi.acme."+scope+"."+id, data); err != nil {
			t.Fatal(err)
		}
	}
	snapshot("team", "billing", &tpv1.Kpis{QaScore: &tpv1.ScoreStats{Count: 4, Mean: 50}}) // too few reviews
	snapshot("team", "billing", &tpv1.Kpis{QaScore: &tpv1.ScoreStats{Count: 12, Mean: 72.5}, QaAutoFailRate: 0.05})
	waitFor(t, "the QA escalation", func() bool { return len(s.changes(t)) >= 1 })
	got := s.changes(t)[0]
	e := got.GetEscalation()
	if got.GetKind() != tpv1.ChangeKind_CHANGE_KIND_TRIGGERED || e.GetRule() != "low-qa" || e.GetSubjectKind() != "team" || e.GetSubjectId() != "billing" ||
		!strings.Contains(e.GetSummary(), "QA score mean over 7d is 72.5, below 80.0 (12 reviews)") {
		t.Errorf("first change %v, want low-qa triggered for team billing", got)
	}
	snapshot("agent", "ana", &tpv1.Kpis{QaScore: &tpv1.ScoreStats{Count: 6, Mean: 90}, QaAutoFailRate: 2.0 / 6})
	waitFor(t, "the auto-fail escalation", func() bool { return len(s.changes(t)) >= 2 })
	if e := s.changes(t)[1].GetEscalation(); e.GetRule() != "qa-fails" || e.GetSubjectId() != "ana" ||
		!strings.Contains(e.GetSummary(), "QA auto-fail rate over 7d is 0.33, above 0.20 (6 reviews)") {
		t.Errorf("second change %v, want qa-fails for agent ana", s.changes(t)[1])
	}
	snapshot("team", "billing", &tpv1.Kpis{QaScore: &tpv1.ScoreStats{Count: 14, Mean: 84}})
	waitFor(t, "the QA resolution", func() bool { return len(s.changes(t)) >= 3 })
	if last := s.changes(t)[2]; last.GetKind() != tpv1.ChangeKind_CHANGE_KIND_RESOLVED || last.GetEscalation().GetRule() != "low-qa" {
		t.Errorf("after recovery: %v", last)
	}
	if n := len(s.changes(t)); n != 3 {
		t.Errorf("%d changes, want 3: %v", n, s.changes(t))
	}
}
