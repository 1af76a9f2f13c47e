package whatif

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/judge"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
)

const rulesYAML = `tenants:
  acme:
    escalation_policies:
      leads:
        levels:
          - targets: [team-lead]
            ack_timeout: 30m
          - targets: [manager]
    sla_policies:
      - name: standard
        at_risk: off
        escalation: leads
        targets:
          default: {first_response: 1h}
    quality_rules:
      - {name: reopened, kind: reopens, min_reopens: 1, escalation: leads}
      - {name: low-csat, kind: kpi, metric: csat_percent, window: 24h, below: 50, escalation: leads}
`

func tenant(t testing.TB) *rulesfile.Tenant {
	t.Helper()
	cfg, err := rulesfile.Parse("rules.yaml", []byte(rulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	tn, _ := cfg.Tenant("acme")
	return tn
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// events numbers the events in the order given, as the stream would.
type events struct{ list []Event }

func (e *events) add(ticket string, typ tpv1.EventType, at time.Time, f func(*judge.Event)) *events {
	ev := Event{Ticket: ticket, Seq: uint64(len(e.list) + 1), Event: judge.Event{ID: fmt.Sprintf("ev-%d", len(e.list)+1), Type: typ, At: at}}
	switch typ {
	case tpv1.EventType_EVENT_TYPE_TICKET_CREATED:
		ev.ActorKind, ev.Status = tpv1.ActorKind_ACTOR_KIND_CUSTOMER, tpv1.TicketStatus_TICKET_STATUS_NEW
	case tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE:
		ev.ActorKind, ev.Public = tpv1.ActorKind_ACTOR_KIND_AGENT, true
	}
	if f != nil {
		f(&ev.Event)
	}
	e.list = append(e.list, ev)
	return e
}

func (e *events) created(ticket string, at time.Time) *events {
	return e.add(ticket, tpv1.EventType_EVENT_TYPE_TICKET_CREATED, at, nil)
}

func (e *events) reply(ticket string, at time.Time) *events {
	return e.add(ticket, tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, at, nil)
}

func (e *events) status(ticket string, at time.Time, s tpv1.TicketStatus) *events {
	return e.add(ticket, tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, at, func(ev *judge.Event) { ev.Status = s })
}

// line is a Fired as a test reads it.
func line(f Fired) string {
	return fmt.Sprintf("%s %s %q L%d +%s", f.Rule, f.SubjectKind, f.SubjectID, f.Level, f.At.Sub(t0))
}

func lines(fs []Fired) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, line(f))
	}
	return out
}

func TestSimulate(t *testing.T) {
	odd := "T/1 \"<script>\" ü"
	tests := []struct {
		name string
		give *events
		// from is t0 unless set; to is t0 + 24h.
		from time.Time
		want []string
	}{
		{
			name: "unanswered: breached at the target, raised after the acknowledgement timeout",
			give: new(events).created("T-1", t0),
			want: []string{`sla-first-response ticket "T-1" L1 +1h0m0s`, `sla-first-response ticket "T-1" L2 +1h30m0s`},
		},
		{
			name: "answered in time",
			give: new(events).created("T-1", t0).reply("T-1", t0.Add(59*time.Minute)),
			want: []string{},
		},
		{
			name: "answered at the deadline's instant: the timer comes first, the reply resolves it before the raise",
			give: new(events).created("T-1", t0).reply("T-1", t0.Add(time.Hour)),
			want: []string{`sla-first-response ticket "T-1" L1 +1h0m0s`},
		},
		{
			name: "answered between breach and raise: no raise",
			give: new(events).created("T-1", t0).reply("T-1", t0.Add(80*time.Minute)),
			want: []string{`sla-first-response ticket "T-1" L1 +1h0m0s`},
		},
		{
			name: "created and answered in one minute-precision instant, the reply stored first",
			give: new(events).reply("T-1", t0).created("T-1", t0),
			want: []string{},
		},
		{
			name: "equal timestamps across tickets keep their own deadlines",
			give: new(events).created("T-1", t0).created("T-2", t0).reply("T-1", t0.Add(time.Hour)).reply("T-2", t0.Add(time.Hour)),
			want: []string{`sla-first-response ticket "T-1" L1 +1h0m0s`, `sla-first-response ticket "T-2" L1 +1h0m0s`},
		},
		{
			name: "reopened: the reopen rule fires at the reopen, the first response long done",
			give: new(events).created("T-1", t0).reply("T-1", t0.Add(10*time.Minute)).
				status("T-1", t0.Add(20*time.Minute), tpv1.TicketStatus_TICKET_STATUS_SOLVED).
				status("T-1", t0.Add(3*time.Hour), tpv1.TicketStatus_TICKET_STATUS_OPEN),
			want: []string{`reopened ticket "T-1" L1 +3h0m0s`, `reopened ticket "T-1" L2 +3h30m0s`},
		},
		{
			name: "odd ticket ids are kept as they are",
			give: new(events).created(odd, t0).reply(odd, t0.Add(70*time.Minute)),
			want: []string{`sla-first-response ticket "T/1 \"<script>\" ü" L1 +1h0m0s`},
		},
		{
			name: "history before from: its clocks run, what fired in it is not reported",
			give: new(events).created("OLD", t0.Add(-2*time.Hour)).created("NEW", t0.Add(-30*time.Minute)),
			want: []string{`sla-first-response ticket "NEW" L1 +30m0s`, `sla-first-response ticket "NEW" L2 +1h0m0s`},
		},
		{
			name: "no events",
			give: new(events),
			want: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Simulate(context.Background(), Run{Tenant: tenant(t), From: t0, To: t0.Add(24 * time.Hour), Horizon: 24 * time.Hour, Max: 100},
				slices.Clone(tt.give.list))
			if err != nil {
				t.Fatal(err)
			}
			if got := lines(res.Fired); !slices.Equal(got, tt.want) {
				t.Errorf("fired %q\nwant  %q", got, tt.want)
			}
			if res.Truncated || !res.End.Equal(t0.Add(24*time.Hour)) || !slices.Equal(res.NotSimulated, []string{"low-csat"}) {
				t.Errorf("truncated %v, end %s, not simulated %v", res.Truncated, res.End, res.NotSimulated)
			}
		})
	}
}

// The facts and severity of a breach are the judge's, and the arrival order of the events
// does not matter.
func TestSimulateFactsAndOrder(t *testing.T) {
	e := new(events).created("T-1", t0).reply("T-1", t0.Add(2*time.Hour))
	reversed := slices.Clone(e.list)
	slices.Reverse(reversed)
	for i := range reversed {
		reversed[i].Seq = uint64(i + 1)
	}
	run := Run{Tenant: tenant(t), From: t0, To: t0.Add(24 * time.Hour), Max: 100}
	a, err := Simulate(context.Background(), run, e.list)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Simulate(context.Background(), run, reversed)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lines(a.Fired), lines(b.Fired)) || len(a.Fired) != 2 {
		t.Fatalf("in order %q, reversed %q", lines(a.Fired), lines(b.Fired))
	}
	f := a.Fired[0]
	if f.Severity != tpv1.Severity_SEVERITY_CRITICAL || f.Summary != "ticket T-1: first response SLA breached, 1h0m0s of 1h0m0s used" {
		t.Errorf("severity %s, summary %q", f.Severity, f.Summary)
	}
	if !slices.Contains(f.Facts, judge.Fact{Name: "target", Value: "1h0m0s"}) {
		t.Errorf("facts %v", f.Facts)
	}
}

// At its cap the simulation stops: End is the instant of the first escalation left out, and
// everything before it is reported.
func TestSimulateTruncates(t *testing.T) {
	e := new(events)
	for i := range 4 {
		e.created(fmt.Sprintf("T-%d", i), t0.Add(time.Duration(i)*time.Minute)).reply(fmt.Sprintf("T-%d", i), t0.Add(time.Duration(i)*time.Minute+70*time.Minute))
	}
	res, err := Simulate(context.Background(), Run{Tenant: tenant(t), From: t0, To: t0.Add(24 * time.Hour), Max: 3}, e.list)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`sla-first-response ticket "T-0" L1 +1h0m0s`, `sla-first-response ticket "T-1" L1 +1h1m0s`, `sla-first-response ticket "T-2" L1 +1h2m0s`}
	if !res.Truncated || !res.End.Equal(t0.Add(63*time.Minute)) || !slices.Equal(lines(res.Fired), want) {
		t.Errorf("truncated %v at %s: %q", res.Truncated, res.End.Sub(t0), lines(res.Fired))
	}
}

func TestSimulateStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Simulate(ctx, Run{Tenant: tenant(t), From: t0, To: t0.Add(time.Hour), Max: 1}, new(events).created("T", t0).list); err == nil {
		t.Error("a cancelled simulation ran")
	}
}

func TestCompare(t *testing.T) {
	rec := &escalationstore.Record{ID: "sla-first-response.t.T-1.1", Rule: "sla-first-response",
		Subject: escalationstore.Subject{Kind: escalationstore.Ticket, ID: "T-1"}, TriggeredAt: t0.Add(time.Hour),
		Timeline: []escalationstore.Entry{
			{At: t0.Add(time.Hour), Kind: tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, Level: 1},
			{At: t0.Add(90 * time.Minute), Kind: tpv1.ChangeKind_CHANGE_KIND_RAISED, Level: 2},
			// A repeat of the last level is not a level.
			{At: t0.Add(150 * time.Minute), Kind: tpv1.ChangeKind_CHANGE_KIND_RAISED, Level: 2},
		}}
	gone := &escalationstore.Record{ID: "reopened.t.T-9.1", Rule: "reopened",
		Subject: escalationstore.Subject{Kind: escalationstore.Ticket, ID: "T-9"}, TriggeredAt: t0.Add(5 * time.Hour)}
	real := append(Levels(rec), Levels(gone)...)
	if len(real) != 3 {
		t.Fatalf("levels %v", real)
	}
	fired := []Fired{
		{Rule: "sla-first-response", SubjectKind: "ticket", SubjectID: "T-2", Level: 1, At: t0.Add(2 * time.Hour)},
		{Rule: "sla-first-response", SubjectKind: "ticket", SubjectID: "T-1", Level: 1, At: t0.Add(time.Hour)},
	}
	var got []string
	for _, d := range Compare(fired, real) {
		got = append(got, fmt.Sprintf("%s %s L%d %s %s", d.Rule, d.SubjectID, d.Level, d.Difference, d.EscalationID))
	}
	want := []string{
		"sla-first-response T-1 L1 DIFFERENCE_SAME sla-first-response.t.T-1.1",
		"sla-first-response T-1 L2 DIFFERENCE_REMOVED sla-first-response.t.T-1.1",
		"sla-first-response T-2 L1 DIFFERENCE_ADDED ",
		"reopened T-9 L1 DIFFERENCE_REMOVED reopened.t.T-9.1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("compare\n%q\nwant\n%q", got, want)
	}
}
