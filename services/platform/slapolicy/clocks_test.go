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

const (
	callOffered   = ticketpulsev1.EventType_EVENT_TYPE_CALL_OFFERED
	callAnswered  = ticketpulsev1.EventType_EVENT_TYPE_CALL_ANSWERED
	callAbandoned = ticketpulsev1.EventType_EVENT_TYPE_CALL_ABANDONED
	callEnded     = ticketpulsev1.EventType_EVENT_TYPE_CALL_ENDED
	inbound       = ticketpulsev1.CallDirection_CALL_DIRECTION_INBOUND
	outbound      = ticketpulsev1.CallDirection_CALL_DIRECTION_OUTBOUND
)

func TestIsReply(t *testing.T) {
	tests := []struct {
		name string
		give Event
		want bool
	}{
		{"a public message by an agent", Event{Type: agentMsg, ActorKind: kAgent, Public: true}, true},
		{"a private note", Event{Type: agentMsg, ActorKind: kAgent}, false},
		{"a bot's public message", Event{Type: agentMsg, ActorKind: kBot, Public: true}, false},
		{"a customer's message", Event{Type: custMsg, ActorKind: kCust, Public: true}, false},
		{"an inbound call answered by ana", Event{Type: callAnswered, CallDirection: inbound, CallAgent: "ana"}, true},
		{"an inbound call answered by nobody named", Event{Type: callAnswered, CallDirection: inbound}, false},
		{"an outbound call picked up", Event{Type: callAnswered, CallDirection: outbound, CallAgent: "ana"}, false},
		{"an answered call of no direction", Event{Type: callAnswered, CallAgent: "ana"}, false},
		{"an inbound call offered", Event{Type: callOffered, CallDirection: inbound, CallAgent: "ana"}, false},
		{"an inbound call abandoned", Event{Type: callAbandoned, CallDirection: inbound}, false},
		{"an inbound call ended", Event{Type: callEnded, CallDirection: inbound, CallAgent: "ana"}, false},
		// The call's fields answer only for a call event: a message that carried them is judged
		// as a message.
		{"a private note with call fields", Event{Type: agentMsg, ActorKind: kAgent, CallDirection: inbound, CallAgent: "ana"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsReply(tt.give); got != tt.want {
				t.Errorf("IsReply = %v, want %v", got, tt.want)
			}
		})
	}
}

// An answered inbound call moves the clocks as a public agent message does; the other call
// events, and an answer that is no response, move nothing.
func TestReplayCalls(t *testing.T) {
	p := &Policy{}
	create := Event{Type: created, At: m(0), ActorKind: kCust}
	answer := func(at time.Time, dir ticketpulsev1.CallDirection, agent string) Event {
		return Event{Type: callAnswered, At: at, CallDirection: dir, CallAgent: agent}
	}
	tests := []struct {
		name      string
		events    []Event
		firstWait bool
		nextWait  bool
		firstUsed time.Duration // the first-response clock at m(60)
	}{
		{"answered by phone: the first response, at the answer",
			[]Event{create, {Type: callOffered, At: m(5), CallDirection: inbound}, answer(m(6), inbound, "ana"),
				{Type: callEnded, At: m(15), CallDirection: inbound, CallAgent: "ana"}},
			false, false, 6 * time.Minute},
		{"an abandoned call answers nothing",
			[]Event{create, {Type: callOffered, At: m(5), CallDirection: inbound}, {Type: callAbandoned, At: m(7), CallDirection: inbound}},
			true, false, 60 * time.Minute},
		{"an outbound call answers nothing",
			[]Event{create, {Type: callOffered, At: m(5), CallDirection: outbound, CallAgent: "ana"}, answer(m(6), outbound, "ana")},
			true, false, 60 * time.Minute},
		{"a call answered by nobody named answers nothing",
			[]Event{create, answer(m(6), inbound, "")},
			true, false, 60 * time.Minute},
		{"a call answers the next customer message",
			[]Event{create, {Type: agentMsg, At: m(2), ActorKind: kAgent, Public: true},
				{Type: custMsg, At: m(20), ActorKind: kCust}, answer(m(30), inbound, "bo")},
			false, false, 2 * time.Minute},
		{"an answer before the ticket began answers nothing",
			[]Event{answer(m(0), inbound, "ana")},
			false, false, 0},
		{"only a call's events: no clock starts",
			[]Event{{Type: callOffered, At: m(0), CallDirection: inbound}, answer(m(1), inbound, "ana"),
				{Type: callEnded, At: m(9), CallDirection: inbound, CallAgent: "ana"}},
			false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Replay(tt.events, p, false)
			if c.FirstWaiting() != tt.firstWait || c.NextWaiting != tt.nextWait {
				t.Errorf("first waiting %v, next waiting %v; want %v, %v", c.FirstWaiting(), c.NextWaiting, tt.firstWait, tt.nextWait)
			}
			if got := c.First.Elapsed(nil, m(60)); got != tt.firstUsed {
				t.Errorf("first-response clock at m(60) %s, want %s", got, tt.firstUsed)
			}
		})
	}
	if c := Replay([]Event{{Type: callOffered, At: m(0)}, {Type: callEnded, At: m(9)}}, p, false); c.Started || c.ResolutionWaiting() {
		t.Errorf("a call alone started the ticket's clocks: %+v", c)
	}
}
