// Package typeform maps Typeform form_response webhooks to satisfaction ratings: the hidden
// field the tenant named carries the helpdesk ticket id, the answer to the tenant's score
// question is the score (docs/surveys.md).
package typeform

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/survey"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "typeform"

// Adapter maps Typeform deliveries; it holds no state.
type Adapter struct{}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns the Typeform adapter.
func New() *Adapter { return &Adapter{} }

// Source implements adapter.Adapter.
func (*Adapter) Source() string { return Source }

// delivery is the webhook body: https://www.typeform.com/developers/webhooks/example-payload/
type delivery struct {
	EventID      string    `json:"event_id"`
	EventType    string    `json:"event_type"`
	FormResponse *response `json:"form_response"`
}

type response struct {
	FormID      string                     `json:"form_id"`
	Token       string                     `json:"token"`
	SubmittedAt string                     `json:"submitted_at"`
	Hidden      map[string]json.RawMessage `json:"hidden"`
	Answers     []answer                   `json:"answers"`
}

// answer holds the one value its type names (number, boolean, text, choice...).
type answer struct {
	Type  string `json:"type"`
	Field struct {
		ID   string `json:"id"`
		Ref  string `json:"ref"`
		Type string `json:"type"`
	} `json:"field"`
	Number  *float64 `json:"number"`
	Boolean *bool    `json:"boolean"`
	Text    *string  `json:"text"`
	Choice  *struct {
		Label string `json:"label"`
	} `json:"choice"`
}

// Map implements adapter.Adapter.
func (a *Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	cfg, err := survey.Load(d.Settings)
	if err != nil {
		return adapter.Result{}, err
	}
	var body delivery
	if err := adapter.DecodeJSON(d.Body, &body); err != nil {
		return adapter.Result{}, err
	}
	switch adapter.Lower(body.EventType) {
	case "":
		return adapter.Result{}, adapter.Malformed("event_type", "required")
	case "form_response":
	default:
		// form_response_partial and whatever Typeform adds later: not a finished response.
		return adapter.Skipped(survey.ReasonUnsupportedEvent, "event_type %q", adapter.Truncate(body.EventType, 60)), nil
	}
	r := body.FormResponse
	if r == nil {
		return adapter.Result{}, adapter.Malformed("form_response", "required for a form_response event")
	}
	form, err := adapter.RequiredIdent(r.FormID, "form_response.form_id")
	if err != nil {
		return adapter.Result{}, err
	}
	token, err := adapter.RequiredIdent(r.Token, "form_response.token")
	if err != nil {
		return adapter.Result{}, err
	}
	at, err := adapter.ParseTime(r.SubmittedAt, "form_response.submitted_at", "an RFC 3339 time", []string{time.RFC3339Nano})
	if err != nil {
		return adapter.Result{}, err
	}
	ticketField := "form_response.hidden." + cfg.TicketField
	ticketRaw, err := adapter.RawID(r.Hidden[cfg.TicketField], ticketField)
	if err != nil {
		return adapter.Result{}, err
	}
	ticket, ok, err := survey.Ticket(ticketRaw, ticketField)
	if err != nil {
		return adapter.Result{}, err
	}
	if !ok {
		return adapter.Skipped(survey.ReasonNoTicket, "response %s of form %s has no %s hidden field", token, form, cfg.TicketField), nil
	}
	var agent string
	if cfg.AgentField != "" {
		agentField := "form_response.hidden." + cfg.AgentField
		raw, err := adapter.RawID(r.Hidden[cfg.AgentField], agentField)
		if err != nil {
			return adapter.Result{}, err
		}
		if agent, err = survey.Agent(raw, agentField); err != nil {
			return adapter.Result{}, err
		}
	}
	i := find(r.Answers, cfg.ScoreQuestion)
	if i < 0 {
		return adapter.Skipped(survey.ReasonNoScore, "response %s of form %s does not answer %s", token, form, cfg.ScoreQuestion), nil
	}
	score, err := scoreOf(&r.Answers[i], cfg.Scale, fmt.Sprintf("form_response.answers[%d]", i))
	if err != nil {
		return adapter.Result{}, err
	}
	var comment string
	if cfg.CommentQuestion != "" {
		if j := find(r.Answers, cfg.CommentQuestion); j >= 0 && r.Answers[j].Text != nil {
			comment = *r.Answers[j].Text
		}
	}
	return adapter.One(survey.Event(survey.Response{
		Source: Source, Form: form, ResponseID: token,
		TicketID: ticket, AgentID: agent, At: at,
		Score: score, Scale: cfg.Scale, Comment: comment,
	})), nil
}

// find returns the index of the answer to the question named by its ref or its id, -1 if none:
// refs are what a form's author can choose and keep across copies of a form, ids what the API
// shows first.
func find(answers []answer, question string) int {
	for i := range answers {
		if f := answers[i].Field; f.Ref == question || f.ID == question {
			return i
		}
	}
	return -1
}

// scoreOf reads the score from the answer by its type: a number (opinion_scale, rating, nps,
// number fields), a boolean (yes_no, legal), a choice's label or a text.
func scoreOf(a *answer, scale survey.Scale, field string) (int, error) {
	var (
		n   int
		err error
		at  string
	)
	switch adapter.Lower(a.Type) {
	case "number":
		at = field + ".number"
		if a.Number == nil {
			return 0, adapter.Malformed(at, "required for a number answer")
		}
		n, err = scale.Number(*a.Number)
	case "boolean":
		at = field + ".boolean"
		if a.Boolean == nil {
			return 0, adapter.Malformed(at, "required for a boolean answer")
		}
		n, err = scale.Bool(*a.Boolean)
	case "choice":
		at = field + ".choice.label"
		if a.Choice == nil {
			return 0, adapter.Malformed(field+".choice", "required for a choice answer")
		}
		n, err = scale.Parse(a.Choice.Label)
	case "text":
		at = field + ".text"
		if a.Text == nil {
			return 0, adapter.Malformed(at, "required for a text answer")
		}
		n, err = scale.Parse(*a.Text)
	default:
		return 0, adapter.Malformed(field+".type", "a %q answer cannot be a score (want number, boolean, choice or text)", adapter.Truncate(a.Type, 40))
	}
	if err != nil {
		return 0, adapter.Malformed(at, "%v", err)
	}
	return n, nil
}
