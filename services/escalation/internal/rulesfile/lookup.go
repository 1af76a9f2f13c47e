package rulesfile

import (
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
)

// Tenant returns the tenant with the given id.
func (c *Config) Tenant(id string) (*Tenant, bool) {
	if c == nil {
		return nil, false
	}
	t, ok := c.Tenants[id]
	return t, ok
}

// Policy returns the first SLA policy that matches the ticket, or nil when none does (the
// ticket then has no SLA).
func (t *Tenant) Policy(tk Ticket) *Policy { return slapolicy.First(t.Policies, tk) }

// Rule returns the quality rule with the given name.
func (t *Tenant) Rule(name string) (*QualityRule, bool) {
	for _, r := range t.Quality {
		if r.Name == name {
			return r, true
		}
	}
	return nil, false
}

// EscalationPolicy returns the escalation policy with the given name.
func (t *Tenant) EscalationPolicy(name string) (*EscalationPolicy, bool) {
	ep, ok := t.Escalations[name]
	return ep, ok
}

// Horizon is the history horizon of the breaches routed to the policy: its own history_horizon,
// or def (the service's -history-horizon) when it sets none. A nil policy, one a reload removed,
// has def too.
func (p *EscalationPolicy) Horizon(def time.Duration) time.Duration {
	if p == nil || p.HistoryHorizon == nil {
		return def
	}
	return *p.HistoryHorizon
}
