package contrib

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// slaRules are SLA policies as the escalation service's rules file writes them. t0 is Monday
// 2026-03-02 09:00 UTC; Monday 2026-03-16 is a holiday of the office calendar.
const slaRules = `
tenants:
  acme:
    calendars:
      office:
        time_zone: UTC
        hours: {mon-fri: "09:00-17:00"}
        holidays: ["2026-03-16"]
    escalation_policies:
      leads: {levels: [{targets: [team-lead]}]}
    sla_policies:
      - name: vip
        match: {tag: [vip]}
        escalation: leads
        targets: {default: {first_response: 10m}}
      - name: office
        match: {team: [office]}
        calendar: office
        escalation: leads
        targets: {default: {first_response: 4h, next_response: 2h, resolution: 16h}}
      - name: round-the-clock
        match: {team: [support]}
        escalation: leads
        targets:
          urgent: {first_response: 30m}
          default: {first_response: 1h, next_response: 1h, resolution: 24h}
`

func rulesSLA(t testing.TB) SLA {
	t.Helper()
	set, err := slapolicy.Parse("rules.yaml", []byte(slaRules))
	if err != nil {
		t.Fatal(err)
	}
	return SLA{Rules: true, Policies: set.Tenants["acme"]}
}

// day is minutes after t0 of day d (0 = Monday 2 March) at hh:mm.
func day(d, hh, mm int) float64 { return float64(d*24*60 + (hh-9)*60 + mm) }

func tags(ts ...string) func(*Event) {
	return func(e *Event) {
		e.Tags = ""
		for i, s := range ts {
			if i > 0 {
				e.Tags += TagSep
			}
			e.Tags += s
		}
	}
}

func TestPolicySLA(t *testing.T) {
	sla := rulesSLA(t)
	reply := func(id string, at float64) Event { return ev(id, agentMsg, at, by(kAgent, "ana"), public(true)) }
	type want struct {
		counter bucket.Counter
		n       int64
	}
	cases := []struct {
		name   string
		events []Event
		// wants are ana's figures; every other SLA counter of ana must be 0.
		wants []want
	}{
		{
			name: "friday evening, answered monday morning within 4 business hours: met",
			events: []Event{
				ev("c", created, day(4, 18, 0), by(kCustomer, "cu"), team("office"), to("ana")),
				reply("r", day(7, 9, 30)),
			},
			wants: []want{{bucket.SLAMet, 1}},
		},
		{
			name: "friday evening, answered monday afternoon after 4.5 business hours: breached",
			events: []Event{
				ev("c", created, day(4, 18, 0), by(kCustomer, "cu"), team("office"), to("ana")),
				reply("r", day(7, 13, 30)),
			},
			wants: []want{{bucket.SLABreached, 1}},
		},
		{
			name: "the holiday does not count: 1h friday + 2.5h tuesday is met",
			events: []Event{
				ev("c", created, day(11, 16, 0), by(kCustomer, "cu"), team("office"), to("ana")),
				reply("r", day(15, 11, 30)),
			},
			wants: []want{{bucket.SLAMet, 1}},
		},
		{
			name: "pending pauses the clocks: 10m + 20m of a 1h target is met",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team("support"), to("ana")),
				ev("p", statusCh, 10, status(pending)),
				ev("o", statusCh, 130, status(open)),
				reply("r", 150),
			},
			wants: []want{{bucket.SLAMet, 1}},
		},
		{
			name: "next responses: one late, one in time",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team("support"), to("ana")),
				reply("r1", 10),
				ev("m1", custMsg, 20, by(kCustomer, "cu")),
				reply("r2", 80),
				ev("m2", custMsg, 110, by(kCustomer, "cu")),
				reply("r3", 130),
			},
			wants: []want{{bucket.SLAMet, 1}, {bucket.NextSLAMet, 1}, {bucket.NextSLABreached, 1}},
		},
		{
			name: "unanswered past the deadline: breached, to the assignee",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team("support"), to("ana")),
				ev("m", custMsg, 90, by(kCustomer, "cu")),
			},
			wants: []want{{bucket.SLABreached, 1}},
		},
		{
			name: "unanswered, deadline not reached yet: nothing",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team("support"), to("ana")),
				ev("m", custMsg, 59, by(kCustomer, "cu")),
			},
		},
		{
			name: "solved unanswered before the deadline: no first-response sample, resolution met",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team("support"), to("ana")),
				ev("s", statusCh, 30, status(solved)),
			},
			wants: []want{{bucket.ResolutionSLAMet, 1}},
		},
		{
			name: "resolution goes on across a reopen: 10h + 9h of 24h is met",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team("support"), to("ana")),
				reply("r", 10),
				ev("s1", statusCh, 600, status(solved)),
				ev("o", statusCh, 2000, status(open)),
				ev("s2", statusCh, 2540, status(solved)),
			},
			wants: []want{{bucket.SLAMet, 1}, {bucket.ResolutionSLAMet, 1}},
		},
		{
			name: "resolution after 25h: breached",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team("support"), to("ana")),
				reply("r", 10),
				ev("s", statusCh, 1500, status(solved)),
			},
			wants: []want{{bucket.SLAMet, 1}, {bucket.ResolutionSLABreached, 1}},
		},
		{
			name: "the urgent target of the policy: 40m breaches 30m",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team("support"), to("ana"), priority(tpv1.Priority_PRIORITY_URGENT)),
				reply("r", 40),
			},
			wants: []want{{bucket.SLABreached, 1}},
		},
		{
			name: "a tag picks the first policy: 15m breaches 10m",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team("support"), to("ana"), tags("x", "vip")),
				reply("r", 15),
			},
			wants: []want{{bucket.SLABreached, 1}},
		},
		{
			name: "no policy matches: no SLA figures, not even the calendar-time ones",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team("elsewhere"), to("ana")),
				reply("r", 5000),
			},
		},
	}
	counters := []bucket.Counter{bucket.SLAMet, bucket.SLABreached, bucket.NextSLAMet, bucket.NextSLABreached,
		bucket.ResolutionSLAMet, bucket.ResolutionSLABreached}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Compute(tc.events, sla)
			for _, k := range counters {
				var want int64
				for _, w := range tc.wants {
					if w.counter == k {
						want = w.n
					}
				}
				if got := fig(c, bucket.Agent, "ana", cf(k)); got != want {
					t.Errorf("%s = %d, want %d", k.Field(), got, want)
				}
			}
		})
	}
}

func TestPolicySLABreachWithoutReplyLandsInTheDeadlineHour(t *testing.T) {
	// Created Friday 16:30 in office hours: 4 business hours end Monday 12:30.
	c := Compute([]Event{
		ev("c", created, day(4, 16, 30), by(kCustomer, "cu"), team("office"), to("ana")),
		ev("a", assigned, day(7, 10, 0), to("bob")),
		ev("m", custMsg, day(7, 15, 0), by(kCustomer, "cu")),
	}, rulesSLA(t))
	deadline := t0.Add(time.Duration(day(7, 12, 30)) * time.Minute)
	if got := hourOf(c, bucket.Agent, "bob", cf(bucket.SLABreached)); got != deadline.Unix()/3600 {
		t.Fatalf("breach in hour %d, want %d (%s)", got, deadline.Unix()/3600, deadline)
	}
	if got := fig(c, bucket.Team, "office", cf(bucket.SLABreached)); got != 1 {
		t.Fatalf("team breaches = %d, want 1", got)
	}
	if got := fig(c, bucket.Agent, "ana", cf(bucket.SLABreached)); got != 0 {
		t.Fatalf("ana, no longer assigned at the deadline, has %d breaches", got)
	}
}

func TestWithoutRulesTheCalendarTargetsJudgeTheFirstResponseOnly(t *testing.T) {
	evs := []Event{
		ev("c", created, 0, by(kCustomer, "cu"), team("support"), to("ana")),
		ev("r", agentMsg, 90, by(kAgent, "ana"), public(true)),
		ev("s", statusCh, 3000, status(solved)),
	}
	c := Compute(evs, DefaultSLA())
	if got := fig(c, bucket.Agent, "ana", cf(bucket.SLAMet)); got != 1 {
		t.Fatalf("calendar-time first response met = %d, want 1 (90m of 8h)", got)
	}
	if got := fig(c, bucket.Agent, "ana", cf(bucket.ResolutionSLABreached)); got != 0 {
		t.Fatalf("resolution breached without rules = %d, want 0", got)
	}
	c = Compute(evs, rulesSLA(t))
	if got := fig(c, bucket.Agent, "ana", cf(bucket.SLABreached)); got != 1 {
		t.Fatalf("policy first response breached = %d, want 1 (90m of 1h)", got)
	}
}

// Random histories under the rules: kpi's breach counts are the breaches the escalation service
// sees judging the ticket at every instant up to its last event (slapolicy's clocks replayed to
// that instant, a breach being a clock still counting with its working time at the target), and
// the figures do not depend on delivery order or duplicates.
func TestPolicySLABreachesAreTheClocksBreaches(t *testing.T) {
	sla := rulesSLA(t)
	r := rand.New(rand.NewPCG(3, 5))
	for trial := 0; trial < 400; trial++ {
		history := randomHistory(r, 1+r.IntN(25))
		tm := []string{"support", "office"}[r.IntN(2)]
		for i := range history {
			if i == 0 || history[i].Team != "" {
				history[i].Team = tm
			}
		}
		evs := orderEvents(history)
		p := slapolicy.First(sla.Policies, slapolicy.Ticket{Team: tm})
		if tm == "" || p == nil {
			t.Fatal("no policy")
		}
		var prio tpv1.Priority
		outbound := false
		seenCreated := false
		for _, e := range evs {
			if e.Priority != tpv1.Priority_PRIORITY_UNSPECIFIED {
				prio = e.Priority
			}
			if e.Type == created && !seenCreated {
				seenCreated, outbound = true, e.Actor == kAgent
			}
		}
		targets, _ := p.TargetsFor(prio)

		// The oracle: judge at each event's instant, before and after the events of that instant.
		var first, res bool
		nextCycles := map[time.Time]bool{}
		judge := func(upTo int, at time.Time) {
			sev := make([]slapolicy.Event, 0, upTo)
			for _, e := range evs[:upTo] {
				sev = append(sev, slapolicy.Event{Type: e.Type, At: time.UnixMilli(e.AtMillis), ActorKind: e.Actor, Public: e.Public == 2, Status: e.Status})
			}
			c := slapolicy.Replay(sev, p, outbound)
			if targets.FirstResponse > 0 && c.FirstWaiting() && c.First.Elapsed(p.Calendar, at) >= targets.FirstResponse {
				first = true
			}
			if targets.NextResponse > 0 && c.NextWaiting && c.Next.Elapsed(p.Calendar, at) >= targets.NextResponse {
				nextCycles[c.NextSince] = true
			}
			if targets.Resolution > 0 && c.ResolutionWaiting() && c.Resolution.Elapsed(p.Calendar, at) >= targets.Resolution {
				res = true
			}
		}
		for i := 0; i <= len(evs); i++ {
			if i == len(evs) || (i > 0 && evs[i].AtMillis != evs[i-1].AtMillis) {
				judge(i, time.UnixMilli(evs[i-1].AtMillis))
			}
			if i < len(evs) {
				judge(i, time.UnixMilli(evs[i].AtMillis))
			}
		}
		want := map[bucket.Counter]int64{bucket.SLABreached: 0, bucket.NextSLABreached: int64(len(nextCycles)), bucket.ResolutionSLABreached: 0}
		if first {
			want[bucket.SLABreached] = 1
		}
		// A solved ticket's resolution clock judges at the solve; an open one counts once breached.
		if res {
			want[bucket.ResolutionSLABreached] = 1
		}

		c := Compute(history, sla)
		for k, n := range want {
			var got int64
			for key, v := range c.Values {
				if key.Field == cf(k) && key.Kind != bucket.Team {
					got += v
				}
			}
			if got != n {
				t.Fatalf("trial %d (%s): %s = %d, want %d\n%s", trial, tm, k.Field(), got, n, show(evs))
			}
		}

		shuffled := append([]Event(nil), history...)
		shuffled = append(shuffled, history[r.IntN(len(history))])
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := Compute(shuffled, sla); !maps.Equal(got.Values, c.Values) {
			t.Fatalf("trial %d: shuffled delivery differs", trial)
		}
	}
}

func show(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%6.0fm %s %s/%s public=%d status=%s\n", time.UnixMilli(e.AtMillis).Sub(t0).Minutes(),
			strings.TrimPrefix(e.Type.String(), "EVENT_TYPE_"), e.Actor, e.ActorID, e.Public, e.Status)
	}
	return b.String()
}

func TestBusinessHours(t *testing.T) {
	reply := func(at float64) Event { return ev("r", agentMsg, at, by(kAgent, "ana"), public(true)) }
	friday := []Event{
		// Friday 16:30 to Monday 09:30: 65 h, 1 business hour (the pending half hour counts: pauses
		// are the SLA's, not the hours'); solved Monday 11:00: 66.5 h, 2.5 business hours.
		ev("c", created, day(4, 16, 30), by(kCustomer, "cu"), team("office"), to("ana")),
		ev("p", statusCh, day(7, 9, 0), status(pending)),
		reply(day(7, 9, 30)),
		ev("s", statusCh, day(7, 11, 0), status(solved)),
	}
	tests := []struct {
		name                       string
		events                     []Event
		sla                        SLA
		firstMillis, resolveMillis int64
	}{
		{"office hours: the weekend does not count, the pause does", friday, rulesSLA(t),
			int64(time.Hour / time.Millisecond), int64(150 * time.Minute / time.Millisecond)},
		{"without a rules file every hour counts", friday, DefaultSLA(),
			int64(65 * time.Hour / time.Millisecond), int64((66*time.Hour + 30*time.Minute) / time.Millisecond)},
		{"a policy without a calendar counts every hour",
			[]Event{ev("c", created, 0, by(kCustomer, "cu"), team("support"), to("ana")), reply(600), ev("s", statusCh, 900, status(solved))},
			rulesSLA(t), int64(10 * time.Hour / time.Millisecond), int64(15 * time.Hour / time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Compute(tt.events, tt.sla)
			for _, f := range []struct {
				counter bucket.Counter
				want    int64
			}{
				{bucket.BusinessFirstCount, 1}, {bucket.BusinessFirstSumMillis, tt.firstMillis},
				{bucket.BusinessResolutionCount, 1}, {bucket.BusinessResolutionSumMillis, tt.resolveMillis},
			} {
				if got := fig(c, bucket.Agent, "ana", cf(f.counter)); got != f.want {
					t.Errorf("%s = %d, want %d", f.counter.Field(), got, f.want)
				}
			}
			if got := fig(c, bucket.Agent, "ana", BinField(bucket.BusinessFirstResponse, hist.Bin(float64(tt.firstMillis)/1000))); got != 1 {
				t.Errorf("business first-response histogram bin = %d, want 1", got)
			}
		})
	}
}
