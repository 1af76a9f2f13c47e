// Package rulesfile is the escalation service's rules file, loaded and validated: per tenant, the
// SLA policies (targets per priority, business hours, pausing statuses), the quality rules (bad
// ratings, reopens, agent and team KPIs) and the escalation policies (levels, acknowledgement
// timeouts, repeats) they use, with the lookups on them.
package rulesfile

import (
	"time"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
)

// The SLA rules every SLA policy drives; their escalations carry these rule names.
const (
	RuleFirstResponse = "sla-first-response"
	RuleNextResponse  = "sla-next-response"
	RuleResolution    = "sla-resolution"
)

// DefaultAtRisk is the share of an SLA target at which the ticket is reported at risk.
const DefaultAtRisk = slapolicy.DefaultAtRisk

// Config is a loaded, validated rules file.
type Config struct {
	// File is the path it was loaded from, for logs.
	File    string
	Tenants map[string]*Tenant
	// LoadedAt is when the file was loaded; zero until the loader sets it.
	LoadedAt time.Time
}

// Tenant is one tenant's rules.
type Tenant struct {
	ID string
	// YAML is the tenant's part of the file as a rules file holding only this tenant; loading it
	// gives the same rules (see TenantYAML).
	YAML []byte
	// Policies are the SLA policies in file order; the first that matches a ticket applies.
	Policies []*Policy
	// Quality are the quality rules in file order.
	Quality []*QualityRule
	// Escalations are the escalation policies by name.
	Escalations map[string]*EscalationPolicy
}

// The SLA policies, their matching and their clocks are shared with the KPI service (package
// slapolicy), so both judge a ticket against the same policy alike.
type (
	Targets = slapolicy.Targets
	Match   = slapolicy.Match
	Policy  = slapolicy.Policy
	Ticket  = slapolicy.Ticket
)

// QualityKind is what a quality rule watches.
type QualityKind string

const (
	// KindBadRating: a satisfaction rating with a score at most MaxScore.
	KindBadRating QualityKind = "bad_rating"
	// KindReopens: a ticket reopened at least MinReopens times.
	KindReopens QualityKind = "reopens"
	// KindKPI: an agent's or team's KPI over a window beyond a fixed threshold.
	KindKPI QualityKind = "kpi"
	// KindKPIBaseline: an agent's or team's KPI over a window worse than their own baseline (the
	// four weeks before that window) by at least Drop.
	KindKPIBaseline QualityKind = "kpi_baseline"
)

// QualityRule is one quality rule.
type QualityRule struct {
	Name string
	Kind QualityKind
	// Match restricts ticket rules (bad_rating, reopens) to matching tickets.
	Match Match
	// Severity of its escalations (default WARNING).
	Severity ticketpulsev1.Severity
	// Escalation names the escalation policy.
	Escalation string

	// MaxScore for bad_rating: scores 1..MaxScore are bad.
	MaxScore int32
	// MinReopens for reopens.
	MinReopens int

	// KPI rules:
	// Scope is "agent", "team" or "queue" (a contact-centre queue: call_* metrics only).
	Scope string
	// Metric is one of Metrics.
	Metric string
	// Window is a snapshot window: "1h", "24h", "7d" or "30d".
	Window string
	// Above or Below is the fixed threshold (exactly one is set for kind kpi). Durations are in
	// seconds, rates in 0..1, csat_percent in 0..100.
	Above, Below *float64
	// Drop for kpi_baseline: how much worse than the baseline, as a share of it (0.2 = 20 % worse).
	// "Worse" is higher for durations and reopen_rate, lower for the other metrics.
	Drop float64
	// MinSample is the smallest sample the metric needs in the window (and, for kpi_baseline, in
	// the baseline) for the rule to judge at all.
	MinSample int64
}

// EscalationPolicy says whom an escalation targets and when it is raised.
type EscalationPolicy struct {
	Name   string
	Levels []Level
	// Repeat, when positive, re-notifies the last level this often until acknowledged.
	Repeat time.Duration
	// HistoryHorizon, when set, replaces the service's -history-horizon for the ticket breaches
	// routed to this policy: a breach older than it when first judged is historical, never
	// raised. Zero raises every breach, however old; nil keeps the flag's horizon.
	HistoryHorizon *time.Duration
}

// Level is one escalation level.
type Level struct {
	// Targets are the labels notify routes on (e.g. "team-lead", "support-manager").
	Targets []string
	// AckTimeout is how long to wait for an acknowledgement before raising to the next level;
	// zero on the last level means it is never raised.
	AckTimeout time.Duration
}
