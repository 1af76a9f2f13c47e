package slapolicy

import (
	"testing"
	"time"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
)

const (
	created  = ticketpulsev1.EventType_EVENT_TYPE_TICKET_CREATED
	agentMsg = ticketpulsev1.EventType_EVENT_TYPE_AGENT_MESSAGE
	custMsg  = ticketpulsev1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE
	statusCh = ticketpulsev1.EventType_EVENT_TYPE_STATUS_CHANGED
	kAgent   = ticketpulsev1.ActorKind_ACTOR_KIND_AGENT
	kCust    = ticketpulsev1.ActorKind_ACTOR_KIND_CUSTOMER
	kBot     = ticketpulsev1.ActorKind_ACTOR_KIND_BOT
	open     = ticketpulsev1.TicketStatus_TICKET_STATUS_OPEN
	pending  = ticketpulsev1.TicketStatus_TICKET_STATUS_PENDING
	solved   = ticketpulsev1.TicketStatus_TICKET_STATUS_SOLVED
)

// monday is 2026-03-02 09:00 UTC, a Monday.
var monday = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func m(minutes int) time.Time { return monday.Add(time.Duration(minutes) * time.Minute) }

func office(t *testing.T) *calendar.Calendar {
	t.Helper()
	var week [7][]calendar.Interval
	for d := time.Monday; d <= time.Friday; d++ {
		week[d] = []calendar.Interval{{From: 9 * 60, To: 17 * 60}}
	}
	c, err := calendar.New(time.UTC, week, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReplay(t *testing.T) {
	p := &Policy{Calendar: office(t)}
	reply := func(at time.Time) Event { return Event{Type: agentMsg, At: at, ActorKind: kAgent, Public: true} }
	tests := []struct {
		name     string
		events   []Event
		outbound bool
		at       time.Time
		check    func(c Clocks) (what string, got, want any)
	}{
		{"first response counts business hours only: 7h Monday + 1h Tuesday",
			[]Event{{Type: created, At: m(60), ActorKind: kCust}, reply(m(24*60 + 60))}, false, m(24*60 + 60),
			func(c Clocks) (string, any, any) {
				return "first", c.First.Elapsed(p.Calendar, m(24*60+60)), 8 * time.Hour
			}},
		{"a bot or a private note is no reply",
			[]Event{{Type: created, At: m(0), ActorKind: kCust}, {Type: agentMsg, At: m(10), ActorKind: kBot, Public: true},
				{Type: agentMsg, At: m(20), ActorKind: kAgent}}, false, m(30),
			func(c Clocks) (string, any, any) { return "first waiting", c.FirstWaiting(), true }},
		{"pending pauses every clock",
			[]Event{{Type: created, At: m(0), ActorKind: kCust}, {Type: statusCh, At: m(10), Status: pending},
				{Type: statusCh, At: m(70), Status: open}}, false, m(100),
			func(c Clocks) (string, any, any) {
				return "resolution", c.Resolution.Elapsed(p.Calendar, m(100)), 40 * time.Minute
			}},
		{"the resolution clock goes on after a reopen",
			[]Event{{Type: created, At: m(0), ActorKind: kCust}, reply(m(5)), {Type: statusCh, At: m(30), Status: solved},
				{Type: statusCh, At: m(90), Status: open}, {Type: statusCh, At: m(100), Status: solved}}, false, m(200),
			func(c Clocks) (string, any, any) {
				return "resolution", c.Resolution.Elapsed(p.Calendar, m(200)), 40 * time.Minute
			}},
		{"an outbound ticket needs no first response",
			[]Event{{Type: created, At: m(0), ActorKind: kAgent}}, true, m(60),
			func(c Clocks) (string, any, any) { return "first waiting", c.FirstWaiting(), false }},
		{"the next response waits from the first unanswered customer message",
			[]Event{{Type: created, At: m(0), ActorKind: kCust}, reply(m(5)), {Type: custMsg, At: m(20), ActorKind: kCust},
				{Type: custMsg, At: m(40), ActorKind: kCust}}, false, m(50),
			func(c Clocks) (string, any, any) { return "next since", c.NextSince, m(20) }},
		{"solving answers what waited",
			[]Event{{Type: created, At: m(0), ActorKind: kCust}, {Type: statusCh, At: m(20), Status: solved}}, false, m(50),
			func(c Clocks) (string, any, any) {
				return "first, resolution waiting", [2]bool{c.FirstWaiting(), c.ResolutionWaiting()}, [2]bool{false, false}
			}},
	}
	for _, tt := range tests {
		what, got, want := tt.check(Replay(tt.events, p, tt.outbound))
		if got != want {
			t.Errorf("%s: %s = %v, want %v", tt.name, what, got, want)
		}
	}
}
