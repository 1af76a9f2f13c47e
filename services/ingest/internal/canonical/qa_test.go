package canonical

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// qaScored is a valid qa_scored event with extra members spliced in.
func qaScored(extra string) string {
	return `{"id":"qa-1","ticket_id":"T-1","type":"qa_scored","occurred_at":"2026-03-02T09:00:00Z",` +
		`"actor":{"id":"rev-1","kind":"agent"},` + extra + `}`
}

const validQA = `"qa":{"review_id":"r-1","reviewer_id":"rev-1","agent_id":"ana","team_id":"billing","score":87.456,` +
	`"auto_fail":false,"scorecard":"Email v2","categories":{"Empathy":100,"Accuracy":66.666}}`

func TestDecodeQAScored(t *testing.T) {
	evs, err := Decode([]byte(qaScored(validQA)), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	got := Proto(evs, "acme", testNow)[0]
	want := &ticketpulsev1.QaReview{ReviewId: "r-1", ReviewerId: "rev-1", AgentId: "ana", TeamId: "billing",
		Score: 87.46, Scorecard: "Email v2", Categories: map[string]float64{"Empathy": 100, "Accuracy": 66.67}}
	if got.GetType() != ticketpulsev1.EventType_EVENT_TYPE_QA_SCORED || !proto.Equal(got.GetQa(), want) {
		t.Errorf("got %v %v\nwant %v", got.GetType(), got.GetQa(), want)
	}
	if err := Validate(evs, testOptions()); err != nil {
		t.Errorf("Validate rejects the decoded event: %v", err)
	}
}

func TestRoundScore(t *testing.T) {
	tests := []struct {
		give, want float64
	}{
		{0, 0}, {100, 100}, {87.455, 87.46}, {87.454, 87.45}, {33.333333, 33.33}, {0.004, 0}, {99.995, 100},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.give), func(t *testing.T) {
			if got := RoundScore(tt.give); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("RoundScore(%v) = %v; want %v", tt.give, got, tt.want)
			}
		})
	}
}

func TestDecodeQAProblems(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []Problem
	}{
		{
			name: "qa required, ticket attributes refused",
			give: qaScored(`"assignee_id":"ana","team_id":"billing","priority":"high","status":"open","public":true,` +
				`"satisfaction":{"score":5},"channel":"email","tags":["x"]`),
			want: []Problem{
				{0, "assignee_id", qaForbidden}, {0, "team_id", qaForbidden}, {0, "priority", qaForbidden},
				{0, "status", qaForbidden}, {0, "public", qaForbidden}, {0, "satisfaction", qaForbidden},
				{0, "channel", qaForbidden}, {0, "tags", qaForbidden}, {0, "qa", "required for qa_scored"},
			},
		},
		{
			name: "empty values of refused fields are no values",
			give: qaScored(`"assignee_id":"","tags":[],"public":null,` + validQA),
		},
		{
			name: "qa on another type",
			give: `{"id":"e","ticket_id":"T-1","type":"ticket_created","occurred_at":"2026-03-02T09:00:00Z","actor":{"kind":"system"},` + validQA + `}`,
			want: []Problem{{0, "qa", "only allowed on qa_scored"}},
		},
		{
			name: "required members of qa",
			give: qaScored(`"qa":{"review_id":"","agent_id":null}`),
			want: []Problem{
				{0, "qa.review_id", "must not be empty"},
				{0, "qa.agent_id", "required"},
				{0, "qa.score", "required"},
			},
		},
		{
			name: "scores out of range or of the wrong type",
			give: `[` + qaScored(`"qa":{"review_id":"r","agent_id":"a","score":100.001}`) + `,` +
				qaScored(`"qa":{"review_id":"r","agent_id":"a","score":-0.5}`) + `,` +
				qaScored(`"qa":{"review_id":"r","agent_id":"a","score":"87"}`) + `,` +
				qaScored(`"qa":{"review_id":"r","agent_id":"a","score":1e999}`) + `,` +
				qaScored(`"qa":{"review_id":"r","agent_id":"a","score":true,"auto_fail":"yes"}`) + `,` +
				qaScored(`"qa":[]`) + `]`,
			want: []Problem{
				{0, "qa.score", "must be a percentage between 0 and 100"},
				{1, "qa.score", "must be a percentage between 0 and 100"},
				{2, "qa.score", "must be a JSON number, not a string"},
				{3, "qa.score", "must be a percentage between 0 and 100"},
				{4, "qa.score", "must be a JSON number, not a boolean"},
				{4, "qa.auto_fail", "must be a boolean"},
				{5, "qa", "must be an object"},
			},
		},
		{
			name: "categories",
			give: qaScored(`"qa":{"review_id":"r","agent_id":"a","score":50,"categories":{"Tone":101,"":5,"A\u0001":5,"Tone":4,"Greeting":null,"Links":"x"},"grade":"B","team_id":"\u0000"}`),
			want: []Problem{
				{0, "qa.categories.Tone", "must be a percentage between 0 and 100"},
				{0, "qa.categories", "category name must not be empty"},
				{0, "qa.categories", "category name contains the control character U+0001"},
				{0, "qa.categories.Tone", "duplicate category"},
				{0, "qa.categories.Greeting", "must be a JSON number, not null"},
				{0, "qa.categories.Links", "must be a JSON number, not a string"},
				{0, "qa.grade", "unknown field"},
				{0, "qa.team_id", "contains the control character U+0000"},
			},
		},
		{
			name: "too many categories",
			give: qaScored(`"qa":{"review_id":"r","agent_id":"a","score":50,"categories":{` + manyCategories(MaxCategories+1) + `}}`),
			want: []Problem{{0, "qa.categories", "more than 100 categories"}},
		},
		{
			name: "a duplicate qa member",
			give: qaScored(`"qa":{"review_id":"r","agent_id":"a","score":50,"score":60}`),
			want: []Problem{{0, "qa.score", "duplicate field"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions()
			o.MaxEvents = 0
			_, err := Decode([]byte(tt.give), o)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("err = %v; want Problems", err)
			}
			if fmt.Sprint(probs.List) != fmt.Sprint(tt.want) || probs.More != 0 {
				t.Errorf("got %d more and\n%+v\nwant\n%+v", probs.More, probs.List, tt.want)
			}
		})
	}
}

func manyCategories(n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`"c%d":50`, i)
	}
	return strings.Join(items, ",")
}

func TestValidateQA(t *testing.T) {
	review := func(mod func(*QA)) *QA {
		q := &QA{ReviewID: "r-1", AgentID: "ana", Score: 90, Categories: map[string]float64{"Tone": 80}}
		if mod != nil {
			mod(q)
		}
		return q
	}
	qaEvent := func(mod func(*Event)) Event {
		return typed(func(e *Event) {
			e.Type, e.Actor, e.QA = "qa_scored", Actor{ID: "rev-1", Kind: "agent"}, review(nil)
			if mod != nil {
				mod(e)
			}
		})
	}
	tests := []struct {
		name string
		give []Event
		want []Problem
	}{
		{name: "valid", give: []Event{qaEvent(nil), qaEvent(func(e *Event) { e.QA = review(func(q *QA) { q.Score, q.Categories = 0, nil }) })}},
		{
			name: "review fields",
			give: []Event{qaEvent(func(e *Event) {
				e.QA = review(func(q *QA) {
					q.ReviewID, q.AgentID, q.Score, q.Scorecard = "", "", math.NaN(), strings.Repeat("s", MaxIDBytes+1)
					q.Categories = map[string]float64{"b": -1, "a": 100.5, "": 1}
				})
			})},
			want: []Problem{
				{0, "qa.review_id", "must not be empty"},
				{0, "qa.agent_id", "must not be empty"},
				{0, "qa.score", "must be a percentage between 0 and 100"},
				{0, "qa.scorecard", "longer than 256 bytes"},
				{0, "qa.categories", "category name must not be empty"},
				{0, "qa.categories.a", "must be a percentage between 0 and 100"},
				{0, "qa.categories.b", "must be a percentage between 0 and 100"},
			},
		},
		{
			name: "ticket attributes on a review, a review on another type",
			give: []Event{
				qaEvent(func(e *Event) { e.TeamID, e.Tags, e.QA = "billing", []string{"x"}, nil }),
				typed(func(e *Event) { e.QA = review(nil) }),
			},
			want: []Problem{
				{0, "team_id", qaForbidden}, {0, "tags", qaForbidden}, {0, "qa", "required for qa_scored"},
				{1, "qa", "only allowed on qa_scored"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.give, testOptions())
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("err = %v; want Problems", err)
			}
			if fmt.Sprint(probs.List) != fmt.Sprint(tt.want) || probs.More != 0 {
				t.Errorf("got %d more and\n%+v\nwant\n%+v", probs.More, probs.List, tt.want)
			}
		})
	}
}
