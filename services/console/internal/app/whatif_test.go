package app

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The what-if page shows what escalation leaves out (a KPI rule in the edited rules: the
// ticketpulse-not-simulated header) and says when the list stopped at escalation's cap of
// 10,000 escalations, with real data: 10,001 tickets rated 3, which the loaded rules (2 or
// less) leave alone and the edited ones (3 or less) escalate one by one.
func TestWhatIfNotSimulatedAndTruncated(t *testing.T) {
	// 20,002 events in 21 requests: above the default 200 events/s the test would wait minutes.
	s := startStackWith(t, map[string]string{"acme": "    rate_limit: {events_per_second: 100000, burst: 1000}\n"})
	b := newBrowser(t, "http://"+s.console.HTTP)
	if a := b.post("/signin", url.Values{"api_key": {s.tenants.Acme}}); a.code != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", a.code, a.body)
	}
	const tickets = 10_001
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Minute)
	var events []map[string]any
	for i := range tickets {
		id := fmt.Sprintf("W-%05d", i)
		at := start.Add(time.Duration(i) * time.Second / 10)
		events = append(events,
			map[string]any{"id": id + "-c", "ticket_id": id, "type": "ticket_created", "occurred_at": at.Format(time.RFC3339Nano),
				"actor": map[string]any{"id": "cust", "kind": "customer"}, "team_id": "billing", "assignee_id": "ana", "priority": "normal"},
			map[string]any{"id": id + "-q", "ticket_id": id, "type": "satisfaction_rated", "occurred_at": at.Add(time.Minute).Format(time.RFC3339Nano),
				"actor": map[string]any{"id": "cust", "kind": "customer"}, "satisfaction": map[string]any{"score": 3}})
		if len(events) == 1000 { // ingest's most events a request
			postEvents(t, s.ingest, s.tenants.Acme, events)
			events = events[:0]
		}
	}
	postEvents(t, s.ingest, s.tenants.Acme, events)

	rules := b.get("/t/acme/rules")
	token := csrf(t, rules.body)
	plain := strings.Replace(testRules, "max_score: 2", "max_score: 3", 1)
	withKPIRule := plain + `      - {name: slow-first-response, kind: kpi, scope: team, metric: first_response_p90, window: 24h, above: 2h, min_sample: 10, escalation: leads}
`
	simulate := func(yaml string) answer {
		t.Helper()
		b.c.Timeout = time.Minute // 10,000 rows to replay and render
		return b.post("/t/acme/rules/simulate", url.Values{"csrf": {token}, "rules_yaml": {yaml}, "range": {"24h"}})
	}
	var sim answer
	added := 0
	// The events reach TICKETS (which the what-if replays) within moments; wait until all have.
	eventually(t, "a what-if escalating 10,000 tickets", func() bool {
		sim = simulate(withKPIRule)
		added = strings.Count(sim.body, `<tr class="diff-added">`)
		return sim.code == http.StatusOK && added == 10_000
	})
	if !strings.Contains(sim.body, "The list stopped at its cap of 10,000 escalations") {
		t.Errorf("a what-if of %d escalations does not say it stopped at the cap", tickets)
	}
	if !strings.Contains(sim.body, `<p class="note">Not simulated: kpi rules slow-first-response`) {
		t.Errorf("a what-if with a KPI rule does not say it was not simulated:\n%.3000s", sim.body)
	}
	if strings.Contains(sim.body, "W-10000") {
		t.Errorf("the escalation past the cap is listed")
	}

	// Without the KPI rule there is nothing to leave out, and under the cap no note of it.
	small := simulate(strings.Replace(testRules, "max_score: 2", "max_score: 1", 1))
	if small.code != http.StatusOK || strings.Contains(small.body, "Not simulated:") || strings.Contains(small.body, "stopped at its cap") {
		t.Errorf("a what-if without a KPI rule, under the cap: %d, with a note it should not have:\n%.3000s", small.code, small.body)
	}
	if n := strings.Count(small.body, `<tr class="diff-`); n != 0 {
		t.Errorf("a what-if escalating ratings of 1 or less lists %d escalations, want none", n)
	}

	// A console whose what-if bound (-simulate-timeout) is far shorter than the replay of 20,002
	// events says so on the form, which keeps the edited rules.
	cfg := s.cfg
	cfg.SimulateTimeout = 5 * time.Millisecond
	c := startConsole(t, cfg)
	hb := newBrowser(t, "http://"+c.HTTP)
	if a := hb.post("/signin", url.Values{"api_key": {s.tenants.Acme}}); a.code != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", a.code, a.body)
	}
	hurried := hb.post("/t/acme/rules/simulate", url.Values{"csrf": {csrf(t, hb.get("/t/acme/rules").body)}, "rules_yaml": {withKPIRule}, "range": {"24h"}})
	if hurried.code != http.StatusGatewayTimeout || !strings.Contains(hurried.body, `id="whatif-timeout" class="field-error" role="alert">The simulation did not finish within 5ms`) {
		t.Errorf("what-if past -simulate-timeout: %d, want 504 saying so:\n%.3000s", hurried.code, hurried.body)
	}
	if !strings.Contains(hurried.body, "slow-first-response, kind: kpi") {
		t.Errorf("the timed-out what-if lost the edited rules")
	}
}
