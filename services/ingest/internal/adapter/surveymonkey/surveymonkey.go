// Package surveymonkey maps SurveyMonkey deliveries to satisfaction ratings. SurveyMonkey's
// webhooks name a response by its ids only (object_id, resources.survey_id): the answers are not
// in them, and ingest calls no vendor API, so a webhook is accepted and skipped as
// fetch_required. What maps is the response itself, as GET
// /v3/surveys/{survey_id}/responses/{id}/details?simple=true returns it, posted to the same
// route by a relay the tenant runs, signed the same way (docs/surveys.md).
package surveymonkey

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/survey"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "surveymonkey"

// Adapter maps SurveyMonkey deliveries; it holds no state.
type Adapter struct{}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns the SurveyMonkey adapter.
func New() *Adapter { return &Adapter{} }

// Source implements adapter.Adapter.
func (*Adapter) Source() string { return Source }

// notification is a webhook event: https://api.surveymonkey.com/v3/docs#webhooks
type notification struct {
	EventType  string     `json:"event_type"`
	EventID    adapter.ID `json:"event_id"`
	ObjectType string     `json:"object_type"`
	ObjectID   adapter.ID `json:"object_id"`
	Resources  struct {
		SurveyID     adapter.ID `json:"survey_id"`
		RespondentID adapter.ID `json:"respondent_id"`
		CollectorID  adapter.ID `json:"collector_id"`
	} `json:"resources"`
}

// details is a response with its answers (/responses/{id}/details?simple=true).
type details struct {
	ID              adapter.ID                 `json:"id"`
	SurveyID        adapter.ID                 `json:"survey_id"`
	ResponseStatus  string                     `json:"response_status"`
	DateCreated     string                     `json:"date_created"`
	DateModified    string                     `json:"date_modified"`
	CustomVariables map[string]json.RawMessage `json:"custom_variables"`
	Pages           []struct {
		Questions []struct {
			ID      adapter.ID `json:"id"`
			Answers []struct {
				ChoiceID   adapter.ID `json:"choice_id"`
				Text       *string    `json:"text"`
				SimpleText *string    `json:"simple_text"`
			} `json:"answers"`
		} `json:"questions"`
	} `json:"pages"`
}

// shape tells the two bodies apart: only a response has pages.
type shape struct {
	Pages json.RawMessage `json:"pages"`
}

// responseEvents are the webhook events about a finished response, whose answers could be
// fetched; the others (response_created, _disqualified, _overquota, _deleted, survey_*,
// collector_*, app_*) say nothing about a rating.
var responseEvents = map[string]bool{"response_completed": true, "response_updated": true}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999-0700"}

// Map implements adapter.Adapter.
func (a *Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	cfg, err := survey.Load(d.Settings)
	if err != nil {
		return adapter.Result{}, err
	}
	var sh shape
	if err := adapter.DecodeJSON(d.Body, &sh); err != nil {
		return adapter.Result{}, err
	}
	if sh.Pages != nil {
		var r details
		if err := adapter.DecodeJSON(d.Body, &r); err != nil {
			return adapter.Result{}, err
		}
		return mapDetails(&r, cfg)
	}
	var n notification
	if err := adapter.DecodeJSON(d.Body, &n); err != nil {
		return adapter.Result{}, err
	}
	return mapNotification(&n)
}

func mapNotification(n *notification) (adapter.Result, error) {
	event := adapter.Lower(n.EventType)
	switch {
	case event == "":
		return adapter.Result{}, adapter.Malformed("event_type", "required (or pages, for a response's details)")
	case !responseEvents[event]:
		return adapter.Skipped(survey.ReasonUnsupportedEvent, "event_type %q", adapter.Truncate(n.EventType, 60)), nil
	}
	id, err := adapter.RequiredIdent(string(n.ObjectID), "object_id")
	if err != nil {
		return adapter.Result{}, err
	}
	sid, err := adapter.RequiredIdent(string(n.Resources.SurveyID), "resources.survey_id")
	if err != nil {
		return adapter.Result{}, err
	}
	return adapter.Skipped(survey.ReasonFetchRequired,
		"%s: response %s of survey %s; its answers are at GET /v3/surveys/%s/responses/%s/details?simple=true",
		event, id, sid, sid, id), nil
}

func mapDetails(r *details, cfg survey.Config) (adapter.Result, error) {
	id, err := adapter.RequiredIdent(string(r.ID), "id")
	if err != nil {
		return adapter.Result{}, err
	}
	sid, err := adapter.RequiredIdent(string(r.SurveyID), "survey_id")
	if err != nil {
		return adapter.Result{}, err
	}
	if st := adapter.Lower(r.ResponseStatus); st != "completed" {
		return adapter.Skipped(survey.ReasonIncomplete, "response %s of survey %s is %q", id, sid, adapter.Truncate(r.ResponseStatus, 40)), nil
	}
	// An edited response keeps its id and gets a new date_modified: the edit is a re-rating.
	stamp, field := r.DateModified, "date_modified"
	if stamp == "" {
		stamp, field = r.DateCreated, "date_created"
	}
	at, err := adapter.ParseTime(stamp, field, "an ISO 8601 time with offset", timeLayouts)
	if err != nil {
		return adapter.Result{}, err
	}
	ticketField := "custom_variables." + cfg.TicketField
	raw, err := adapter.RawID(r.CustomVariables[cfg.TicketField], ticketField)
	if err != nil {
		return adapter.Result{}, err
	}
	ticket, ok, err := survey.Ticket(raw, ticketField)
	if err != nil {
		return adapter.Result{}, err
	}
	if !ok {
		return adapter.Skipped(survey.ReasonNoTicket, "response %s of survey %s has no %s custom variable", id, sid, cfg.TicketField), nil
	}
	var agent string
	if cfg.AgentField != "" {
		f := "custom_variables." + cfg.AgentField
		raw, err := adapter.RawID(r.CustomVariables[cfg.AgentField], f)
		if err != nil {
			return adapter.Result{}, err
		}
		if agent, err = survey.Agent(raw, f); err != nil {
			return adapter.Result{}, err
		}
	}
	text, field, ok := r.answer(cfg.ScoreQuestion)
	if !ok {
		return adapter.Skipped(survey.ReasonNoScore, "response %s of survey %s does not answer question %s", id, sid, cfg.ScoreQuestion), nil
	}
	if text == nil {
		return adapter.Result{}, adapter.Malformed(field+".simple_text",
			"required: the answer names only its choice; fetch the details with ?simple=true so its text comes with it")
	}
	score, err := cfg.Scale.Parse(*text)
	if err != nil {
		return adapter.Result{}, adapter.Malformed(field+".simple_text", "%v", err)
	}
	var comment string
	if cfg.CommentQuestion != "" {
		if c, _, ok := r.answer(cfg.CommentQuestion); ok && c != nil {
			comment = *c
		}
	}
	return adapter.One(survey.Event(survey.Response{
		Source: Source, Form: sid, ResponseID: id, Version: at.Format(time.RFC3339Nano),
		TicketID: ticket, AgentID: agent, At: at,
		Score: score, Scale: cfg.Scale, Comment: comment,
	})), nil
}

// answer finds the first answer to question: its text (simple_text, else text; nil when it has
// neither) and its JSON path; ok is false when the question was not answered.
func (r *details) answer(question string) (text *string, field string, ok bool) {
	for i, p := range r.Pages {
		for j, q := range p.Questions {
			if string(q.ID) != question || len(q.Answers) == 0 {
				continue
			}
			a := q.Answers[0]
			field = fmt.Sprintf("pages[%d].questions[%d].answers[0]", i, j)
			if a.SimpleText != nil {
				return a.SimpleText, field, true
			}
			return a.Text, field, true
		}
	}
	return nil, "", false
}
