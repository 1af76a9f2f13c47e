package rulesfile

import (
	"testing"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

const (
	low    = ticketpulsev1.Priority_PRIORITY_LOW
	normal = ticketpulsev1.Priority_PRIORITY_NORMAL
	high   = ticketpulsev1.Priority_PRIORITY_HIGH
	urgent = ticketpulsev1.Priority_PRIORITY_URGENT
)

func TestPolicyFirstMatchWins(t *testing.T) {
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
		tn := &Tenant{ID: "acme", Policies: tt.policies}
		if got := tn.Policy(tt.give); got != tt.want {
			t.Errorf("%s: Policy = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPolicyOfTheExample(t *testing.T) {
	acme, _ := loadExample(t).Tenant("acme")
	tests := []struct {
		give Ticket
		want string
	}{
		{Ticket{Priority: urgent, Team: "billing", Channel: "email", Tags: []string{"vip"}}, "vip"},
		{Ticket{Priority: urgent, Team: "billing", Channel: "chat", Tags: []string{"vip"}}, "standard"},
		{Ticket{}, "standard"},
	}
	for _, tt := range tests {
		if got := acme.Policy(tt.give); got == nil || got.Name != tt.want {
			t.Errorf("Policy(%+v) = %v, want %s", tt.give, got, tt.want)
		}
	}
}
