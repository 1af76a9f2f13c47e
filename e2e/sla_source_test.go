package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// slaRules is one rules file for kpi and escalation: office hours Monday to Friday 09:00-17:00
// UTC with a holiday (%s), and a round-the-clock policy whose clocks pause while pending.
const slaRules = `
tenants:
  acme:
    calendars:
      office: {time_zone: UTC, hours: {mon-fri: "09:00-17:00"}, holidays: [%q]}
    escalation_policies:
      leads: {levels: [{targets: [team-lead]}]}
    sla_policies:
      - name: office
        match: {team: [office]}
        calendar: office
        at_risk: off
        escalation: leads
        targets: {default: {first_response: 4h, next_response: 2h, resolution: 16h}}
      - name: support
        match: {team: [support]}
        at_risk: off
        escalation: leads
        targets: {default: {first_response: 1h, next_response: 1h, resolution: 24h}}
`

// One history posted through ingest to the real kpi and escalation services, both reading the same
// rules file: kpi's breach counts per SLA clock equal the escalations escalation holds open for
// the same breaches, with business hours (a ticket created Friday evening and answered Monday
// morning meets a 4-hour target in both), a holiday and a pause. Every breach in the history is
// still open at its end, since escalation judges at the present: a clock that breached and then
// stopped raised an escalation in real time that is resolved by now.
func TestKPISLAMatchesEscalations(t *testing.T) {
	s := newStack(t)
	// A Friday two to three weeks ago: the week after it, holiday on its Monday, is all past.
	now := time.Now().UTC()
	friday := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -14)
	for friday.Weekday() != time.Friday {
		friday = friday.AddDate(0, 0, -1)
	}
	at := func(days int, hhmm string) string {
		var h, m int
		fmt.Sscanf(hhmm, "%d:%d", &h, &m)
		return friday.AddDate(0, 0, days).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute).Format(time.RFC3339)
	}
	holiday := friday.AddDate(0, 0, 10).Format(time.DateOnly) // the second Monday

	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(fmt.Sprintf(slaRules, holiday)), 0o600); err != nil {
		t.Fatal(err)
	}
	ingest := startIngest(t, s)
	kpiGRPC := freeAddr(t)
	startService(t, "kpi", freeAddr(t),
		"TICKETPULSE_NATS_URL="+s.natsURL, "TICKETPULSE_REDIS_URL="+s.redisURL, "TICKETPULSE_TENANTS_FILE="+s.tenants.File,
		"TICKETPULSE_GRPC_ADDR="+kpiGRPC, "TICKETPULSE_STREAM_REPLICAS=1", "TICKETPULSE_BATCH_LINGER=1ms",
		"TICKETPULSE_RULES_FILE="+rules)
	escGRPC := freeAddr(t)
	startService(t, "escalation", freeAddr(t),
		"TICKETPULSE_NATS_URL="+s.natsURL, "TICKETPULSE_REDIS_URL="+s.redisDB(1),
		"TICKETPULSE_TENANTS_FILE="+s.tenants.File, "TICKETPULSE_GRPC_ADDR="+escGRPC, "TICKETPULSE_STREAM_REPLICAS=1",
		"TICKETPULSE_RULES_FILE="+rules,
		// The history lies weeks in the past: raise its breaches as live ones, so escalation's
		// judgement can be compared with kpi's (by default they would count as history).
		"TICKETPULSE_HISTORY_HORIZON=0")

	ev := func(ticket, id, typ, when, actor, kind string, extra ...any) map[string]any {
		m := map[string]any{"id": ticket + "-" + id, "ticket_id": ticket, "type": typ, "occurred_at": when,
			"actor": map[string]any{"id": actor, "kind": kind}}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	created := func(ticket, when, team string) map[string]any {
		return ev(ticket, "c", "ticket_created", when, "cu", "customer", "assignee_id", "ana", "team_id", team, "priority", "normal")
	}
	reply := func(ticket, id, when string) map[string]any {
		return ev(ticket, id, "agent_message", when, "ana", "agent", "public", true)
	}
	customer := func(ticket, id, when string) map[string]any {
		return ev(ticket, id, "customer_message", when, "cu", "customer")
	}
	status := func(ticket, id, when, s string) map[string]any {
		return ev(ticket, id, "status_changed", when, "ana", "agent", "status", s)
	}
	// Each ticket in one request, so escalation mostly sees it whole.
	for _, ticket := range [][]map[string]any{
		// Friday 18:00, answered Monday 09:30 (63.5 h, half a business hour) and solved at 10:00:
		// first response and resolution met.
		{created("T-fri", at(0, "18:00"), "office"), reply("T-fri", "r", at(3, "09:30")), status("T-fri", "s", at(3, "10:00"), "solved")},
		// Friday 16:00, never answered; the customer writes on Monday 14:00 (first response due
		// 12:00) and the next Friday 10:00 (resolution due Tuesday 16:00): both breached, open.
		{created("T-late", at(0, "16:00"), "office"), customer("T-late", "m1", at(3, "14:00")), customer("T-late", "m2", at(7, "10:00"))},
		// The next Friday 16:00, answered Tuesday 11:30 after the holiday Monday (1 h + 2.5 h),
		// solved 11:45: met.
		{created("T-holiday", at(7, "16:00"), "office"), reply("T-holiday", "r", at(11, "11:30")), status("T-holiday", "s", at(11, "11:45"), "solved")},
		// Round the clock: Saturday 10:00, pending 10:10 to 12:10, answered 12:30 (30 min of 1 h
		// counted), solved 13:00: met.
		{created("T-pause", at(1, "10:00"), "support"), status("T-pause", "p", at(1, "10:10"), "pending"),
			status("T-pause", "o", at(1, "12:10"), "open"), reply("T-pause", "r", at(1, "12:30")), status("T-pause", "s", at(1, "13:00"), "solved")},
		// Round the clock: Sunday 10:00, answered 10:20 (met); the customer writes 11:00 and,
		// unanswered, again 13:00 and Monday 11:00: next response and resolution breached, open.
		{created("T-next", at(2, "10:00"), "support"), reply("T-next", "r", at(2, "10:20")), customer("T-next", "m1", at(2, "11:00")),
			customer("T-next", "m2", at(2, "13:00")), customer("T-next", "m3", at(3, "11:00"))},
	} {
		post(t, ingest, "acme", s.tenants.AcmeEvents, ticket)
	}

	// kpi, per agent and per team, against the hand-computed figures.
	kpi := tpv1.NewKpiServiceClient(dialAs(t, kpiGRPC, s.tenants.Acme))
	w := window(friday.AddDate(0, 0, -1), now.Add(time.Hour))
	type slaFigures struct{ firstMet, firstBreached, nextMet, nextBreached, resMet, resBreached int64 }
	figures := func(k *tpv1.Kpis) slaFigures {
		return slaFigures{k.GetSlaFirstResponseMet(), k.GetSlaFirstResponseBreached(), k.GetSlaNextResponseMet(),
			k.GetSlaNextResponseBreached(), k.GetSlaResolutionMet(), k.GetSlaResolutionBreached()}
	}
	want := slaFigures{firstMet: 4, firstBreached: 1, nextMet: 0, nextBreached: 1, resMet: 3, resBreached: 2}
	agent := waitKpis(t, kpi, "acme", w, func(k *tpv1.Kpis) bool { return figures(k) == want })
	if got := agent.GetSlaFirstResponseCompliance(); got != 0.8 {
		t.Errorf("first-response compliance = %v, want 0.8", got)
	}
	teamBreaches := map[string]int64{}
	for _, team := range []string{"office", "support"} {
		resp, err := kpi.GetTeamKpis(context.Background(), &tpv1.GetTeamKpisRequest{Tenant: "acme", TeamId: team, Window: w})
		if err != nil {
			t.Fatal(err)
		}
		f := figures(resp.GetKpis())
		teamBreaches[team] = f.firstBreached + f.nextBreached + f.resBreached
	}

	// escalation: the open escalations are exactly kpi's breaches, rule by rule and team by team.
	esc := tpv1.NewEscalationServiceClient(dialAs(t, escGRPC, s.tenants.Acme))
	wantRules := map[string]int64{"sla-first-response": want.firstBreached, "sla-next-response": want.nextBreached, "sla-resolution": want.resBreached}
	var open []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := esc.ListEscalations(context.Background(), &tpv1.ListEscalationsRequest{Tenant: "acme", State: tpv1.EscalationState_ESCALATION_STATE_OPEN, PageSize: 500})
		if err != nil {
			t.Fatal(err)
		}
		rules, teams := map[string]int64{}, map[string]int64{}
		open = open[:0]
		for _, e := range resp.GetEscalations() {
			rules[e.GetRule()]++
			teams[e.GetLabels()["team"]]++
			open = append(open, fmt.Sprintf("%s %s %s", e.GetSubjectId(), e.GetRule(), e.GetSeverity()))
			if e.GetSeverity() != tpv1.Severity_SEVERITY_CRITICAL || e.GetLabels()["agent"] != "ana" {
				t.Fatalf("open escalation %s: want a breach credited to ana, got %s agent %q", e.GetSummary(), e.GetSeverity(), e.GetLabels()["agent"])
			}
		}
		if fmt.Sprint(rules) == fmt.Sprint(wantRules) && fmt.Sprint(teams) == fmt.Sprint(teamBreaches) {
			break
		}
		if time.Now().After(deadline) {
			sort.Strings(open)
			t.Fatalf("open escalations by rule %v, by team %v; kpi's breaches by rule %v, by team %v\n%s",
				rules, teams, wantRules, teamBreaches, strings.Join(open, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	sort.Strings(open)
	if got := strings.Join(open, "; "); got != "T-late sla-first-response SEVERITY_CRITICAL; T-late sla-resolution SEVERITY_CRITICAL; T-next sla-next-response SEVERITY_CRITICAL; T-next sla-resolution SEVERITY_CRITICAL" {
		t.Fatalf("open escalations: %s", got)
	}
}
