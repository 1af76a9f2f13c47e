package slapolicy

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

// The example rules file of the escalation service is read for its SLA part: the policies in
// file order with their calendars, pauses and targets; the quality rules are left to escalation.
func TestLoadTheExample(t *testing.T) {
	set, err := Load(filepath.Join("..", "..", "..", "deploy", "escalation", "rules.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	acme := set.Tenants["acme"]
	if len(acme) != 2 || acme[0].Name != "vip" || acme[1].Name != "standard" {
		t.Fatalf("acme's policies = %v, want vip, standard", acme)
	}
	vip := acme[0]
	if vip.CalendarName != "berlin-office" || vip.Calendar == nil || vip.Escalation != "page-now" || vip.AtRisk != 0.8 {
		t.Fatalf("vip = %+v", vip)
	}
	// Friday 2026-12-25 is a holiday of berlin-office: from Thursday 16:00 Berlin to Monday 10:00
	// is 1 + 1 working hours.
	berlin, _ := time.LoadLocation("Europe/Berlin")
	from, to := time.Date(2026, 12, 24, 16, 0, 0, 0, berlin), time.Date(2026, 12, 28, 10, 0, 0, 0, berlin)
	if got := vip.Calendar.Elapsed(from, to); got != 2*time.Hour {
		t.Fatalf("berlin-office elapsed = %v, want 2h", got)
	}
	if got, _ := vip.TargetsFor(urgent); got != (Targets{FirstResponse: 30 * time.Minute, NextResponse: time.Hour, Resolution: 8 * time.Hour}) {
		t.Fatalf("vip urgent = %+v", got)
	}
	if got := acme[1].Pause; len(got) != 1 || got[0] != ticketpulsev1.TicketStatus_TICKET_STATUS_PENDING {
		t.Fatalf("standard pauses in %v, want pending", got)
	}
	tests := []struct {
		give Ticket
		want string
	}{
		{Ticket{Priority: urgent, Team: "billing", Channel: "email", Tags: []string{"vip"}}, "vip"},
		{Ticket{Priority: urgent, Team: "billing", Channel: "chat", Tags: []string{"vip"}}, "standard"},
		{Ticket{}, "standard"},
	}
	for _, tt := range tests {
		if got := set.Policy("acme", tt.give); got == nil || got.Name != tt.want {
			t.Errorf("Policy(%+v) = %v, want %s", tt.give, got, tt.want)
		}
	}
	if got := set.Policy("nobody", Ticket{}); got != nil {
		t.Errorf("a tenant the file does not name has policy %v", got)
	}
	var none *Set
	if got := none.Policy("acme", Ticket{}); got != nil {
		t.Errorf("no set has policy %v", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v, want a not-exist error", err)
	}
}

// A file that is wrong in its SLA part is refused with every problem, as escalation refuses it.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name, give string
		want       []string
	}{
		{"no tenants", "x: 1\n", []string{
			`rules.yaml:1: unknown key "x" (allowed: tenants)`,
			`rules.yaml:1: missing tenants: (the tenants and their rules)`,
		}},
		{"bad tenant id", "tenants:\n  Acme: {}\n", []string{
			`rules.yaml:2: tenants: tenant id "Acme" must match [a-z0-9][a-z0-9_-]{0,62}`,
		}},
		{"policy problems", `tenants:
  acme:
    escalation_policies: {e: {levels: [{targets: lead}]}}
    sla_policies:
      - name: a
        calendar: office
        targets: {default: {first_response: 30s}}
      - name: b
        escalation: f
        pause_statuses: [solved]
        targets: {sometimes: {resolution: 1d}}
`, []string{
			`rules.yaml:5: tenants.acme.sla_policies[0]: missing escalation: (the escalation policy to raise)`,
			`rules.yaml:6: tenants.acme.sla_policies[0].calendar: unknown calendar "office" (the tenant defines none)`,
			`rules.yaml:7: tenants.acme.sla_policies[0].targets.default.first_response: 30s is less than the minimum of 1m`,
			`rules.yaml:9: tenants.acme.sla_policies[1].escalation: unknown escalation policy "f" (want one of e)`,
			`rules.yaml:10: tenants.acme.sla_policies[1].pause_statuses[0]: solved cannot pause the clocks: they stop for good when a ticket is solved or closed`,
			`rules.yaml:11: tenants.acme.sla_policies[1].targets: unknown priority "sometimes" (want one of low, normal, high, urgent, default)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("rules.yaml", []byte(tt.give))
			var ps yamlconf.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Parse = %v, want problems", err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
