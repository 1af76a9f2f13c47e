// Package slapolicy is what every service that measures SLAs shares: the SLA policies of a rules
// file (which policy applies to a ticket, its targets per priority, its calendar and the statuses
// that pause it), their loading, and the replay of a ticket's events through the three SLA clocks
// (first response, next response, resolution). The escalation service raises escalations from it
// and the KPI service counts met and breached targets from it, so both judge a ticket alike.
package slapolicy

import (
	"slices"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
)

// DefaultAtRisk is the share of an SLA target at which the ticket is reported at risk.
const DefaultAtRisk = 0.8

// Targets are the SLA targets for one priority; zero means no target for that clock.
type Targets struct {
	FirstResponse time.Duration
	NextResponse  time.Duration
	Resolution    time.Duration
}

// Match selects tickets. Each non-empty list must contain the ticket's value (for tags: one of
// the ticket's tags); an empty Match matches every ticket.
type Match struct {
	Priorities []tpv1.Priority
	Teams      []string
	Channels   []string
	Tags       []string
}

// Ticket is what SLA policies (and other ticket rules) match on.
type Ticket struct {
	Priority      tpv1.Priority
	Team, Channel string
	Tags          []string
}

// Policy is one SLA policy.
type Policy struct {
	Name  string
	Match Match
	// Calendar is nil for 24/7.
	Calendar *calendar.Calendar
	// CalendarName is the calendar's name in the file ("" for 24/7).
	CalendarName string
	// Pause are the statuses that stop the clocks (default PENDING and ON_HOLD).
	Pause []tpv1.TicketStatus
	// AtRisk is the share of a target at which the ticket is at risk, in (0, 1); 0 disables the warning.
	AtRisk float64
	// Targets by priority; Default applies to priorities not listed and to tickets without one.
	Targets map[tpv1.Priority]Targets
	Default *Targets
	// Escalation names the escalation policy of this policy's escalations.
	Escalation string
}

// DefaultPause is what a policy without pause_statuses pauses in: waiting on the customer.
func DefaultPause() []tpv1.TicketStatus {
	return []tpv1.TicketStatus{tpv1.TicketStatus_TICKET_STATUS_PENDING, tpv1.TicketStatus_TICKET_STATUS_ON_HOLD}
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

// First returns the first of policies (in file order) that matches the ticket, or nil when none
// does (the ticket then has no SLA).
func First(policies []*Policy, tk Ticket) *Policy {
	for _, p := range policies {
		if p.Match.Matches(tk) {
			return p
		}
	}
	return nil
}

// TargetsFor returns the targets for a priority: its own, else the policy's default; false
// when the policy sets neither, and the ticket then has no SLA targets.
func (p *Policy) TargetsFor(pr tpv1.Priority) (Targets, bool) {
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
func (p *Policy) Pauses(s tpv1.TicketStatus) bool {
	if p.Pause == nil {
		return slices.Contains(DefaultPause(), s)
	}
	return slices.Contains(p.Pause, s)
}
