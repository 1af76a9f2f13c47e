// Package qualtrics maps Qualtrics survey-engine event deliveries to satisfaction ratings. An
// event subscription posts a form with Topic and MSG, MSG being JSON that names the response
// (ResponseID, SurveyID, CompletedDate, Status) without its answers: such a delivery is
// accepted and skipped as fetch_required. A Workflows web service task can post the same form
// with the answers piped into MSG (the ticket's embedded data field, the score question's
// value): that maps to satisfaction_rated (docs/surveys.md).
package qualtrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/survey"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "qualtrics"

// completedTopic starts the topic of a completed response; the survey id follows.
const completedTopic = "surveyengine.completedresponse."

// Adapter maps Qualtrics deliveries; it holds no state.
type Adapter struct{}

var _ adapter.FormSource = (*Adapter)(nil)

// New returns the Qualtrics adapter.
func New() *Adapter { return &Adapter{} }

// Source implements adapter.Adapter.
func (*Adapter) Source() string { return Source }

// FormEncoded implements adapter.FormSource: Qualtrics posts
// application/x-www-form-urlencoded, not JSON.
func (*Adapter) FormEncoded() {}

// message is MSG's fixed part.
type message struct {
	Status        string     `json:"Status"`
	SurveyID      adapter.ID `json:"SurveyID"`
	ResponseID    adapter.ID `json:"ResponseID"`
	CompletedDate string     `json:"CompletedDate"`
}

// Qualtrics writes CompletedDate without a zone; it is read as UTC (docs/surveys.md says so).
var timeLayouts = []string{"2006-01-02 15:04:05", time.RFC3339Nano, "2006-01-02T15:04:05"}

// Map implements adapter.Adapter.
func (a *Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	cfg, err := survey.Load(d.Settings)
	if err != nil {
		return adapter.Result{}, err
	}
	form, err := url.ParseQuery(string(d.Body))
	if err != nil {
		return adapter.Result{}, adapter.Malformed("", "not a form (application/x-www-form-urlencoded): %v", err)
	}
	topic := strings.TrimSpace(form.Get("Topic"))
	if topic == "" {
		return adapter.Result{}, adapter.Malformed("Topic", "required")
	}
	if !strings.HasPrefix(strings.ToLower(topic), completedTopic) {
		return adapter.Skipped(survey.ReasonUnsupportedEvent, "topic %q", adapter.Truncate(topic, 80)), nil
	}
	raw := form.Get("MSG")
	if strings.TrimSpace(raw) == "" {
		return adapter.Result{}, adapter.Malformed("MSG", "required")
	}
	var msg message
	if err := decode(raw, &msg); err != nil {
		return adapter.Result{}, err
	}
	var values map[string]json.RawMessage
	if err := decode(raw, &values); err != nil {
		return adapter.Result{}, err
	}
	rid, err := adapter.RequiredIdent(string(msg.ResponseID), "MSG.ResponseID")
	if err != nil {
		return adapter.Result{}, err
	}
	sid, err := adapter.RequiredIdent(string(msg.SurveyID), "MSG.SurveyID")
	if err != nil {
		return adapter.Result{}, err
	}
	if st := adapter.Lower(msg.Status); st != "" && st != "complete" {
		return adapter.Skipped(survey.ReasonIncomplete, "response %s of survey %s is %q", rid, sid, adapter.Truncate(msg.Status, 40)), nil
	}
	at, err := adapter.ParseTime(msg.CompletedDate, "MSG.CompletedDate", "a time like 2026-11-24 10:02:05", timeLayouts)
	if err != nil {
		return adapter.Result{}, err
	}
	_, hasTicket := values[cfg.TicketField]
	_, hasScore := values[cfg.ScoreQuestion]
	if !hasTicket && !hasScore {
		return adapter.Skipped(survey.ReasonFetchRequired,
			"response %s of survey %s: MSG carries no answers; they are at GET /API/v3/surveys/%s/responses/%s", rid, sid, sid, rid), nil
	}
	ticketField := "MSG." + cfg.TicketField
	tv, err := adapter.RawID(values[cfg.TicketField], ticketField)
	if err != nil {
		return adapter.Result{}, err
	}
	ticket, ok, err := survey.Ticket(tv, ticketField)
	if err != nil {
		return adapter.Result{}, err
	}
	if !ok {
		return adapter.Skipped(survey.ReasonNoTicket, "response %s of survey %s has no %s embedded data", rid, sid, cfg.TicketField), nil
	}
	var agent string
	if cfg.AgentField != "" {
		f := "MSG." + cfg.AgentField
		av, err := adapter.RawID(values[cfg.AgentField], f)
		if err != nil {
			return adapter.Result{}, err
		}
		if agent, err = survey.Agent(av, f); err != nil {
			return adapter.Result{}, err
		}
	}
	score, ok, err := scoreOf(values[cfg.ScoreQuestion], cfg.Scale, "MSG."+cfg.ScoreQuestion)
	if err != nil {
		return adapter.Result{}, err
	}
	if !ok {
		return adapter.Skipped(survey.ReasonNoScore, "response %s of survey %s does not answer %s", rid, sid, cfg.ScoreQuestion), nil
	}
	var comment string
	if cfg.CommentQuestion != "" {
		// A comment of any other JSON type is no comment: it is free text or nothing.
		_ = json.Unmarshal(values[cfg.CommentQuestion], &comment)
	}
	return adapter.One(survey.Event(survey.Response{
		Source: Source, Form: sid, ResponseID: rid,
		TicketID: ticket, AgentID: agent, At: at,
		Score: score, Scale: cfg.Scale, Comment: comment,
	})), nil
}

// decode reads MSG, naming MSG in the problems.
func decode(raw string, v any) error {
	err := adapter.DecodeJSON([]byte(raw), v)
	var ps canonical.Problems
	if !errors.As(err, &ps) {
		return err
	}
	for i := range ps.List {
		ps.List[i].Field = strings.TrimSuffix("MSG."+ps.List[i].Field, ".")
	}
	return ps
}

// scoreOf reads the piped value of the score question: a number, or text (piped text is
// always text); absent, null or "" (unanswered) is ok false.
func scoreOf(raw json.RawMessage, scale survey.Scale, field string) (int, bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `""` {
		return 0, false, nil
	}
	var (
		n   int
		err error
	)
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, false, adapter.Malformed(field, "must be a string or a number")
		}
		if strings.TrimSpace(s) == "" {
			return 0, false, nil
		}
		n, err = scale.Parse(s)
	case 't', 'f':
		n, err = scale.Bool(raw[0] == 't')
	default:
		var f float64
		if json.Unmarshal(raw, &f) != nil {
			return 0, false, adapter.Malformed(field, "must be a string or a number")
		}
		n, err = scale.Number(f)
	}
	if err != nil {
		return 0, false, adapter.Malformed(field, "%v", err)
	}
	return n, true, nil
}
