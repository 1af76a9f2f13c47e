package slapolicy

import (
	"testing"
	"time"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

const (
	low    = ticketpulsev1.Priority_PRIORITY_LOW
	normal = ticketpulsev1.Priority_PRIORITY_NORMAL
	high   = ticketpulsev1.Priority_PRIORITY_HIGH
	urgent = ticketpulsev1.Priority_PRIORITY_URGENT
)

func TestMatches(t *testing.T) {
	m := Match{
		Priorities: []ticketpulsev1.Priority{urgent, high},
		Teams:      []string{"billing"},
		Channels:   []string{"email", "chat"},
		Tags:       []string{"vip", "enterprise"},
	}
	tests := []struct {
		name  string
		match Match
		give  Ticket
		want  bool
	}{
		{"empty match takes every ticket", Match{}, Ticket{}, true},
		{"all lists satisfied", m, Ticket{Priority: high, Team: "billing", Channel: "chat", Tags: []string{"x", "enterprise"}}, true},
		{"priority not listed", m, Ticket{Priority: normal, Team: "billing", Channel: "chat", Tags: []string{"vip"}}, false},
		{"no priority", m, Ticket{Team: "billing", Channel: "chat", Tags: []string{"vip"}}, false},
		{"other team", m, Ticket{Priority: high, Team: "sales", Channel: "chat", Tags: []string{"vip"}}, false},
		{"team compared exactly", m, Ticket{Priority: high, Team: "Billing", Channel: "chat", Tags: []string{"vip"}}, false},
		{"other channel", m, Ticket{Priority: high, Team: "billing", Channel: "phone", Tags: []string{"vip"}}, false},
		{"no matching tag", m, Ticket{Priority: high, Team: "billing", Channel: "chat", Tags: []string{"vipp", "free"}}, false},
		{"no tags", m, Ticket{Priority: high, Team: "billing", Channel: "chat"}, false},
		{"only tags", Match{Tags: []string{"vip"}}, Ticket{Tags: []string{"a", "vip"}}, true},
		{"only priority", Match{Priorities: []ticketpulsev1.Priority{low}}, Ticket{Priority: low, Team: "any"}, true},
	}
	for _, tt := range tests {
		if got := tt.match.Matches(tt.give); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTargetsFor(t *testing.T) {
	urgentTargets := Targets{FirstResponse: 30 * time.Minute}
	def := Targets{Resolution: 72 * time.Hour}
	withDefault := &Policy{Targets: map[ticketpulsev1.Priority]Targets{urgent: urgentTargets}, Default: &def}
	withoutDefault := &Policy{Targets: map[ticketpulsev1.Priority]Targets{urgent: urgentTargets}}
	tests := []struct {
		name   string
		policy *Policy
		give   ticketpulsev1.Priority
		want   Targets
		wantOK bool
	}{
		{"own targets", withDefault, urgent, urgentTargets, true},
		{"default for a priority not listed", withDefault, low, def, true},
		{"default for a ticket without priority", withDefault, ticketpulsev1.Priority_PRIORITY_UNSPECIFIED, def, true},
		{"own targets without default", withoutDefault, urgent, urgentTargets, true},
		{"nothing", withoutDefault, high, Targets{}, false},
		{"empty policy", &Policy{}, urgent, Targets{}, false},
	}
	for _, tt := range tests {
		got, ok := tt.policy.TargetsFor(tt.give)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: TargetsFor(%v) = %+v, %v; want %+v, %v", tt.name, tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestPauses(t *testing.T) {
	const (
		newS    = ticketpulsev1.TicketStatus_TICKET_STATUS_NEW
		open    = ticketpulsev1.TicketStatus_TICKET_STATUS_OPEN
		pending = ticketpulsev1.TicketStatus_TICKET_STATUS_PENDING
		onHold  = ticketpulsev1.TicketStatus_TICKET_STATUS_ON_HOLD
		solved  = ticketpulsev1.TicketStatus_TICKET_STATUS_SOLVED
	)
	parsed, err := Parse("rules.yaml", []byte(`tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    sla_policies:
      - {name: defaults, escalation: e, targets: {default: {resolution: 1d}}}
      - {name: never, escalation: e, targets: {default: {resolution: 1d}}, pause_statuses: []}
      - {name: new, escalation: e, targets: {default: {resolution: 1d}}, pause_statuses: new}
`))
	if err != nil {
		t.Fatal(err)
	}
	ps := parsed.Tenants["acme"]
	tests := []struct {
		name   string
		policy *Policy
		give   ticketpulsev1.TicketStatus
		want   bool
	}{
		{"default pauses pending", ps[0], pending, true},
		{"default pauses on hold", ps[0], onHold, true},
		{"default runs while open", ps[0], open, false},
		{"default runs while new", ps[0], newS, false},
		{"empty list never pauses", ps[1], pending, false},
		{"own list", ps[2], newS, true},
		{"own list replaces the default", ps[2], pending, false},
		{"a policy built without Pause has the default", &Policy{}, onHold, true},
		{"solved is not a pause", ps[0], solved, false},
	}
	for _, tt := range tests {
		if got := tt.policy.Pauses(tt.give); got != tt.want {
			t.Errorf("%s: Pauses(%v) = %v, want %v", tt.name, tt.give, got, tt.want)
		}
	}
}

func TestFirstMatchWins(t *testing.T) {
	vip := &Policy{Name: "vip", Match: Match{Tags: []string{"vip"}}}
	urgentPolicy := &Policy{Name: "urgent", Match: Match{Priorities: []ticketpulsev1.Priority{urgent}}}
	rest := &Policy{Name: "rest"}
	tests := []struct {
		name     string
		policies []*Policy
		give     Ticket
		want     *Policy
	}{
		{"first of two that match", []*Policy{vip, urgentPolicy, rest}, Ticket{Priority: urgent, Tags: []string{"vip"}}, vip},
		{"order decides", []*Policy{urgentPolicy, vip, rest}, Ticket{Priority: urgent, Tags: []string{"vip"}}, urgentPolicy},
		{"falls through to the catch-all", []*Policy{vip, urgentPolicy, rest}, Ticket{Priority: low}, rest},
		{"none matches", []*Policy{vip, urgentPolicy}, Ticket{Priority: low}, nil},
		{"no policies", nil, Ticket{}, nil},
	}
	for _, tt := range tests {
		if got := First(tt.policies, tt.give); got != tt.want {
			t.Errorf("%s: First = %v, want %v", tt.name, got, tt.want)
		}
	}
}
