package survey

import (
	"errors"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
)

// TestScaleMapping pins every answer of every scale to the score docs/surveys.md states.
func TestScaleMapping(t *testing.T) {
	tests := []struct {
		scale string
		// want[i] is the score of the answer min+i.
		min  int
		want []int
	}{
		{scale: "1-5", min: 1, want: []int{1, 2, 3, 4, 5}},
		{scale: "1-10", min: 1, want: []int{1, 1, 2, 2, 3, 3, 4, 4, 5, 5}},
		{scale: "0-10", min: 0, want: []int{1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5}},
		{scale: "nps", min: 0, want: []int{1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5}},
		{scale: "thumbs", min: 0, want: []int{1, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.scale, func(t *testing.T) {
			s, err := ParseScale(tt.scale)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.want {
				if got, ok := s.Score(tt.min + i); !ok || got != want {
					t.Errorf("answer %d: score %d (ok %v), want %d", tt.min+i, got, ok, want)
				}
			}
			for _, out := range []int{tt.min - 1, tt.min + len(tt.want)} {
				if got, ok := s.Score(out); ok {
					t.Errorf("answer %d is off the scale, got score %d", out, got)
				}
			}
		})
	}
}

func TestParseScaleRejectsUnknownNames(t *testing.T) {
	for _, give := range []string{"", "1-7", "NPS", "5"} {
		if _, err := ParseScale(give); !errors.Is(err, ErrScale) {
			t.Errorf("ParseScale(%q) = %v, want ErrScale", give, err)
		}
	}
}

func TestParseText(t *testing.T) {
	tests := []struct {
		name, scale, give string
		want              int
		wantErr           string
	}{
		{name: "nps promoter", scale: "nps", give: "9", want: 5},
		{name: "nps passive", scale: "nps", give: " 7 ", want: 4},
		{name: "nps detractor", scale: "nps", give: "6", want: 3},
		{name: "whole fraction", scale: "1-10", give: "8.0", want: 4},
		{name: "thumbs yes", scale: "thumbs", give: "Yes", want: 5},
		{name: "thumbs down", scale: "thumbs", give: "down", want: 1},
		{name: "thumbs zero", scale: "thumbs", give: "0", want: 1},
		{name: "fraction", scale: "1-5", give: "4.5", wantErr: "4.5 is outside the scale 1-5 set for this tenant (whole numbers 1 to 5)"},
		{name: "above", scale: "1-5", give: "6", wantErr: "6 is outside the scale 1-5 set for this tenant (whole numbers 1 to 5)"},
		{name: "word on a number scale", scale: "1-5", give: "great", wantErr: `"great" is not a number on the scale 1-5`},
		{name: "NaN", scale: "1-5", give: "NaN", wantErr: `"NaN" is not a number on the scale 1-5`},
		{name: "number on thumbs", scale: "thumbs", give: "5", wantErr: `"5" is not a thumbs answer (want yes/no, true/false, up/down, good/bad or 1/0)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseScale(tt.scale)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Parse(tt.give)
			switch {
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("Parse(%q) = %d, %v; want error %q", tt.give, got, err, tt.wantErr)
			case tt.wantErr == "" && (err != nil || got != tt.want):
				t.Errorf("Parse(%q) = %d, %v; want %d", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestBoolFitsOnlyThumbs(t *testing.T) {
	thumbs, _ := ParseScale("thumbs")
	if up, err := thumbs.Bool(true); err != nil || up != 5 {
		t.Errorf("thumbs up = %d, %v; want 5", up, err)
	}
	if down, err := thumbs.Bool(false); err != nil || down != 1 {
		t.Errorf("thumbs down = %d, %v; want 1", down, err)
	}
	five, _ := ParseScale("1-5")
	if _, err := five.Bool(true); err == nil {
		t.Error("a yes/no answer on a 1-5 scale was accepted")
	}
}

func TestLoadNeedsTheSettings(t *testing.T) {
	for _, give := range []adapter.Settings{
		{},
		{TicketField: "ticket_id", Scale: "1-5"},
		{ScoreQuestion: "q", Scale: "1-5"},
		{TicketField: "ticket_id", ScoreQuestion: "q", Scale: "1-7"},
	} {
		if _, err := Load(give); !errors.Is(err, ErrSettings) {
			t.Errorf("Load(%+v) = %v, want ErrSettings", give, err)
		}
	}
}

// TestEventIDDependsOnTheResponseOnly: a redelivered response, even one whose score was read
// differently, is the same event, and two responses are two events.
func TestEventIDDependsOnTheResponseOnly(t *testing.T) {
	five, _ := ParseScale("1-5")
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	r := Response{Source: "typeform", Form: "f1", ResponseID: "r1", TicketID: "77", At: at, Score: 4, Scale: five}
	again := r
	again.Score, again.At = 2, at.Add(time.Minute)
	other := r
	other.ResponseID = "r2"
	if Event(r).ID != Event(again).ID {
		t.Error("the same response got two event ids")
	}
	if Event(r).ID == Event(other).ID {
		t.Error("two responses share an event id")
	}
	thumbs, _ := ParseScale("thumbs")
	r.Scale, r.Score = thumbs, 5
	if ev := Event(r); ev.Satisfaction.Scale != 2 || ev.Type != "satisfaction_rated" || ev.TicketID != "77" {
		t.Errorf("thumbs event %+v, want a 2-point satisfaction_rated on ticket 77", ev)
	}
}
