package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// officeRules is a rules file as the escalation service reads it: business hours Monday to Friday
// 09:00-17:00 UTC, Monday 2026-01-12 off, 4 business hours to the first response.
const officeRules = `
tenants:
  acme:
    calendars:
      office: {time_zone: UTC, hours: {mon-fri: "09:00-17:00"}, holidays: ["2026-01-12"]}
    escalation_policies:
      leads: {levels: [{targets: [team-lead]}]}
    sla_policies:
      - name: office
        calendar: office
        escalation: leads
        targets: {default: {first_response: 4h, next_response: 1h, resolution: 16h}}
    quality_rules:
      - {name: bad-rating, kind: bad_rating, max_score: 2, escalation: leads}
`

func writeRules(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRulesReload(t *testing.T) {
	c := Config{Consume: consume.Settings{BatchMax: 500, Linger: time.Millisecond, AckWait: 30 * time.Second}, Workers: 2, SuspectAfter: 5,
		SnapshotInterval: time.Second, RollupInterval: time.Second, RebuildGrace: time.Minute, RebuildLease: 30 * time.Second,
		ExportsPerTenant: 2, ExportTimeout: time.Minute}
	if err := c.Validate(); err != nil {
		t.Fatalf("without a rules file the reload interval is not used: %v", err)
	}
	c.RulesFile = "rules.yaml"
	if err := c.Validate(); err == nil || err.Error() != "-rules-reload 0s: must be positive" {
		t.Fatalf("Validate = %v, want -rules-reload 0s: must be positive", err)
	}
}

func TestRulesWatcher(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	fallback := contrib.DefaultSLA()

	t.Run("no file: the calendar-time targets", func(t *testing.T) {
		w := &rulesWatcher{log: quiet}
		if err := w.load(); err != nil {
			t.Fatal(err)
		}
		if got := w.sla(fallback)("acme"); got.Rules || got.FirstResponse[tpv1.Priority_PRIORITY_HIGH] != 4*time.Hour {
			t.Fatalf("sla = %+v, want the fallback", got)
		}
	})
	t.Run("missing file refused at start", func(t *testing.T) {
		w := &rulesWatcher{path: filepath.Join(dir, "absent.yaml"), log: quiet}
		err := w.load()
		if want := "rules file: open " + filepath.Join(dir, "absent.yaml") + ": no such file or directory"; err == nil || err.Error() != want {
			t.Fatalf("load = %v, want %s", err, want)
		}
	})
	t.Run("invalid file refused at start", func(t *testing.T) {
		writeRules(t, path, strings.Replace(officeRules, "first_response: 4h", "first_response: 4x", 1))
		w := &rulesWatcher{path: path, log: quiet}
		err := w.load()
		want := "rules file: " + path + ":\n" + path + `:12: tenants.acme.sla_policies[0].targets.default.first_response: "4x" is not a duration (write e.g. 90s, 15m, 4h or 3d)`
		if err == nil || err.Error() != want {
			t.Fatalf("load = %v", err)
		}
	})
	t.Run("loaded, then an invalid change keeps it, then a valid one replaces it", func(t *testing.T) {
		writeRules(t, path, officeRules)
		w := &rulesWatcher{path: path, log: quiet}
		if err := w.load(); err != nil {
			t.Fatal(err)
		}
		sla := w.sla(fallback)
		if got := sla("acme"); !got.Rules || len(got.Policies) != 1 || got.Policies[0].Name != "office" {
			t.Fatalf("acme = %+v, want the office policy", got)
		}
		if got := sla("globex"); !got.Rules || len(got.Policies) != 0 {
			t.Fatalf("a tenant the file does not name = %+v, want rules without policies", got)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.run(ctx, 10*time.Millisecond) }()
		defer func() {
			cancel()
			<-done
		}()

		writeRules(t, path, "tenants: [")
		time.Sleep(100 * time.Millisecond)
		if got := sla("acme"); len(got.Policies) != 1 || got.Policies[0].Name != "office" {
			t.Fatalf("after an invalid change acme = %+v, want the office policy still", got)
		}
		writeRules(t, path, strings.Replace(officeRules, "name: office", "name: office-v2", 1))
		deadline := time.Now().Add(5 * time.Second)
		for {
			if got := sla("acme"); len(got.Policies) == 1 && got.Policies[0].Name == "office-v2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the valid change was never loaded: %+v", sla("acme"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// The kpi service with the escalation service's rules file judges the SLA in business hours: a
// ticket created Friday evening and answered Monday morning meets a 4-hour first-response target
// (in calendar time it took 63 hours), one answered after the Monday holiday too, and an
// unanswered one breaches once the customer writes again after the deadline.
func TestSLAFromTheRulesFile(t *testing.T) {
	s := newStack(t)
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeRules(t, path, officeRules)
	ts := servicetest.WriteTenants(t, nil)
	cfg := Config{
		Common:  servicetest.Settings(s.natsURL, s.redisURL),
		Consume: consume.Settings{Durable: "kpi", BatchMax: 200, Linger: time.Millisecond, AckWait: 2 * time.Second},
		Workers: 2, SuspectAfter: 5,
		SLA: contrib.DefaultSLA(), SnapshotInterval: 100 * time.Millisecond, StreamReplicas: 1, RollupInterval: time.Second,
		RulesFile: path, RulesReload: time.Second, RebuildGrace: 500 * time.Millisecond, RebuildLease: 2 * time.Second,
	}
	cfg.TenantsFile = ts.File
	r := servicetest.Start(t, func(ctx context.Context, h service.Hooks) error { return Deps{Hooks: h}.Run(ctx, cfg, quiet) })
	client := tpv1.NewKpiServiceClient(r.DialAs(ts.Acme))

	js := ticketsJS(t, s)
	friday := time.Date(2026, 1, 2, 18, 0, 0, 0, time.UTC) // a Friday
	ev := func(ticket, id, typ string, at time.Time, actor, kind string, extra map[string]any) map[string]any {
		m := map[string]any{"id": ticket + "-" + id, "ticket_id": ticket, "type": typ, "occurred_at": at.Format(time.RFC3339),
			"actor": map[string]any{"id": actor, "kind": kind}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	assign := map[string]any{"assignee_id": "ana", "team_id": "office"}
	reply := map[string]any{"public": true}
	publishEvents(t, js, []map[string]any{
		// Monday 09:30: half a business hour.
		ev("T-1", "c", "ticket_created", friday, "cu", "customer", assign),
		ev("T-1", "r", "agent_message", friday.Add(63*time.Hour+30*time.Minute), "ana", "agent", reply),
		// Friday 16:00 to Tuesday 11:30 across the holiday: 1 + 2.5 business hours.
		ev("T-2", "c", "ticket_created", friday.Add(7*24*time.Hour-2*time.Hour), "cu", "customer", assign),
		ev("T-2", "r", "agent_message", friday.Add(11*24*time.Hour-6*time.Hour-30*time.Minute), "ana", "agent", reply),
		// Friday 18:00, nobody answers; the customer writes again Monday 14:00, past 13:00.
		ev("T-3", "c", "ticket_created", friday, "cu", "customer", assign),
		ev("T-3", "m", "customer_message", friday.Add(68*time.Hour), "cu", "customer", nil),
	})
	w := window(friday.Add(-24*time.Hour), friday.Add(14*24*time.Hour))
	k := waitKpis(t, client, "acme", w, func(k *tpv1.Kpis) bool {
		return k.GetSlaFirstResponseMet()+k.GetSlaFirstResponseBreached() >= 3
	})
	if k.GetSlaFirstResponseMet() != 2 || k.GetSlaFirstResponseBreached() != 1 {
		t.Fatalf("first response met/breached = %d/%d, want 2/1", k.GetSlaFirstResponseMet(), k.GetSlaFirstResponseBreached())
	}
	if got := k.GetSlaFirstResponseCompliance(); got < 0.666 || got > 0.667 {
		t.Fatalf("compliance = %v, want 2/3", got)
	}
	// In business hours the two answers took 0.5 h and 3.5 h; in calendar time 63.5 h and 91.5 h.
	if b, c := k.GetFirstResponseBusinessHours(), k.GetFirstResponse(); b.GetCount() != 2 || b.GetSumSeconds() != 4*3600 || c.GetSumSeconds() != 155*3600 {
		t.Fatalf("first response in business hours %v, in calendar time %v; want 2 samples of 4 h in all, and 155 h", b, c)
	}
	team, err := client.GetTeamKpis(context.Background(), &tpv1.GetTeamKpisRequest{Tenant: "acme", TeamId: "office", Window: w})
	if err != nil {
		t.Fatal(err)
	}
	if tk := team.GetKpis(); tk.GetSlaFirstResponseMet() != 2 || tk.GetSlaFirstResponseBreached() != 1 {
		t.Fatalf("team first response met/breached = %d/%d, want 2/1", tk.GetSlaFirstResponseMet(), tk.GetSlaFirstResponseBreached())
	}
}
