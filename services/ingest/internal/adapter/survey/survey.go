// Package survey holds what the survey sources (Typeform, SurveyMonkey, Qualtrics) share: the
// scales a tenant may name for its score question and their mapping onto the canonical 1..5
// rating, and the satisfaction_rated event a survey response becomes. docs/surveys.md states the
// mapping; the tests here pin it.
package survey

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Scale is the scale of a tenant's score question.
type Scale struct {
	name     string
	min, max int
	// points is the canonical Satisfaction.Scale: 2 for thumbs, 5 for the rest (the canonical
	// form knows only 2, 3 and 5 points; a 10-point answer is mapped onto 5 first).
	points int
	score  func(n int) int
}

// The scales, by the name the tenants file uses.
var scales = []Scale{
	{name: "1-5", min: 1, max: 5, points: 5, score: func(n int) int { return n }},
	// ceil(n/2): 1-2 → 1, 3-4 → 2, 5-6 → 3, 7-8 → 4, 9-10 → 5.
	{name: "1-10", min: 1, max: 10, points: 5, score: func(n int) int { return (n + 1) / 2 }},
	// 0-2 → 1, 3-4 → 2, 5-6 → 3, 7-8 → 4, 9-10 → 5: NPS promoters (9-10) are 5 and passives
	// (7-8) 4, so both count as satisfied (≥ 4); detractors (0-6) are 1 to 3.
	{name: "0-10", min: 0, max: 10, points: 5, score: zeroToTen},
	{name: "nps", min: 0, max: 10, points: 5, score: zeroToTen},
	// Thumbs up is 1, down is 0 (see Scale.Parse for the words); up → 5, down → 1.
	{name: "thumbs", min: 0, max: 1, points: 2, score: func(n int) int { return 1 + 4*n }},
}

func zeroToTen(n int) int { return max(1, (n+1)/2) }

// Names lists the scale names, for error messages and docs.
func Names() []string {
	out := make([]string, len(scales))
	for i, s := range scales {
		out[i] = s.name
	}
	return out
}

// ErrScale reports a scale name that is not one of Names.
var ErrScale = errors.New("unknown scale")

// ParseScale returns the scale named s.
func ParseScale(s string) (Scale, error) {
	for _, sc := range scales {
		if sc.name == s {
			return sc, nil
		}
	}
	return Scale{}, fmt.Errorf("%w %q (want one of %s)", ErrScale, s, strings.Join(Names(), ", "))
}

// String is the scale's name.
func (s Scale) String() string { return s.name }

// Points is the canonical Satisfaction.Scale of a rating on s.
func (s Scale) Points() int { return s.points }

// Score maps the answer n onto 1..5; false when n is outside the scale.
func (s Scale) Score(n int) (int, bool) {
	if s.score == nil || n < s.min || n > s.max {
		return 0, false
	}
	return s.score(n), true
}

// thumbsWords are the answers a two-way question records, as the survey tools spell them.
var thumbsWords = map[string]int{
	"1": 1, "true": 1, "yes": 1, "up": 1, "thumbs up": 1, "good": 1, "👍": 1,
	"0": 0, "false": 0, "no": 0, "down": 0, "thumbs down": 0, "bad": 0, "👎": 0,
}

// Parse reads an answer given as text (Qualtrics' piped values, SurveyMonkey's simple_text)
// and maps it onto 1..5. A number may carry a fraction only if it is whole ("9.0"); a thumbs
// answer may also be a word (yes/no, true/false, up/down, good/bad).
func (s Scale) Parse(text string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(text))
	if s.name == "thumbs" {
		if n, ok := thumbsWords[t]; ok {
			return s.score(n), nil
		}
		return 0, fmt.Errorf("%q is not a thumbs answer (want yes/no, true/false, up/down, good/bad or 1/0)", adapter.Truncate(text, 40))
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number on the scale %s", adapter.Truncate(text, 40), s.name)
	}
	return s.Number(f)
}

// Number maps a numeric answer onto 1..5: it must be whole and on the scale.
func (s Scale) Number(f float64) (int, error) {
	if f != math.Trunc(f) || f < float64(s.min) || f > float64(s.max) {
		return 0, fmt.Errorf("%s is outside the scale %s set for this tenant (whole numbers %d to %d)",
			strconv.FormatFloat(f, 'g', 6, 64), s.name, s.min, s.max)
	}
	n, _ := s.Score(int(f))
	return n, nil
}

// Bool maps a yes/no answer; only a thumbs scale takes one.
func (s Scale) Bool(b bool) (int, error) {
	if s.name != "thumbs" {
		return 0, fmt.Errorf("a yes/no answer does not fit the scale %s set for this tenant (set scale: thumbs)", s.name)
	}
	if b {
		return s.score(1), nil
	}
	return s.score(0), nil
}

// ErrSettings reports a tenant's source settings that cannot map a response: the tenants file
// validation should make it unreachable, so it is a server-side error, not the sender's.
var ErrSettings = errors.New("survey settings incomplete")

// Config is a tenant's survey settings, checked.
type Config struct {
	adapter.Settings
	Scale Scale
}

// Load checks the settings a delivery carries.
func Load(s adapter.Settings) (Config, error) {
	if s.TicketField == "" || s.ScoreQuestion == "" {
		return Config{}, fmt.Errorf("%w: ticket_field and score_question are required", ErrSettings)
	}
	sc, err := ParseScale(s.Scale)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	return Config{Settings: s, Scale: sc}, nil
}

// Skip reasons the survey sources share.
const (
	// ReasonNoTicket: the response names no ticket (the survey was opened without the ticket id
	// in its link); there is nothing to rate.
	ReasonNoTicket = "no_ticket"
	// ReasonNoScore: the score question was left unanswered.
	ReasonNoScore = "no_score"
	// ReasonFetchRequired: the delivery names a response but does not carry its answers; they
	// would have to be fetched from the vendor's API, which ingest does not call.
	ReasonFetchRequired = "fetch_required"
	// ReasonUnsupportedEvent: an event about something other than a completed response.
	ReasonUnsupportedEvent = "unsupported_event"
	// ReasonIncomplete: a partial, disqualified or over-quota response.
	ReasonIncomplete = "incomplete"
)

// Response is what a survey response says about a ticket.
type Response struct {
	Source string
	// Form and ResponseID identify the response at the source; the event id is derived from
	// them alone, so every delivery of the response is the same event.
	Form, ResponseID string
	// Version tells apart the edits of a response that can be edited (SurveyMonkey's
	// date_modified): each edit is a new event, which kpi counts as a re-rating; "" otherwise.
	Version  string
	TicketID string
	AgentID  string
	At       time.Time
	Score    int
	Scale    Scale
	Comment  string
}

// Event is the satisfaction_rated event of r. The rater is the customer, whose id the survey
// does not know, so the actor is the system (as for helpdesk ratings without a customer).
func Event(r Response) canonical.Event {
	ev := canonical.Event{
		ID:           adapter.EventID(r.Source, "response", r.Form, r.ResponseID, r.Version),
		Source:       r.Source,
		TicketID:     r.TicketID,
		Type:         "satisfaction_rated",
		OccurredAt:   r.At,
		Actor:        canonical.Actor{Kind: "system"},
		AssigneeID:   r.AgentID,
		Satisfaction: &canonical.Satisfaction{Score: r.Score, Comment: adapter.Comment(r.Comment)},
	}
	if p := r.Scale.Points(); p != 5 {
		ev.Satisfaction.Scale = p
	}
	return ev
}

// Ticket reads the ticket id from the value of the ticket field: "" and a placeholder left
// unfilled ({{ticket.id}} of a helpdesk template, ${e://...} of Qualtrics piped text,
// [ticket_id_value] of a SurveyMonkey link) are no ticket, reported by ok false.
func Ticket(v, field string) (id string, ok bool, err error) {
	v = strings.TrimSpace(v)
	if v == "" || strings.Contains(v, "{{") || strings.Contains(v, "${") ||
		(strings.HasPrefix(v, "[") && strings.HasSuffix(v, "_value]")) {
		return "", false, nil
	}
	id, err = adapter.Ident(v, field)
	return id, err == nil, err
}

// Agent reads the optional agent id the same way; "" when absent.
func Agent(v, field string) (string, error) {
	id, _, err := Ticket(v, field)
	return id, err
}
