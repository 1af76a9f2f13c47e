package rulesfile

import (
	"slices"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Ticket is what SLA policies and ticket rules match on.
type Ticket struct {
	Priority      ticketpulsev1.Priority
	Team, Channel string
	Tags          []string
}

// Matches reports whether the ticket satisfies every non-empty list of m. Strings compare
// exactly: team, channel and tag values are the helpdesk's ids, not prose.
func (m Match) Matches(t Ticket) bool {
	switch {
	case len(m.Priorities) > 0 && !slices.Contains(m.Priorities, t.Priority):
		return false
	case len(m.Teams) > 0 && !slices.Contains(m.Teams, t.Team):
		return false
	case len(m.Channels) > 0 && !slices.Contains(m.Channels, t.Channel):
		return false
	case len(m.Tags) > 0 && !slices.ContainsFunc(t.Tags, func(tag string) bool { return slices.Contains(m.Tags, tag) }):
		return false
	}
	return true
}

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
func (t *Tenant) Policy(tk Ticket) *Policy {
	for _, p := range t.Policies {
		if p.Match.Matches(tk) {
			return p
		}
	}
	return nil
}

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

// TargetsFor returns the targets for a priority: its own, else the policy's default; false
// when the policy sets neither, and the ticket then has no SLA targets.
func (p *Policy) TargetsFor(pr ticketpulsev1.Priority) (Targets, bool) {
	if t, ok := p.Targets[pr]; ok {
		return t, true
	}
	if p.Default != nil {
		return *p.Default, true
	}
	return Targets{}, false
}

// Pauses reports whether the clocks stop while a ticket has status s. A Policy built without
// Pause (nil, not empty) pauses in the default statuses, as a loaded one without
// pause_statuses does; an empty Pause never pauses.
func (p *Policy) Pauses(s ticketpulsev1.TicketStatus) bool {
	if p.Pause == nil {
		return slices.Contains(defaultPause(), s)
	}
	return slices.Contains(p.Pause, s)
}
