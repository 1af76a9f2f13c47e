package contrib

import (
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

const qaScored = tpv1.EventType_EVENT_TYPE_QA_SCORED

// review makes an event a QA review of agent (team) with a score in hundredths.
func review(id, agent, team string, centi uint16, autoFail bool) func(*Event) {
	return func(e *Event) {
		e.QAReview, e.QAAgent, e.QATeam, e.QAScore, e.QAAutoFail = KeyOf(id), agent, team, centi, autoFail
	}
}

func qaBin(centi int64) Field { return BinField(bucket.QAScore, bucket.QABin(centi)) }

func TestQAReviews(t *testing.T) {
	const ana, bo, billing = "ana", "bo", "billing"
	tests := []struct {
		name   string
		events []Event
		want   []want
	}{
		{
			name:   "a review credits the reviewed agent and team",
			events: []Event{ev("q1", qaScored, 0, by(kAgent, "lead"), review("r1", ana, billing, 8750, false))},
			want: []want{
				{bucket.Agent, ana, cf(bucket.QACount), 1},
				{bucket.Agent, ana, cf(bucket.QAScoreSum), 8750},
				{bucket.Agent, ana, qaBin(8750), 1},
				{bucket.Agent, ana, cf(bucket.QAAutoFails), 0},
				{bucket.Team, billing, cf(bucket.QACount), 1},
				{bucket.Agent, "lead", cf(bucket.QACount), 0},
			},
		},
		{
			name: "a re-score replaces the earlier score, wherever it was delivered",
			events: []Event{
				ev("q2", qaScored, 90, by(kAgent, "lead"), review("r1", ana, billing, 4000, true)),
				ev("q1", qaScored, 0, by(kAgent, "lead"), review("r1", ana, billing, 8750, false)),
			},
			want: []want{
				{bucket.Agent, ana, cf(bucket.QACount), 1},
				{bucket.Agent, ana, cf(bucket.QAScoreSum), 4000},
				{bucket.Agent, ana, qaBin(8750), 0},
				{bucket.Agent, ana, qaBin(4000), 1},
				{bucket.Agent, ana, cf(bucket.QAAutoFails), 1},
			},
		},
		{
			name: "the same review under another event id counts once",
			events: []Event{
				ev("q1", qaScored, 0, review("r1", ana, billing, 10000, false)),
				ev("q1-copy", qaScored, 0, review("r1", ana, billing, 10000, false)),
				ev("q1", qaScored, 0, review("r1", ana, billing, 10000, false)),
			},
			want: []want{{bucket.Agent, ana, cf(bucket.QACount), 1}, {bucket.Agent, ana, cf(bucket.QAScoreSum), 10000}},
		},
		{
			name: "two reviews of one ticket, of two agents, and one without a team",
			events: []Event{
				ev("q1", qaScored, 0, review("r1", ana, billing, 0, true)),
				ev("q2", qaScored, 5, review("r2", bo, "", 9000, false)),
			},
			want: []want{
				{bucket.Agent, ana, cf(bucket.QACount), 1},
				{bucket.Agent, ana, qaBin(0), 1},
				{bucket.Agent, bo, cf(bucket.QACount), 1},
				{bucket.Team, billing, cf(bucket.QACount), 1},
				{bucket.Team, billing, cf(bucket.QAAutoFails), 1},
				{bucket.Team, "", cf(bucket.QACount), 0},
			},
		},
		{
			name:   "a review whose agent is unknown goes to the unassigned figures",
			events: []Event{ev("q1", qaScored, 0, review("r1", "", billing, 5000, false))},
			want:   []want{{bucket.Unassigned, "", cf(bucket.QACount), 1}, {bucket.Team, billing, cf(bucket.QAScoreSum), 5000}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Compute(tt.events, DefaultSLA())
			for _, w := range tt.want {
				if got := fig(c, w.kind, w.id, w.field); got != w.value {
					t.Errorf("%v %q %s = %d, want %d", w.kind, w.id, w.field.Name(), got, w.value)
				}
			}
		})
	}
}

// The reviews of a ticket give the same figures whatever their order, duplicates and batches.
func TestQAReviewsOrderAndDuplicatesDoNotMatter(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for trial := 0; trial < 300; trial++ {
		var history []Event
		for i := range 1 + r.IntN(12) {
			id := string(rune('a' + i))
			history = append(history, ev(id, qaScored, float64(r.IntN(4)), // minute precision: ties
				review("r"+string(rune('0'+r.IntN(3))), []string{"ana", "bo"}[r.IntN(2)], "billing",
					uint16(r.IntN(10001)), r.IntN(4) == 0)))
		}
		want := Compute(history, DefaultSLA()).Values
		delivered := append([]Event(nil), history...)
		for range r.IntN(len(history) + 1) {
			delivered = append(delivered, history[r.IntN(len(history))])
		}
		r.Shuffle(len(delivered), func(i, j int) { delivered[i], delivered[j] = delivered[j], delivered[i] })
		if got := Compute(delivered, DefaultSLA()).Values; !maps.Equal(got, want) {
			t.Fatalf("trial %d: shuffled delivery differs:\n got %v\nwant %v", trial, got, want)
		}
		applied := map[Key]int64{}
		var prev map[Key]int64
		var seen []Event
		for len(delivered) > 0 {
			n := 1 + r.IntN(len(delivered))
			seen, delivered = append(seen, delivered[:n]...), delivered[n:]
			next := Compute(seen, DefaultSLA()).Values
			for k, v := range Diff(prev, next) {
				if applied[k] += v; applied[k] == 0 {
					delete(applied, k)
				}
			}
			prev = next
		}
		if !maps.Equal(applied, want) {
			t.Fatalf("trial %d: incremental delivery differs:\n got %v\nwant %v", trial, applied, want)
		}
	}
}

func TestQAFromProto(t *testing.T) {
	pe := &tpv1.TicketEvent{Id: "e", TicketId: "T-1", Type: qaScored, OccurredAt: timestamppb.New(t0.Add(time.Hour)),
		Qa: &tpv1.QaReview{ReviewId: "r-9", AgentId: "ana", TeamId: "billing", Score: 87.46, AutoFail: true}}
	e := FromProto(pe)
	if e.QAReview != KeyOf("r-9") || e.QAAgent != "ana" || e.QATeam != "billing" || e.QAScore != 8746 || !e.QAAutoFail {
		t.Errorf("FromProto = %+v", e)
	}
	if got := StateID(pe); got != QAState("T-1") || got == "T-1" {
		t.Errorf("StateID of a review = %q", got)
	}
	pe.Type, pe.Qa = created, nil
	if got := StateID(pe); got != "T-1" {
		t.Errorf("StateID of a ticket event = %q", got)
	}
	for _, tt := range []struct {
		give float64
		want uint16
	}{{-3, 0}, {100.5, 10000}, {33.333, 3333}, {0.005, 1}} {
		pe.Qa = &tpv1.QaReview{ReviewId: "r", Score: tt.give}
		if got := FromProto(pe).QAScore; got != tt.want {
			t.Errorf("score %v kept as %d, want %d", tt.give, got, tt.want)
		}
	}
}
