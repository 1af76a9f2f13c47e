package contrib

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const (
	created  = tpv1.EventType_EVENT_TYPE_TICKET_CREATED
	assigned = tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED
	agentMsg = tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE
	custMsg  = tpv1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE
	statusCh = tpv1.EventType_EVENT_TYPE_STATUS_CHANGED
	prioCh   = tpv1.EventType_EVENT_TYPE_PRIORITY_CHANGED
	rated    = tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED

	kAgent    = tpv1.ActorKind_ACTOR_KIND_AGENT
	kCustomer = tpv1.ActorKind_ACTOR_KIND_CUSTOMER
	kBot      = tpv1.ActorKind_ACTOR_KIND_BOT

	solved  = tpv1.TicketStatus_TICKET_STATUS_SOLVED
	closed  = tpv1.TicketStatus_TICKET_STATUS_CLOSED
	open    = tpv1.TicketStatus_TICKET_STATUS_OPEN
	pending = tpv1.TicketStatus_TICKET_STATUS_PENDING
)

// ev builds an event at t0+minutes; opts set the rest.
func ev(id string, typ tpv1.EventType, minutes float64, opts ...func(*Event)) Event {
	e := Event{Key: KeyOf(id), Type: typ, AtMillis: t0.Add(time.Duration(minutes * float64(time.Minute))).UnixMilli()}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func by(kind tpv1.ActorKind, id string) func(*Event) {
	return func(e *Event) { e.Actor, e.ActorID = kind, id }
}
func to(agent string) func(*Event) { return func(e *Event) { e.Assignee = agent } }
func team(t string) func(*Event)   { return func(e *Event) { e.Team = t } }
func public(p bool) func(*Event) {
	return func(e *Event) { e.Public = map[bool]uint8{false: 1, true: 2}[p] }
}
func status(s tpv1.TicketStatus) func(*Event) { return func(e *Event) { e.Status = s } }
func score(s uint8) func(*Event)              { return func(e *Event) { e.Score = s } }
func priority(p tpv1.Priority) func(*Event)   { return func(e *Event) { e.Priority = p } }

// fig reads one figure of one scope, summed over all hours.
func fig(c Contribution, kind bucket.Kind, id string, f Field) int64 {
	var n int64
	for k, v := range c.Values {
		if k.Kind == kind && k.ID == id && k.Field == f {
			n += v
		}
	}
	return n
}

// hourOf reads the hour a figure landed in (the only one, or -1).
func hourOf(c Contribution, kind bucket.Kind, id string, f Field) int64 {
	h := int64(-1)
	for k := range c.Values {
		if k.Kind == kind && k.ID == id && k.Field == f {
			h = k.Hour
		}
	}
	return h
}

func cf(c bucket.Counter) Field { return CounterField(c) }

type want struct {
	kind  bucket.Kind
	id    string
	field Field
	value int64
}

func TestScenarios(t *testing.T) {
	ana, bob, billing := "ana", "bob", "billing"
	base := []Event{
		ev("c", created, 0, by(kCustomer, "cu"), team(billing)),
		ev("a", assigned, 1, to(ana)),
	}
	tests := []struct {
		name   string
		events []Event
		want   []want
	}{
		{
			name: "first response by public agent reply",
			events: append(base[:2:2],
				ev("r1", agentMsg, 30, by(kAgent, ana), public(true))),
			want: []want{
				{bucket.Agent, ana, cf(bucket.FirstCount), 1},
				{bucket.Agent, ana, cf(bucket.FirstSumMillis), 30 * 60_000},
				{bucket.Agent, ana, BinField(bucket.FirstResponse, hist.Bin(1800)), 1},
				{bucket.Team, billing, cf(bucket.FirstCount), 1},
				{bucket.Agent, ana, cf(bucket.SLAMet), 1},
				{bucket.Agent, ana, cf(bucket.Assigned), 1},
				{bucket.Team, billing, cf(bucket.Assigned), 1},
				{bucket.Agent, ana, cf(bucket.AssignedNowResolved), 0},
			},
		},
		{
			name: "bot reply and private note are not responses",
			events: append(base[:2:2],
				ev("b", agentMsg, 1, by(kBot, "bot"), public(true)),
				ev("n", agentMsg, 2, by(kAgent, ana), public(false)),
				ev("r", agentMsg, 10, by(kAgent, ana), public(true))),
			want: []want{
				{bucket.Agent, ana, cf(bucket.FirstSumMillis), 10 * 60_000},
				{bucket.Agent, "bot", cf(bucket.FirstCount), 0},
			},
		},
		{
			name: "reply credited to the agent who sent it, not the assignee",
			events: append(base[:2:2],
				ev("r", agentMsg, 5, by(kAgent, bob), public(true))),
			want: []want{
				{bucket.Agent, bob, cf(bucket.FirstCount), 1},
				{bucket.Agent, ana, cf(bucket.FirstCount), 0},
			},
		},
		{
			name: "next response from first unanswered customer message",
			events: append(base[:2:2],
				ev("r1", agentMsg, 5, by(kAgent, ana), public(true)),
				ev("m1", custMsg, 60, by(kCustomer, "cu")),
				ev("m2", custMsg, 70, by(kCustomer, "cu")),
				ev("r2", agentMsg, 100, by(kAgent, ana), public(true)),
				ev("m3", custMsg, 200, by(kCustomer, "cu")),
				ev("r3", agentMsg, 210, by(kAgent, bob), public(true))),
			want: []want{
				{bucket.Agent, ana, cf(bucket.NextCount), 1},
				{bucket.Agent, ana, cf(bucket.NextSumMillis), 40 * 60_000},
				{bucket.Agent, bob, cf(bucket.NextSumMillis), 10 * 60_000},
				{bucket.Team, billing, cf(bucket.NextCount), 2},
			},
		},
		{
			name: "outbound ticket has no first response sample",
			events: []Event{
				ev("c", created, 0, by(kAgent, ana), to(ana)),
				ev("r", agentMsg, 1, by(kAgent, ana), public(true)),
				ev("m", custMsg, 10, by(kCustomer, "cu")),
				ev("r2", agentMsg, 25, by(kAgent, ana), public(true)),
			},
			want: []want{
				{bucket.Agent, ana, cf(bucket.FirstCount), 0},
				{bucket.Agent, ana, cf(bucket.NextSumMillis), 15 * 60_000},
				{bucket.Agent, ana, cf(bucket.SLAMet), 0},
			},
		},
		{
			name: "reopen then re-solve: one resolution, the later one",
			events: append(base[:2:2],
				ev("r", agentMsg, 5, by(kAgent, ana), public(true)),
				ev("s1", statusCh, 60, status(solved)),
				ev("o", statusCh, 120, status(open)),
				ev("a2", assigned, 121, to(bob)),
				ev("s2", statusCh, 180, status(solved)),
				ev("cl", statusCh, 240, status(closed))),
			want: []want{
				{bucket.Agent, ana, cf(bucket.Reopens), 1},
				{bucket.Agent, ana, cf(bucket.Resolutions), 0},
				{bucket.Agent, bob, cf(bucket.Resolutions), 1},
				{bucket.Agent, bob, cf(bucket.ResolutionSumMillis), 180 * 60_000},
				{bucket.Agent, bob, cf(bucket.OneTouch), 1},
				{bucket.Agent, ana, cf(bucket.Assigned), 1},
				{bucket.Agent, bob, cf(bucket.Assigned), 1},
				{bucket.Agent, ana, cf(bucket.AssignedNowResolved), 0},
				{bucket.Agent, bob, cf(bucket.AssignedNowResolved), 1},
				{bucket.Team, billing, cf(bucket.AssignedNowResolved), 1},
				{bucket.Team, billing, cf(bucket.Reopens), 1},
			},
		},
		{
			name: "reopened and not re-solved keeps the earlier resolution, rate counts it not resolved",
			events: append(base[:2:2],
				ev("s1", statusCh, 60, status(solved)),
				ev("o", statusCh, 120, status(pending))),
			want: []want{
				{bucket.Agent, ana, cf(bucket.Resolutions), 1},
				{bucket.Agent, ana, cf(bucket.Reopens), 1},
				{bucket.Agent, ana, cf(bucket.AssignedNowResolved), 0},
			},
		},
		{
			name: "two public replies is not one-touch",
			events: append(base[:2:2],
				ev("r1", agentMsg, 5, by(kAgent, ana), public(true)),
				ev("r2", agentMsg, 6, by(kAgent, ana), public(true)),
				ev("s", statusCh, 7, status(solved))),
			want: []want{
				{bucket.Agent, ana, cf(bucket.Resolutions), 1},
				{bucket.Agent, ana, cf(bucket.OneTouch), 0},
			},
		},
		{
			name: "re-rating replaces the old rating",
			events: append(base[:2:2],
				ev("q1", rated, 100, score(2)),
				ev("q2", rated, 200, score(5))),
			want: []want{
				{bucket.Agent, ana, cf(bucket.CSATCount), 1},
				{bucket.Agent, ana, cf(bucket.CSATScoreSum), 5},
				{bucket.Agent, ana, cf(bucket.CSATPositive), 1},
			},
		},
		{
			name: "unassigned ticket credits the team and the unassigned figures",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), team(billing)),
				ev("s", statusCh, 30, status(solved)),
				ev("q", rated, 40, score(1)),
			},
			want: []want{
				{bucket.Unassigned, "", cf(bucket.Resolutions), 1},
				{bucket.Unassigned, "", cf(bucket.CSATCount), 1},
				{bucket.Team, billing, cf(bucket.Resolutions), 1},
				{bucket.Team, billing, cf(bucket.CSATPositive), 0},
			},
		},
		{
			name: "reply before the created event is still measured from creation",
			events: []Event{
				ev("r", agentMsg, 20, by(kAgent, ana), public(true)),
				ev("c", created, 0, by(kCustomer, "cu")),
			},
			want: []want{{bucket.Agent, ana, cf(bucket.FirstSumMillis), 20 * 60_000}},
		},
		{
			name:   "no created event yet: no first response sample",
			events: []Event{ev("r", agentMsg, 20, by(kAgent, ana), public(true))},
			want:   []want{{bucket.Agent, ana, cf(bucket.FirstCount), 0}},
		},
		{
			name: "late first reply breaches the SLA of the ticket's priority",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), priority(tpv1.Priority_PRIORITY_URGENT), to(ana)),
				ev("r", agentMsg, 90, by(kAgent, bob), public(true)),
			},
			want: []want{
				{bucket.Agent, bob, cf(bucket.SLABreached), 1},
				{bucket.Agent, bob, cf(bucket.SLAMet), 0},
			},
		},
		{
			name: "breach without reply is the assignee's once a later event shows it",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), priority(tpv1.Priority_PRIORITY_URGENT), to(ana)),
				ev("m", custMsg, 61, by(kCustomer, "cu")),
			},
			want: []want{{bucket.Agent, ana, cf(bucket.SLABreached), 1}},
		},
		{
			name: "no breach while nothing later than the deadline is known",
			events: []Event{
				ev("c", created, 0, by(kCustomer, "cu"), priority(tpv1.Priority_PRIORITY_URGENT), to(ana)),
				ev("m", custMsg, 59, by(kCustomer, "cu")),
			},
			want: []want{{bucket.Agent, ana, cf(bucket.SLABreached), 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Compute(tt.events, DefaultSLA())
			for _, w := range tt.want {
				if got := fig(c, w.kind, w.id, w.field); got != w.value {
					t.Errorf("%c:%s %s = %d, want %d", w.kind, w.id, w.field.Name(), got, w.value)
				}
			}
		})
	}
}

func TestSamplesLandInTheHourTheIntervalEnds(t *testing.T) {
	c := Compute([]Event{
		ev("c", created, 0, by(kCustomer, "cu"), to("ana")),
		ev("r", agentMsg, 150, by(kAgent, "ana"), public(true)), // 11:30
	}, DefaultSLA())
	want := t0.Add(150*time.Minute).Unix() / 3600
	if got := hourOf(c, bucket.Agent, "ana", cf(bucket.FirstCount)); got != want {
		t.Fatalf("first response in hour %d, want %d", got, want)
	}
	if got := hourOf(c, bucket.Agent, "ana", cf(bucket.Assigned)); got != t0.Unix()/3600 {
		t.Fatalf("assignment in hour %d, want %d", got, t0.Unix()/3600)
	}
}

func TestFieldNamesRoundTripThroughBucket(t *testing.T) {
	fields := []Field{cf(bucket.FirstCount), cf(bucket.SLABreached), BinField(bucket.FirstResponse, hist.ZeroBin),
		BinField(bucket.NextResponse, -300), BinField(bucket.Resolution, 1200), BinField(bucket.QAScore, 0),
		BinField(bucket.QAScore, 1000), cf(bucket.QACount), cf(bucket.QAScoreSum), cf(bucket.QAAutoFails)}
	for _, f := range fields {
		tot := bucket.NewTotals()
		if err := tot.AddField(f.Name(), 1); err != nil {
			t.Fatalf("%v: %v", f.Name(), err)
		}
	}
}

// timing is how randomHistory stamps events: spread over two days, or at minute precision in a
// few minutes (most events share their instant with others, as in exports and helpdesk triggers)
// with random source sequences, 0 (none) included and repeated.
type timing struct {
	minutes   int
	sequences bool
}

var (
	spread        = timing{minutes: 3000}
	sameInstants  = timing{minutes: 4, sequences: true}
	historyTiming = []struct {
		name string
		timing
	}{{"spread", spread}, {"minute precision with sequences", sameInstants}}
)

// at is a random time of the timing, in minutes since t0.
func (tm timing) at(r *rand.Rand) float64 {
	if tm.minutes == spread.minutes && r.IntN(3) == 0 {
		return float64(r.IntN(40))
	}
	return float64(r.IntN(tm.minutes)) // duplicates of time stamps on purpose
}

func (tm timing) seq(r *rand.Rand) func(*Event) {
	return func(e *Event) {
		if tm.sequences {
			e.Sequence = uint64(r.IntN(6))
		}
	}
}

// randomHistory builds a plausible ticket life with random ids and times.
func randomHistory(r *rand.Rand, n int) []Event { return randomHistoryTimed(r, n, spread) }

func randomHistoryTimed(r *rand.Rand, n int, tm timing) []Event {
	agents := []string{"ana", "bob", "chen", ""}
	teams := []string{"billing", "tech", ""}
	statuses := []tpv1.TicketStatus{open, pending, solved, closed, tpv1.TicketStatus_TICKET_STATUS_ON_HOLD}
	var evs []Event
	if r.IntN(5) > 0 {
		kind := kCustomer
		if r.IntN(6) == 0 {
			kind = kAgent
		}
		evs = append(evs, ev("created", created, float64(r.IntN(min(30, tm.minutes))), by(kind, "x"), team(teams[r.IntN(3)]), tm.seq(r)))
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("e%d", i)
		at, sq := tm.at(r), tm.seq(r)
		switch r.IntN(7) {
		case 0:
			evs = append(evs, ev(id, assigned, at, to(agents[r.IntN(4)]), team(teams[r.IntN(3)]), sq))
		case 1, 2:
			kinds := []tpv1.ActorKind{kAgent, kAgent, kBot, tpv1.ActorKind_ACTOR_KIND_AUTOMATION}
			evs = append(evs, ev(id, agentMsg, at, by(kinds[r.IntN(4)], agents[r.IntN(3)]), public(r.IntN(4) > 0), sq))
		case 3:
			evs = append(evs, ev(id, custMsg, at, by(kCustomer, "cu"), sq))
		case 4:
			evs = append(evs, ev(id, statusCh, at, status(statuses[r.IntN(len(statuses))]), sq))
		case 5:
			evs = append(evs, ev(id, rated, at, score(uint8(1+r.IntN(5))), sq))
		case 6:
			evs = append(evs, ev(id, prioCh, at, priority(tpv1.Priority(1+r.IntN(4))), sq))
		}
	}
	return evs
}

// Random histories delivered shuffled and with duplicates give exactly the contribution of the
// in-order, duplicate-free delivery; incremental delivery (batch by batch, diffing as the write path
// does) ends at the same figures. Histories at minute precision, where most events share their
// instant and only kind, sequence and id order them, included.
func TestOrderAndDuplicatesDoNotMatter(t *testing.T) {
	for _, tt := range historyTiming {
		t.Run(tt.name, func(t *testing.T) { orderAndDuplicatesDoNotMatter(t, tt.timing) })
	}
}

func orderAndDuplicatesDoNotMatter(t *testing.T, tm timing) {
	r := rand.New(rand.NewPCG(7, 11))
	events, shared := 0, 0
	for trial := 0; trial < 500; trial++ {
		history := randomHistoryTimed(r, 1+r.IntN(25), tm)
		want := Compute(history, DefaultSLA())
		events, shared = events+len(history), shared+sharingAnInstant(history)

		delivered := append([]Event(nil), history...)
		for i := 0; i < r.IntN(len(history)+1); i++ {
			delivered = append(delivered, history[r.IntN(len(history))])
		}
		r.Shuffle(len(delivered), func(i, j int) { delivered[i], delivered[j] = delivered[j], delivered[i] })

		if got := Compute(delivered, DefaultSLA()); !maps.Equal(got.Values, want.Values) {
			t.Fatalf("trial %d: shuffled delivery differs:\n got %v\nwant %v", trial, got.Values, want.Values)
		} else if !reflect.DeepEqual(got.Ticket, want.Ticket) {
			t.Fatalf("trial %d: shuffled delivery's ticket row differs:\n got %+v\nwant %+v", trial, got.Ticket, want.Ticket)
		}

		applied := map[Key]int64{}
		var prev map[Key]int64
		var seen []Event
		for len(delivered) > 0 {
			n := 1 + r.IntN(len(delivered))
			seen = append(seen, delivered[:n]...)
			delivered = delivered[n:]
			next := Compute(seen, DefaultSLA()).Values
			for k, v := range Diff(prev, next) {
				applied[k] += v
				if applied[k] == 0 {
					delete(applied, k)
				}
			}
			prev = next
		}
		if !maps.Equal(applied, want.Values) {
			t.Fatalf("trial %d: incremental delivery differs:\n got %v\nwant %v", trial, applied, want.Values)
		}
	}
	if tm.sequences && shared < events*3/4 {
		t.Fatalf("only %d of %d events share their instant with another: not the histories this is about", shared, events)
	}
}

// sharingAnInstant counts the events of evs whose time another event of evs has too.
func sharingAnInstant(evs []Event) int {
	at := map[int64]int{}
	for _, e := range evs {
		at[e.AtMillis]++
	}
	n := 0
	for _, e := range evs {
		if at[e.AtMillis] > 1 {
			n++
		}
	}
	return n
}
