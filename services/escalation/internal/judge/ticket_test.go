package judge

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
	_ "time/tzdata"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // a Monday

const (
	created  = tpv1.EventType_EVENT_TYPE_TICKET_CREATED
	agentMsg = tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE
	custMsg  = tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE
	status   = tpv1.EventType_EVENT_TYPE_STATUS_CHANGED
	rated    = tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED

	agent    = tpv1.ActorKind_ACTOR_KIND_AGENT
	customer = tpv1.ActorKind_ACTOR_KIND_CUSTOMER
	bot      = tpv1.ActorKind_ACTOR_KIND_BOT

	urgent = tpv1.Priority_PRIORITY_URGENT
	low    = tpv1.Priority_PRIORITY_LOW

	open    = tpv1.TicketStatus_TICKET_STATUS_OPEN
	pending = tpv1.TicketStatus_TICKET_STATUS_PENDING
	solvedS = tpv1.TicketStatus_TICKET_STATUS_SOLVED

	warning  = tpv1.Severity_SEVERITY_WARNING
	critical = tpv1.Severity_SEVERITY_CRITICAL
)

func m(d time.Duration) time.Time { return t0.Add(d) }

// ev builds events with ids in the order given.
type evs []Event

func (e evs) add(typ tpv1.EventType, at time.Duration, f ...func(*Event)) evs {
	x := Event{ID: fmt.Sprintf("e%02d", len(e)), Type: typ, At: m(at), ActorKind: customer, Priority: urgent}
	if typ == agentMsg {
		x.ActorKind, x.Public = agent, true
	}
	for _, fn := range f {
		fn(&x)
	}
	// A copy, so tables can extend one history in several ways.
	return append(slices.Clone(e), x)
}

func st(s tpv1.TicketStatus) func(*Event) { return func(e *Event) { e.Status = s } }

func tenant(policies ...*rulesfile.Policy) *rulesfile.Tenant {
	return &rulesfile.Tenant{ID: "acme", Policies: policies, Escalations: map[string]*rulesfile.EscalationPolicy{}}
}

// urgentPolicy: urgent tickets get 30m first response, 1h next response, 8h resolution, 24/7.
func urgentPolicy() *rulesfile.Policy {
	return &rulesfile.Policy{
		Name: "standard", AtRisk: 0.8, Escalation: "default",
		Pause:   []tpv1.TicketStatus{pending, tpv1.TicketStatus_TICKET_STATUS_ON_HOLD},
		Targets: map[tpv1.Priority]rulesfile.Targets{urgent: {FirstResponse: 30 * time.Minute, NextResponse: time.Hour, Resolution: 8 * time.Hour}},
	}
}

func cond(t *testing.T, j Judgement, rule string) Condition {
	t.Helper()
	for _, c := range j.Conditions {
		if c.Rule == rule {
			return c
		}
	}
	t.Fatalf("no condition for %s in %+v", rule, j.Conditions)
	return Condition{}
}

func fact(c Condition, name string) string {
	for _, f := range c.Facts {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func TestSLAClocks(t *testing.T) {
	base := evs{}.add(created, 0, st(open))
	replied := base.add(agentMsg, 20*time.Minute)
	waiting := replied.add(custMsg, 2*time.Hour)
	tests := []struct {
		name     string
		events   evs
		now      time.Duration
		rule     string
		active   bool
		severity tpv1.Severity
		elapsed  string
		wake     time.Duration // 0: none expected
	}{
		{"first response counting, wakes at 80 %", base, 10 * time.Minute, rulesfile.RuleFirstResponse, false, 0, "", 24 * time.Minute},
		{"first response at risk", base, 25 * time.Minute, rulesfile.RuleFirstResponse, true, warning, "25m0s", 30 * time.Minute},
		{"first response at risk exactly at 80 %", base, 24 * time.Minute, rulesfile.RuleFirstResponse, true, warning, "24m0s", 30 * time.Minute},
		{"first response breached exactly at the target", base, 30 * time.Minute, rulesfile.RuleFirstResponse, true, critical, "30m0s", 6*time.Hour + 24*time.Minute},
		{"a reply stops the first-response clock", replied, 40 * time.Minute, rulesfile.RuleFirstResponse, false, 0, "", 6*time.Hour + 24*time.Minute},
		{"a reply after the breach clears it", evs{}.add(created, 0).add(agentMsg, 45*time.Minute), time.Hour, rulesfile.RuleFirstResponse, false, 0, "", 6*time.Hour + 24*time.Minute},
		{"a bot reply is no response", base.add(agentMsg, 5*time.Minute, func(e *Event) { e.ActorKind = bot }), 31 * time.Minute, rulesfile.RuleFirstResponse, true, critical, "31m0s", 6*time.Hour + 24*time.Minute},
		{"a private note is no response", base.add(agentMsg, 5*time.Minute, func(e *Event) { e.Public = false }), 31 * time.Minute, rulesfile.RuleFirstResponse, true, critical, "31m0s", 6*time.Hour + 24*time.Minute},
		{"next response waits for the customer's message", waiting, 2*time.Hour + 30*time.Minute, rulesfile.RuleNextResponse, false, 0, "", 2*time.Hour + 48*time.Minute},
		{"next response breached", waiting, 3*time.Hour + time.Minute, rulesfile.RuleNextResponse, true, critical, "1h1m0s", 6*time.Hour + 24*time.Minute},
		{"a second customer message does not restart the clock", waiting.add(custMsg, 2*time.Hour+50*time.Minute), 3*time.Hour + time.Minute, rulesfile.RuleNextResponse, true, critical, "1h1m0s", 6*time.Hour + 24*time.Minute},
		{"an agent reply answers", waiting.add(agentMsg, 3*time.Hour+30*time.Minute), 4 * time.Hour, rulesfile.RuleNextResponse, false, 0, "", 6*time.Hour + 24*time.Minute},
		{"pending pauses the clock", base.add(status, 10*time.Minute, st(pending)).add(status, 2*time.Hour, st(open)), 2*time.Hour + 15*time.Minute, rulesfile.RuleFirstResponse, true, warning, "25m0s", 2*time.Hour + 20*time.Minute},
		{"still pending: no wake", base.add(status, 10*time.Minute, st(pending)), 5 * time.Hour, rulesfile.RuleFirstResponse, false, 0, "", 0},
		{"resolution breached", replied, 8*time.Hour + time.Minute, rulesfile.RuleResolution, true, critical, "8h1m0s", 0},
		{"solved stops the resolution clock", replied.add(status, time.Hour, st(solvedS)), 9 * time.Hour, rulesfile.RuleResolution, false, 0, "", 0},
		{"reopened: resolution goes on from where it stopped", replied.add(status, 7*time.Hour, st(solvedS)).add(status, 10*time.Hour, st(open)), 11*time.Hour + 30*time.Minute, rulesfile.RuleResolution, true, critical, "8h30m0s", 0},
		{"solved without a reply needs none", base.add(status, 10*time.Minute, st(solvedS)), time.Hour, rulesfile.RuleFirstResponse, false, 0, "", 0},
		{"an outbound ticket needs no first response", evs{}.add(created, 0, func(e *Event) { e.ActorKind = agent }), time.Hour, rulesfile.RuleFirstResponse, false, 0, "", 6*time.Hour + 24*time.Minute},
		{"no creation event: the clock starts at the first customer message", evs{}.add(custMsg, 10*time.Minute), 41 * time.Minute, rulesfile.RuleFirstResponse, true, critical, "31m0s", 6*time.Hour + 34*time.Minute},
		{"no target for the priority", evs{}.add(created, 0, func(e *Event) { e.Priority = low }), 10 * time.Hour, rulesfile.RuleFirstResponse, false, 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := Ticket("T-1", tt.events, tenant(urgentPolicy()), m(tt.now))
			c := cond(t, j, tt.rule)
			if c.Active != tt.active || c.Severity != tt.severity {
				t.Errorf("%s: active %v severity %v, want %v %v (%s)", tt.rule, c.Active, c.Severity, tt.active, tt.severity, c.Summary)
			}
			if got := fact(c, "elapsed"); got != tt.elapsed {
				t.Errorf("elapsed fact %q, want %q", got, tt.elapsed)
			}
			var want time.Time
			if tt.wake != 0 {
				want = m(tt.wake)
			}
			if !j.Wake.Equal(want) {
				t.Errorf("wake %v, want %v", j.Wake, want)
			}
			if c.Active && (c.Escalation != "default" || c.Labels["policy"] != "standard" || c.Labels["ticket"] != "T-1" || c.Labels["priority"] != "urgent") {
				t.Errorf("condition routing: escalation %q labels %v", c.Escalation, c.Labels)
			}
		})
	}
}

// The deadline follows business hours: a ticket created late on a Friday in Berlin, with the
// Monday a holiday, breaches on Tuesday.
func TestBusinessHoursAcrossWeekendAndHoliday(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	var week [7][]calendar.Interval
	for d := time.Monday; d <= time.Friday; d++ {
		week[d] = []calendar.Interval{{From: 9 * 60, To: 17 * 60}}
	}
	cal, err := calendar.New(berlin, week, []string{"2026-12-07"})
	if err != nil {
		t.Fatal(err)
	}
	p := urgentPolicy()
	p.Calendar, p.CalendarName = cal, "berlin-office"
	p.Targets[urgent] = rulesfile.Targets{FirstResponse: 2 * time.Hour}
	created := time.Date(2026, 12, 4, 16, 30, 0, 0, berlin) // Friday
	events := []Event{{ID: "c", Type: tpv1.EventType_EVENT_TYPE_TICKET_CREATED, At: created, ActorKind: customer, Priority: urgent}}

	// 30 minutes on Friday, then nothing over the weekend and the holiday: at risk (96 minutes)
	// on Tuesday at 10:06, breached at 10:30.
	j := Ticket("T-9", events, tenant(p), time.Date(2026, 12, 7, 18, 0, 0, 0, berlin))
	if c := cond(t, j, rulesfile.RuleFirstResponse); c.Active {
		t.Errorf("on the holiday evening: active %+v", c)
	}
	if want := time.Date(2026, 12, 8, 10, 6, 0, 0, berlin); !j.Wake.Equal(want) {
		t.Errorf("wake %v, want %v", j.Wake.In(berlin), want)
	}
	j = Ticket("T-9", events, tenant(p), time.Date(2026, 12, 8, 10, 30, 0, 0, berlin))
	c := cond(t, j, rulesfile.RuleFirstResponse)
	if !c.Active || c.Severity != critical || fact(c, "elapsed") != "2h0m0s" || fact(c, "calendar") != "berlin-office" {
		t.Errorf("Tuesday 10:30: %+v", c)
	}
	if want := time.Date(2026, 12, 8, 10, 30, 0, 0, berlin).UTC().Format(time.RFC3339); fact(c, "deadline") != want {
		t.Errorf("deadline fact %q, want %q", fact(c, "deadline"), want)
	}
}

// Helpdesks deliver out of order and twice: the judgement depends only on the set of events.
func TestOrderAndDuplicatesDoNotMatter(t *testing.T) {
	events := evs{}.add(created, 0, st(open)).
		add(agentMsg, 20*time.Minute).
		add(custMsg, time.Hour).
		add(status, 90*time.Minute, st(pending)).
		add(status, 3*time.Hour, st(open)).
		add(status, 4*time.Hour, st(solvedS)).
		add(status, 5*time.Hour, st(open)).
		add(status, 6*time.Hour, st(solvedS)).
		add(status, 7*time.Hour, st(open)).
		add(rated, 8*time.Hour, func(e *Event) { e.Score = 1; e.Comment = "slow" })
	q := []*rulesfile.QualityRule{
		{Name: "bad-rating", Kind: rulesfile.KindBadRating, MaxScore: 2, Severity: critical, Escalation: "default"},
		{Name: "reopened", Kind: rulesfile.KindReopens, MinReopens: 2, Severity: warning, Escalation: "default"},
	}
	tn := tenant(urgentPolicy())
	tn.Quality = q
	for _, now := range []time.Duration{30 * time.Minute, 2 * time.Hour, 9 * time.Hour, 20 * time.Hour} {
		want := Ticket("T-1", events, tn, m(now))
		rng := rand.New(rand.NewPCG(1, uint64(now)))
		for range 50 {
			shuffled := append(evs{}, events...)
			shuffled = append(shuffled, shuffled[rng.IntN(len(shuffled))]) // a duplicate
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if got := Ticket("T-1", shuffled, tn, m(now)); !reflect.DeepEqual(got, want) {
				t.Fatalf("at %s a shuffled delivery judged\n%+v\nwant\n%+v", now, got, want)
			}
		}
	}
}

func TestQualityRules(t *testing.T) {
	q := []*rulesfile.QualityRule{
		{Name: "bad-rating", Kind: rulesfile.KindBadRating, MaxScore: 2, Severity: critical, Escalation: "leads"},
		{Name: "reopened", Kind: rulesfile.KindReopens, MinReopens: 2, Severity: warning, Escalation: "leads"},
		{Name: "billing-bad-rating", Kind: rulesfile.KindBadRating, MaxScore: 3, Match: rulesfile.Match{Teams: []string{"billing"}}, Escalation: "leads"},
	}
	rate := func(score int32, comment string) func(*Event) {
		return func(e *Event) { e.Score, e.Comment = score, comment }
	}
	base := evs{}.add(created, 0, func(e *Event) { e.Team = "support"; e.Assignee = "ana" })
	tests := []struct {
		name    string
		events  evs
		active  map[string]bool
		summary map[string]string
	}{
		{"bad rating with comment", base.add(rated, time.Hour, rate(1, "nobody answered")),
			map[string]bool{"bad-rating": true}, map[string]string{"bad-rating": `ticket T-1: customer rated 1 of 5: "nobody answered"`}},
		{"rating at the threshold", base.add(rated, time.Hour, rate(2, "")),
			map[string]bool{"bad-rating": true}, map[string]string{"bad-rating": "ticket T-1: customer rated 2 of 5"}},
		{"rating above the threshold", base.add(rated, time.Hour, rate(3, "")), map[string]bool{}, nil},
		{"a better re-rating clears it", base.add(rated, time.Hour, rate(1, "")).add(rated, 2*time.Hour, rate(5, "")), map[string]bool{}, nil},
		{"reopened once", base.add(status, time.Hour, st(solvedS)).add(status, 2*time.Hour, st(open)), map[string]bool{}, nil},
		{"reopened twice", base.add(status, time.Hour, st(solvedS)).add(status, 2*time.Hour, st(open)).
			add(status, 3*time.Hour, st(tpv1.TicketStatus_TICKET_STATUS_CLOSED)).add(status, 4*time.Hour, st(pending)),
			map[string]bool{"reopened": true}, map[string]string{"reopened": "ticket T-1: reopened 2 times"}},
		{"solved to closed is no reopen", base.add(status, time.Hour, st(solvedS)).add(status, 2*time.Hour, st(tpv1.TicketStatus_TICKET_STATUS_CLOSED)).
			add(status, 3*time.Hour, st(open)), map[string]bool{}, nil},
		{"a team-matched rule applies to its team only", evs{}.add(created, 0, func(e *Event) { e.Team = "billing" }).add(rated, time.Hour, rate(3, "")),
			map[string]bool{"billing-bad-rating": true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := tenant()
			tn.Quality = q
			j := Ticket("T-1", tt.events, tn, m(10*time.Hour))
			for _, r := range q {
				c := cond(t, j, r.Name)
				if c.Active != tt.active[r.Name] {
					t.Errorf("%s active %v, want %v", r.Name, c.Active, tt.active[r.Name])
				}
				if want, ok := tt.summary[r.Name]; ok && c.Summary != want {
					t.Errorf("%s summary %q, want %q", r.Name, c.Summary, want)
				}
			}
		})
	}
	// The facts carry the rating and the customer's comment.
	tn := tenant()
	tn.Quality = q
	c := cond(t, Ticket("T-1", base.add(rated, time.Hour, rate(1, "nobody answered")), tn, m(2*time.Hour)), "bad-rating")
	if fact(c, "rating") != "1" || fact(c, "comment") != "nobody answered" || c.Severity != critical || c.Labels["agent"] != "ana" || c.Labels["team"] != "support" {
		t.Errorf("bad rating condition: %+v", c)
	}
}

func TestFirstMatchingPolicyWins(t *testing.T) {
	vip := urgentPolicy()
	vip.Name, vip.Match = "vip", rulesfile.Match{Tags: []string{"vip"}}
	vip.Targets = map[tpv1.Priority]rulesfile.Targets{}
	vip.Default = &rulesfile.Targets{FirstResponse: 10 * time.Minute}
	std := urgentPolicy()
	tn := tenant(vip, std)
	tagged := evs{}.add(created, 0, func(e *Event) { e.Tags = []string{"vip", "eu"} })
	if c := cond(t, Ticket("T-1", tagged, tn, m(11*time.Minute)), rulesfile.RuleFirstResponse); !c.Active || c.Labels["policy"] != "vip" {
		t.Errorf("vip ticket: %+v", c)
	}
	if c := cond(t, Ticket("T-1", evs{}.add(created, 0), tn, m(11*time.Minute)), rulesfile.RuleFirstResponse); c.Active || c.Labels["policy"] != "standard" {
		t.Errorf("other ticket: %+v", c)
	}
	// No policy at all: every SLA condition is inactive (resolving what a former policy raised).
	j := Ticket("T-1", evs{}.add(created, 0), tenant(), m(10*time.Hour))
	for _, r := range []string{rulesfile.RuleFirstResponse, rulesfile.RuleNextResponse, rulesfile.RuleResolution} {
		if c := cond(t, j, r); c.Active {
			t.Errorf("%s active without a policy", r)
		}
	}
}
