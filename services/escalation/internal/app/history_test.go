package app

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
)

const historyRules = rulesYAML + `      - name: reopened
        kind: reopens
        min_reopens: 1
        escalation: leads
`

// historicals reads escalation_historical_breaches_total by rule kind from the admin endpoint.
func historicals(t *testing.T, r *servicetest.Running) map[string]int {
	t.Helper()
	out := map[string]int{}
	for kind, v := range servicetest.MetricSum(t, r.HTTPClient(), r.AdminURL("/metrics"), "escalation_historical_breaches_total", "kind") {
		out[kind] = int(v)
	}
	return out
}

func ev(ticket string, typ tpv1.EventType, at time.Time, f func(*tpv1.TicketEvent)) *tpv1.TicketEvent {
	e := &tpv1.TicketEvent{TicketId: ticket, Type: typ, OccurredAt: timestamppb.New(at),
		Actor: &tpv1.Actor{Id: "cust", Kind: tpv1.ActorKind_ACTOR_KIND_CUSTOMER}}
	if f != nil {
		f(e)
	}
	return e
}

func setStatus(s tpv1.TicketStatus) func(*tpv1.TicketEvent) {
	return func(e *tpv1.TicketEvent) {
		e.Status = s
		e.Actor = &tpv1.Actor{Id: "ana", Kind: tpv1.ActorKind_ACTOR_KIND_AGENT}
	}
}

// Importing 30 days of history raises nothing: every rule kind's breach older than the horizon
// is counted as historical, never raised or published; while a ticket of two hours ago, one
// whose deadline is still ahead and a breach 23 hours old escalate as they always did.
func TestHistoryDoesNotPageAnyone(t *testing.T) {
	s := newStack(t, "")
	if err := os.WriteFile(s.rules, []byte(historyRules), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := s.config()
	cfg.HistoryHorizon = 24 * time.Hour
	cfg.TicketRetention = 45 * 24 * time.Hour
	r := s.run(t, cfg)
	client := tpv1.NewEscalationServiceClient(r.DialAs(s.tenants.Acme))
	ctx := context.Background()
	now := s.clock.now()

	solved, open := tpv1.TicketStatus_TICKET_STATUS_SOLVED, tpv1.TicketStatus_TICKET_STATUS_OPEN
	for d := 2; d <= 30; d++ {
		at := now.Add(-time.Duration(d) * 24 * time.Hour)
		// No answer: first response and resolution breached.
		s.publish(t, createdAgo(fmt.Sprintf("H-first-%d", d), at, 0))
		// Answered, then the customer wrote again and waits: next response breached.
		nr := fmt.Sprintf("H-next-%d", d)
		s.publish(t, createdAgo(nr, at, 0), reply(nr, at.Add(10*time.Minute)),
			ev(nr, tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE, at.Add(20*time.Minute), nil))
		// Solved in time, then rated badly, reopened and solved again.
		q := fmt.Sprintf("H-quality-%d", d)
		s.publish(t, createdAgo(q, at, 0), reply(q, at.Add(10*time.Minute)),
			ev(q, tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, at.Add(30*time.Minute), setStatus(solved)),
			ev(q, tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, at.Add(40*time.Minute), func(e *tpv1.TicketEvent) {
				e.Satisfaction = &tpv1.Satisfaction{Score: 1, Comment: "too slow"}
			}),
			ev(q, tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, at.Add(50*time.Minute), setStatus(open)),
			reply(q, at.Add(55*time.Minute)),
			ev(q, tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, at.Add(time.Hour), setStatus(solved)))
	}
	// Live: created two hours ago (breached an hour ago), 23 hours past its deadline (inside the
	// horizon), and one whose deadline is still 20 minutes ahead.
	s.publish(t, createdAgo("L-two-hours", now, 2*time.Hour), createdAgo("L-23h", now, 24*time.Hour),
		createdAgo("L-later", now, 40*time.Minute))

	triggered := func() map[string]bool {
		out := map[string]bool{}
		for _, c := range s.changes(t) {
			if c.GetKind() == tpv1.ChangeKind_CHANGE_KIND_TRIGGERED {
				out[c.GetEscalation().GetSubjectId()+"/"+c.GetEscalation().GetRule()] = true
			}
		}
		return out
	}
	waitFor(t, "the live tickets' escalations", func() bool {
		tr := triggered()
		return tr["L-two-hours/sla-first-response"] && tr["L-23h/sla-first-response"]
	})
	for _, c := range s.changes(t) {
		if id := c.GetEscalation().GetSubjectId(); !strings.HasPrefix(id, "L-") {
			t.Errorf("history published %v of %s: %s", c.GetKind(), id, c.GetEscalation().GetSummary())
		}
	}
	// L-later's deadline is ahead: it breaches when the clock passes it.
	s.clock.advance(25 * time.Minute)
	waitFor(t, "L-later's breach", func() bool {
		for _, c := range s.changes(t) {
			e := c.GetEscalation()
			if e.GetSubjectId() == "L-later" && e.GetRule() == "sla-first-response" && e.GetSeverity() == tpv1.Severity_SEVERITY_CRITICAL {
				return true
			}
		}
		return false
	})

	want := map[string]int{"sla-first-response": 29, "sla-next-response": 29, "sla-resolution": 29, "bad_rating": 29, "reopens": 29}
	waitFor(t, "every historical breach counted", func() bool {
		got := historicals(t, r)
		for k, n := range want {
			if got[k] < n {
				return false
			}
		}
		return true
	})
	list, err := client.ListEscalations(ctx, &tpv1.ListEscalationsRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list.GetEscalations() {
		if !strings.HasPrefix(e.GetSubjectId(), "L-") {
			t.Errorf("history raised %s of %s", e.GetRule(), e.GetSubjectId())
		}
	}
	if len(list.GetEscalations()) == 0 {
		t.Error("no escalations listed: the live tickets' are missing")
	}
}

// perPolicyRules route the archive team's SLA breaches to a policy that looks back 30 days and
// every other team's to one with the service's horizon.
const perPolicyRules = `tenants:
  acme:
    escalation_policies:
      leads: {levels: [{targets: [team-lead]}]}
      archive: {levels: [{targets: [archivist]}], history_horizon: 30d}
    sla_policies:
      - {name: archive, match: {team: archive}, escalation: archive, at_risk: off, targets: {default: {first_response: 1h}}}
      - {name: standard, escalation: leads, at_risk: off, targets: {default: {first_response: 1h}}}
`

// Two escalation policies with different history_horizon treat the same three-day-old breach
// differently: the one looking back 30 days raises it, the one with -history-horizon (24h) counts
// it as history. A reloaded file that sets the second's history_horizon to 0 raises its breach
// at the ticket's next event.
func TestHistoryHorizonPerPolicy(t *testing.T) {
	s := newStack(t, "")
	if err := os.WriteFile(s.rules, []byte(perPolicyRules), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := s.config()
	cfg.HistoryHorizon = 24 * time.Hour
	cfg.TicketRetention = 45 * 24 * time.Hour
	r := s.run(t, cfg)
	now := s.clock.now()
	archived, standard := createdAgo("P-archive", now, 72*time.Hour), createdAgo("P-standard", now, 72*time.Hour)
	archived.TeamId = "archive"
	s.publish(t, archived, standard)

	triggered := func() []string {
		var out []string
		for _, c := range s.changes(t) {
			if c.GetKind() == tpv1.ChangeKind_CHANGE_KIND_TRIGGERED {
				out = append(out, c.GetEscalation().GetSubjectId()+"/"+c.GetEscalation().GetLabels()["targets"])
			}
		}
		return out
	}
	waitFor(t, "P-standard's breach counted as history", func() bool { return historicals(t, r)["sla-first-response"] >= 1 })
	waitFor(t, "P-archive's breach raised", func() bool { return len(triggered()) >= 1 })
	if got := strings.Join(triggered(), " "); got != "P-archive/archivist" {
		t.Fatalf("triggered %s, want P-archive's only", got)
	}

	// The reload applies from each ticket's next judgement on, as any changed rule does.
	tmp := s.rules + ".new"
	if err := os.WriteFile(tmp, []byte(strings.Replace(perPolicyRules, "leads: {levels: [{targets: [team-lead]}]}",
		"leads: {levels: [{targets: [team-lead]}], history_horizon: 0}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.rules); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "P-standard raised under the reloaded horizon", func() bool {
		s.publish(t, ev("P-standard", tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE, s.clock.now(), nil))
		time.Sleep(100 * time.Millisecond)
		return slices.Contains(triggered(), "P-standard/team-lead")
	})
	if got := len(triggered()); got != 2 {
		t.Errorf("%d escalations triggered, want P-archive's and P-standard's: %v", got, triggered())
	}
}
