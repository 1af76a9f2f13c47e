package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// devRulesYAML gives the demo tenant an SLA policy, a bad-rating rule and a KPI rule, so the
// local stack escalates something as soon as a ticket waits too long.
const devRulesYAML = `# Written by tpdev for the local stack (escalation and kpi read it); TICKETPULSE_RULES_FILE points both elsewhere.
tenants:
  acme:
    escalation_policies:
      leads:
        levels:
          - targets: [team-lead]
            ack_timeout: 15m
          - targets: [support-manager]
        repeat: 1h
    sla_policies:
      - name: standard
        escalation: leads
        targets:
          urgent: {first_response: 1h, next_response: 2h, resolution: 8h}
          high: {first_response: 4h, next_response: 8h, resolution: 2d}
          default: {first_response: 8h, resolution: 5d}
    quality_rules:
      - name: bad-rating
        kind: bad_rating
        max_score: 2
        severity: critical
        escalation: leads
      - name: reopened-twice
        kind: reopens
        min_reopens: 2
        escalation: leads
      - name: low-csat
        kind: kpi
        metric: csat_percent
        window: 7d
        below: 60
        min_sample: 5
        escalation: leads
`

// devRules writes the local stack's rules file under runDir and returns its path.
func devRules(runDir string) (string, error) {
	path := filepath.Join(runDir, "rules.yaml")
	if err := os.WriteFile(path, []byte(devRulesYAML), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// escalationDemo posts an urgent ticket created 50 minutes ago that nobody answered: against the
// 1h first-response target it is at risk at once and breaches ten minutes later.
func escalationDemo(now time.Time, key string) string {
	created := now.UTC().Truncate(time.Second).Add(-50 * time.Minute)
	n := created.Unix()
	event := fmt.Sprintf(`{"id":"late-%[1]d","ticket_id":"U-%[1]d","type":"ticket_created","occurred_at":"%[2]s","actor":{"id":"cust-7","kind":"customer"},"assignee_id":"ana","team_id":"billing","priority":"urgent","status":"new"}`,
		n, created.Format(time.RFC3339))
	return "curl -sS -X POST " + curlAuth(key) + " -H 'Content-Type: application/json' --data '" + event + "' http://127.0.0.1:8080/v1/tenants/acme/events"
}

func escalationsDemo(key string) string {
	return `grpcurl -plaintext ` + grpcurlAuth(key) + ` -d '{"tenant":"acme","state":"ESCALATION_STATE_OPEN"}' 127.0.0.1:9091 ticketpulse.v1.EscalationService/ListEscalations`
}
