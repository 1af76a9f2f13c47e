package judge

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"

	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy/responsetest"
)

// The histories of package responsetest, which kpi's contribution runs too
// (services/kpi/internal/contrib, TestResponsesAgreeWithEscalation): the judge finds the same
// responses, and raises a first- or next-response breach exactly where kpi counts one. A ticket
// answered only by phone raises none; the same ticket with an abandoned, outbound or unnamed
// call, or a call with no ticket under its id, does. Each history is judged in several arrival
// orders, since the log gives them in none.
func TestResponsesAgreeWithKPI(t *testing.T) {
	cfg, err := rulesfile.Parse("rules.yaml", []byte(responsetest.Rules))
	if err != nil {
		t.Fatal(err)
	}
	tn := cfg.Tenants[responsetest.Tenant]
	r := rand.New(rand.NewPCG(7, 11))
	for _, tc := range responsetest.Cases("", t0) {
		t.Run(tc.Name, func(t *testing.T) {
			var events []Event
			for _, pe := range tc.Events {
				events = append(events, EventOf(pe.GetId(), pe))
			}
			var replies []string
			for _, e := range ordered(ofTicket(tc.Ticket, events)) {
				if slapolicy.IsReply(clockEvent(e)) {
					replies = append(replies, e.ID)
				}
			}
			slices.Sort(replies)
			if want := slices.Sorted(slices.Values(tc.Replies)); !slices.Equal(replies, want) {
				t.Errorf("responses %v, want %v", replies, want)
			}
			for range 5 {
				r.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
				j := Ticket(tc.Ticket, events, tn, tc.Now)
				for _, k := range []struct {
					rule string
					want responsetest.Verdict
				}{{rulesfile.RuleFirstResponse, tc.First}, {rulesfile.RuleNextResponse, tc.Next}} {
					c := cond(t, j, k.rule)
					// Met and not yet due are both no escalation at Now.
					if breached := c.Active && c.Severity == critical; breached != (k.want == responsetest.Breached) || c.Active && !breached {
						t.Fatalf("%s: active %v severity %s (%s), want %s", k.rule, c.Active, c.Severity, c.Summary, k.want)
					}
				}
			}
		})
	}
}

// A call with no ticket arrives under its call id as ticket_id, so the log keeps it as a
// "ticket" of its own: judged against a policy that matches every ticket, it opens no SLA clock
// (nothing to escalate, nothing to wake for), however its events arrive, redelivered included.
func TestCallWithNoTicketOpensNoClock(t *testing.T) {
	p := urgentPolicy()
	p.Default = &rulesfile.Targets{FirstResponse: time.Minute, NextResponse: time.Minute, Resolution: time.Minute}
	tn := tenant(p)
	for _, tc := range []struct {
		name string
		give []tpv1.EventType
	}{
		{"answered and ended", []tpv1.EventType{offeredT, answeredT, endedT}},
		{"abandoned", []tpv1.EventType{offeredT, abandonedT}},
		{"answered, redelivered", []tpv1.EventType{offeredT, answeredT, answeredT, endedT, offeredT}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var events []Event
			for i, typ := range tc.give {
				// A redelivery repeats the id; distinct types get distinct ids.
				id := fmt.Sprintf("CA-10-%s", typ)
				events = append(events, Event{ID: id, Type: typ, At: m(time.Duration(i) * time.Minute), ActorKind: tpv1.ActorKind_ACTOR_KIND_SYSTEM,
					CallDirection: tpv1.CallDirection_CALL_DIRECTION_INBOUND, CallAgent: "ana"})
			}
			j := Ticket("CA-10", events, tn, m(24*time.Hour))
			for _, c := range j.Conditions {
				if c.Active {
					t.Errorf("%s active on a call with no ticket: %s", c.Rule, c.Summary)
				}
			}
			if !j.Wake.IsZero() {
				t.Errorf("wake at %s for a call with no ticket", j.Wake)
			}
			if c := replay(describe("CA-10", ordered(events)), ordered(events), p); c.Started {
				t.Errorf("its events, were they the ticket's, started no clock either: %+v", c)
			}
		})
	}
}

const (
	offeredT   = tpv1.EventType_EVENT_TYPE_CALL_OFFERED
	answeredT  = tpv1.EventType_EVENT_TYPE_CALL_ANSWERED
	abandonedT = tpv1.EventType_EVENT_TYPE_CALL_ABANDONED
	endedT     = tpv1.EventType_EVENT_TYPE_CALL_ENDED
)
