package contrib

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

const (
	offered   = tpv1.EventType_EVENT_TYPE_CALL_OFFERED
	answered  = tpv1.EventType_EVENT_TYPE_CALL_ANSWERED
	abandoned = tpv1.EventType_EVENT_TYPE_CALL_ABANDONED
	ended     = tpv1.EventType_EVENT_TYPE_CALL_ENDED
	inbound   = tpv1.CallDirection_CALL_DIRECTION_INBOUND
	outbound  = tpv1.CallDirection_CALL_DIRECTION_OUTBOUND
)

// onCall makes an event one of call id's, in direction dir, with agent and team (empty: not said).
func onCall(id string, dir tpv1.CallDirection, agent, team string) func(*Event) {
	return func(e *Event) { e.CallKey, e.CallDir, e.CallAgent, e.CallTeam = KeyOf(id), dir, agent, team }
}

// durs sets the source's durations in seconds: wait, talk, hold, wrap-up.
func durs(wait, talk, hold, wrap float64) func(*Event) {
	return func(e *Event) {
		e.CallWait, e.CallTalk, e.CallHold, e.CallWrapUp = callMillis(wait), callMillis(talk), callMillis(hold), callMillis(wrap)
	}
}

func TestCalls(t *testing.T) {
	sec := 1.0 / 60 // minutes
	type want struct {
		offered, answered, abandoned, inSL int64
		asa, aht                           []int64 // millis, the samples' sums and counts checked below
		agent                              string  // who the counters are credited to ("" = unassigned)
	}
	tests := []struct {
		name string
		sla  SLA
		give []Event
		want want
	}{
		{
			name: "inbound answered within 20 s, handled 300+30+45 s",
			give: []Event{
				ev("o", offered, 0, onCall("c1", inbound, "", "phones")),
				ev("a", answered, 15*sec, onCall("c1", inbound, "ana", "phones"), durs(15, 0, 0, 0)),
				ev("e", ended, 6, onCall("c1", inbound, "ana", "phones"), durs(0, 300, 30, 45)),
			},
			want: want{offered: 1, answered: 1, inSL: 1, asa: []int64{15000}, aht: []int64{375000}, agent: "ana"},
		},
		{
			name: "answered after 25 s misses the default 20 s, meets a tenant's 30 s",
			sla:  SLA{CallServiceLevel: 30 * time.Second},
			give: []Event{
				ev("o", offered, 0, onCall("c1", inbound, "", "phones")),
				ev("a", answered, 25*sec, onCall("c1", inbound, "ana", "phones")),
			},
			want: want{offered: 1, answered: 1, inSL: 1, asa: []int64{25000}, agent: "ana"},
		},
		{
			name: "answered after 25 s misses the default 20 s",
			give: []Event{
				ev("o", offered, 0, onCall("c1", inbound, "", "phones")),
				ev("a", answered, 25*sec, onCall("c1", inbound, "ana", "phones")),
			},
			want: want{offered: 1, answered: 1, asa: []int64{25000}, agent: "ana"},
		},
		{
			name: "abandoned in queue: no agent, no speed of answer, no handle time",
			give: []Event{
				ev("o", offered, 0, onCall("c1", inbound, "", "phones")),
				ev("x", abandoned, 1, onCall("c1", inbound, "", "phones"), durs(60, 0, 0, 0)),
				ev("e", ended, 1, onCall("c1", inbound, "", "phones")),
			},
			want: want{offered: 1, abandoned: 1},
		},
		{
			name: "an end without durations: handle time is answer to end",
			give: []Event{
				ev("o", offered, 0, onCall("c1", inbound, "", "phones")),
				ev("a", answered, 25*sec, onCall("c1", inbound, "ana", "phones")),
				ev("e", ended, 6, onCall("c1", inbound, "ana", "phones")),
			},
			// ended 6 min after the offer, answered 25 s after it: 360 s - 25 s handled.
			want: want{offered: 1, answered: 1, asa: []int64{25000}, aht: []int64{335000}, agent: "ana"},
		},
		{
			name: "an end with any duration keeps the source's figures",
			give: []Event{
				ev("o", offered, 0, onCall("c1", inbound, "", "phones")),
				ev("a", answered, 10*sec, onCall("c1", inbound, "ana", "phones")),
				ev("e", ended, 6, onCall("c1", inbound, "ana", "phones"), durs(0, 0, 0, 30)),
			},
			want: want{offered: 1, answered: 1, inSL: 1, asa: []int64{10000}, aht: []int64{30000}, agent: "ana"},
		},
		{
			name: "talk and hold in one end, wrap-up in a later one (Genesys Cloud's after-call work)",
			give: []Event{
				ev("o", offered, 0, onCall("c1", inbound, "", "phones")),
				ev("a", answered, 10*sec, onCall("c1", inbound, "ana", "phones")),
				ev("e", ended, 6, onCall("c1", inbound, "ana", "phones"), durs(0, 300, 30, 0)),
				ev("w", ended, 7, onCall("c1", inbound, "ana", "phones"), durs(0, 0, 0, 45)),
			},
			// 300 + 30 from the first end, 45 from the second: one sample of 375 s.
			want: want{offered: 1, answered: 1, inSL: 1, asa: []int64{10000}, aht: []int64{375000}, agent: "ana"},
		},
		{
			name: "an end without durations and a wrap-up: answer to that end, plus the wrap-up",
			give: []Event{
				ev("o", offered, 0, onCall("c1", inbound, "", "phones")),
				ev("a", answered, 10*sec, onCall("c1", inbound, "ana", "phones")),
				ev("e", ended, 5, onCall("c1", inbound, "ana", "phones")),
				ev("w", ended, 6, onCall("c1", inbound, "ana", "phones"), durs(0, 0, 0, 45)),
			},
			// 300 s - 10 s answered to ended, and 45 s of wrap-up.
			want: want{offered: 1, answered: 1, inSL: 1, asa: []int64{10000}, aht: []int64{335000}, agent: "ana"},
		},
		{
			name: "a later end repeats the talk: the latest one's figures count once",
			give: []Event{
				ev("o", offered, 0, onCall("c1", inbound, "", "phones")),
				ev("a", answered, 10*sec, onCall("c1", inbound, "ana", "phones")),
				ev("e", ended, 6, onCall("c1", inbound, "ana", "phones"), durs(0, 300, 0, 0)),
				ev("e2", ended, 7, onCall("c1", inbound, "ana", "phones"), durs(0, 320, 0, 0)),
			},
			want: want{offered: 1, answered: 1, inSL: 1, asa: []int64{10000}, aht: []int64{320000}, agent: "ana"},
		},
		{
			name: "no offer event: the source's wait is the speed of answer",
			give: []Event{
				ev("a", answered, 0, onCall("c1", inbound, "ana", "phones"), durs(8, 0, 0, 0)),
			},
			want: want{offered: 1, answered: 1, inSL: 1, asa: []int64{8000}, agent: "ana"},
		},
		{
			name: "outbound: handle time only",
			give: []Event{
				ev("o", offered, 0, onCall("c1", outbound, "ana", "")),
				ev("a", answered, 0.5, onCall("c1", outbound, "ana", "")),
				ev("e", ended, 4, onCall("c1", outbound, "ana", ""), durs(0, 200, 0, 20)),
			},
			want: want{aht: []int64{220000}, agent: "ana"},
		},
		{
			name: "two calls in one state, duplicates of each event",
			give: []Event{
				ev("o1", offered, 0, onCall("c1", inbound, "", "phones")),
				ev("o1", offered, 0, onCall("c1", inbound, "", "phones")),
				ev("a1", answered, 10*sec, onCall("c1", inbound, "ana", "phones")),
				ev("o2", offered, 1, onCall("c2", inbound, "", "phones")),
				ev("a2", answered, 1.5, onCall("c2", inbound, "ana", "phones")),
				ev("a2", answered, 1.5, onCall("c2", inbound, "ana", "phones")),
			},
			want: want{offered: 2, answered: 2, inSL: 1, asa: []int64{10000, 30000}, agent: "ana"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Compute(tt.give, tt.sla)
			kind, id := bucket.Agent, tt.want.agent
			if id == "" {
				kind = bucket.Unassigned
			}
			for _, f := range []struct {
				name      string
				got, want int64
			}{
				{"offered", fig(c, kind, id, CounterField(bucket.CallsOffered)), tt.want.offered},
				{"answered", fig(c, kind, id, CounterField(bucket.CallsAnswered)), tt.want.answered},
				{"abandoned", fig(c, kind, id, CounterField(bucket.CallsAbandoned)), tt.want.abandoned},
				{"in service level", fig(c, kind, id, CounterField(bucket.CallsInServiceLevel)), tt.want.inSL},
				{"asa count", fig(c, kind, id, CounterField(bucket.CallAnswerCount)), int64(len(tt.want.asa))},
				{"asa sum", fig(c, kind, id, CounterField(bucket.CallAnswerSumMillis)), sum(tt.want.asa)},
				{"aht count", fig(c, kind, id, CounterField(bucket.CallHandleCount)), int64(len(tt.want.aht))},
				{"aht sum", fig(c, kind, id, CounterField(bucket.CallHandleSumMillis)), sum(tt.want.aht)},
			} {
				if f.got != f.want {
					t.Errorf("%s = %d, want %d", f.name, f.got, f.want)
				}
			}
			// The team gets the same counters when the call names one.
			if got := fig(c, bucket.Team, "phones", CounterField(bucket.CallsOffered)); tt.want.offered > 0 && got != tt.want.offered {
				t.Errorf("team offered = %d, want %d", got, tt.want.offered)
			}
			// Calls never touch the ticket figures.
			if c.Ticket.FirstResponseMillis != -1 || len(c.Ticket.Figures) != 0 {
				t.Errorf("ticket row %+v: a call-only state has no ticket figures", c.Ticket)
			}
		})
	}
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// TestCallsHours checks which hour each figure lands in: counters in the offer's hour, speed of
// answer in the answer's, handle time in the end's.
func TestCallsHours(t *testing.T) {
	evs := []Event{
		ev("o", offered, 59.9, onCall("c1", inbound, "ana", "")),
		ev("a", answered, 60.1, onCall("c1", inbound, "ana", "")),
		ev("e", ended, 130, onCall("c1", inbound, "ana", ""), durs(0, 60, 0, 0)),
	}
	c := Compute(evs, SLA{})
	h0 := t0.Unix() / 3600
	for _, f := range []struct {
		name string
		f    Field
		want int64
	}{
		{"offered", CounterField(bucket.CallsOffered), h0},
		{"in service level", CounterField(bucket.CallsInServiceLevel), h0},
		{"asa", CounterField(bucket.CallAnswerCount), h0 + 1},
		{"aht", CounterField(bucket.CallHandleCount), h0 + 2},
	} {
		if got := hourOf(c, bucket.Agent, "ana", f.f); got != f.want {
			t.Errorf("%s in hour %d, want %d", f.name, got, f.want)
		}
	}
}

// TestCallsOrderIndependent shuffles and duplicates the events of a ticket with calls: the
// contribution is the same every time.
func TestCallsOrderIndependent(t *testing.T) {
	evs := []Event{
		ev("t", created, 0, by(kCustomer, "cus"), to("ana"), team("billing")),
		ev("o1", offered, 5, onCall("c1", inbound, "", "phones")),
		ev("a1", answered, 5.3, onCall("c1", inbound, "ana", "phones"), durs(18, 0, 0, 0)),
		ev("e1", ended, 9, onCall("c1", inbound, "ana", "phones"), durs(0, 200, 10, 30)),
		ev("m", custMsg, 20, by(kCustomer, "cus"), public(true)),
		ev("o2", offered, 30, onCall("c2", inbound, "", "phones")),
		ev("x2", abandoned, 31, onCall("c2", inbound, "", "phones")),
		ev("r", agentMsg, 40, by(kAgent, "bo"), public(true)),
		ev("o3", offered, 50, onCall("c3", outbound, "bo", "")),
		ev("e3", ended, 52, onCall("c3", outbound, "bo", ""), durs(0, 100, 0, 5)),
	}
	want := Compute(evs, SLA{})
	r := rand.New(rand.NewPCG(3, 5))
	for i := range 200 {
		give := slices.Clone(evs)
		for range r.IntN(4) {
			give = append(give, give[r.IntN(len(give))])
		}
		r.Shuffle(len(give), func(a, b int) { give[a], give[b] = give[b], give[a] })
		if got := Compute(give, SLA{}); !maps.Equal(got.Values, want.Values) {
			t.Fatalf("run %d: contribution differs from the ordered one", i)
		}
	}
}

// TestAnsweredCallIsAResponse: an inbound call on the ticket answered by an agent is the first
// response (to that agent, at the answer) and answers a waiting customer as a next response; an
// outbound call, an unanswered call and a call answered by no named agent are not.
func TestAnsweredCallIsAResponse(t *testing.T) {
	base := []Event{
		ev("t", created, 0, by(kCustomer, "cus"), to("bo"), team("billing")),
		ev("o1", offered, 10, onCall("c1", inbound, "", "")),
	}
	tests := []struct {
		name      string
		give      []Event
		first     int64 // first-response millis, -1 none
		firstBy   string
		nextCount int64
	}{
		{
			name:    "answered inbound call is the first response",
			give:    []Event{ev("a1", answered, 12, onCall("c1", inbound, "ana", ""))},
			first:   12 * 60_000,
			firstBy: "ana",
		},
		{
			name:  "an abandoned call is none",
			give:  []Event{ev("x1", abandoned, 12, onCall("c1", inbound, "", ""))},
			first: -1,
		},
		{
			name:  "an outbound call is none",
			give:  []Event{ev("a1", answered, 12, onCall("c1", outbound, "ana", ""))},
			first: -1,
		},
		{
			name: "a later message does not replace the call's first response; a call answers the next customer message",
			give: []Event{
				ev("a1", answered, 12, onCall("c1", inbound, "ana", "")),
				ev("r", agentMsg, 30, by(kAgent, "bo"), public(true)),
				ev("m", custMsg, 40, by(kCustomer, "cus"), public(true)),
				ev("o2", offered, 50, onCall("c2", inbound, "", "")),
				ev("a2", answered, 55, onCall("c2", inbound, "cy", "")),
			},
			first: 12 * 60_000, firstBy: "ana", nextCount: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Compute(append(slices.Clone(base), tt.give...), DefaultSLA())
			if c.Ticket.FirstResponseMillis != tt.first {
				t.Fatalf("first response %d ms, want %d", c.Ticket.FirstResponseMillis, tt.first)
			}
			if tt.firstBy != "" {
				if got := fig(c, bucket.Agent, tt.firstBy, CounterField(bucket.FirstCount)); got != 1 {
					t.Errorf("%s first responses = %d, want 1", tt.firstBy, got)
				}
				if got := fig(c, bucket.Agent, tt.firstBy, CounterField(bucket.SLAMet)); got != 1 {
					t.Errorf("%s first-response SLA met = %d, want 1", tt.firstBy, got)
				}
				if got := fig(c, bucket.Team, "billing", CounterField(bucket.FirstCount)); got != 1 {
					t.Errorf("ticket team first responses = %d, want 1", got)
				}
			}
			if got := fig(c, bucket.Agent, "cy", CounterField(bucket.NextCount)); got != tt.nextCount {
				t.Errorf("cy next responses = %d, want %d", got, tt.nextCount)
			}
		})
	}
}

// onQueue names the call's queue on an event.
func onQueue(q string) func(*Event) { return func(e *Event) { e.CallQueue = q } }

// TestCallsQueue: a call's figures are credited to its queue (the latest its events name) in the
// same hours and amounts as to its team, a call with no queue credits no queue, and no ticket
// figure ever reaches a queue.
func TestCallsQueue(t *testing.T) {
	evs := []Event{
		ev("t", created, 0, by(kCustomer, "cus"), to("ana"), team("billing")),
		ev("r", agentMsg, 3, by(kAgent, "ana"), public(true)),
		// c1 names its queue on every event; c2 only on the offer; c3 none.
		ev("o1", offered, 5, onCall("c1", inbound, "", "t1"), onQueue("support")),
		ev("a1", answered, 5.3, onCall("c1", inbound, "bo", "t1"), onQueue("support")),
		ev("e1", ended, 70, onCall("c1", inbound, "bo", "t1"), onQueue("support"), durs(0, 200, 10, 30)),
		ev("o2", offered, 30, onCall("c2", inbound, "", "t2"), onQueue("sales: {EU}")),
		ev("x2", abandoned, 31, onCall("c2", inbound, "", "t2")),
		ev("o3", offered, 50, onCall("c3", inbound, "", "t3")),
		ev("a3", answered, 50.2, onCall("c3", inbound, "cy", "t3")),
		ev("e3", ended, 52, onCall("c3", inbound, "cy", "t3"), durs(0, 100, 0, 5)),
	}
	c := Compute(evs, SLA{})
	queues := map[string]map[Key]int64{}
	for k, v := range c.Values {
		if k.Kind != bucket.Queue {
			continue
		}
		// Keyed by the team of the queue's call, to compare with the team's figures.
		k.Kind, k.ID = bucket.Team, map[string]string{"support": "t1", "sales: {EU}": "t2"}[k.ID]
		if queues[k.ID] == nil {
			queues[k.ID] = map[Key]int64{}
		}
		queues[k.ID][k] = v
	}
	if len(queues) != 2 {
		t.Fatalf("figures credited to queues %v, want t1's and t2's only", slices.Collect(maps.Keys(queues)))
	}
	for _, tm := range []string{"t1", "t2"} {
		team := map[Key]int64{}
		for k, v := range c.Values {
			if k.Kind == bucket.Team && k.ID == tm {
				team[k] = v
			}
		}
		if len(team) == 0 || !maps.Equal(team, queues[tm]) {
			t.Errorf("the queue of team %s's call has %v, the team %v", tm, queues[tm], team)
		}
	}
}
