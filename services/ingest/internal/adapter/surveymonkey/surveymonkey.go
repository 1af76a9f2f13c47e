// Package surveymonkey maps SurveyMonkey deliveries to satisfaction ratings. SurveyMonkey's
// webhooks name a response by its ids only (object_id, resources.survey_id), not its answers.
// With the tenant's access token the adapter asks for them, GET
// /v3/surveys/{survey_id}/responses/{id}/details?simple=true (package vendorapi bounds the
// request); without one a webhook is accepted and skipped as fetch_required. The same details,
// posted to the same route by a relay the tenant runs and signed the same way, map alike
// (docs/surveys.md).
package surveymonkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/survey"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/vendorapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "surveymonkey"

// Skip reasons of a lookup, besides survey's.
const (
	// SkipResponseNotFound: SurveyMonkey answers 404 for the response (deleted since the
	// webhook left, or a survey the token's account does not own).
	SkipResponseNotFound = "response_not_found"
	// SkipLookupInvalid: the API answered something that does not map: malformed or oversized
	// JSON, a response of another survey, an answer the tenant's settings cannot read (a score
	// outside the scale). Asking again would not help.
	SkipLookupInvalid = "lookup_invalid"
)

// Vendor is how SurveyMonkey's API is asked: a bearer token, the app's access token.
var Vendor = vendorapi.Vendor{
	Name:           "SurveyMonkey",
	DefaultBaseURL: tenants.SurveyMonkeyAPI,
	Credentials:    "the app's access token and its responses_read_detail scope",
}

// NewClient returns the client the lookups of every tenant go through, bounded by o.
func NewClient(o vendorapi.Options) *vendorapi.Client { return vendorapi.New(Vendor, o) }

// Adapter maps SurveyMonkey deliveries for one tenant (For), looking responses up when the
// tenant gave an access token.
type Adapter struct {
	// api makes the lookups of every tenant; nil never looks anything up.
	api    *vendorapi.Client
	access vendorapi.Access
	tenant string
}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns the SurveyMonkey adapter without an API client: webhooks are skipped as
// fetch_required.
func New() *Adapter { return &Adapter{} }

// NewWithAPI returns the SurveyMonkey adapter whose tenants with an access_token have their
// webhooks' responses looked up through api.
func NewWithAPI(api *vendorapi.Client) *Adapter { return &Adapter{api: api} }

// For returns the adapter of one tenant, with its API access.
func (a *Adapter) For(sc *tenants.SourceConfig) adapter.Adapter {
	return &Adapter{api: a.api, access: sc.SurveyAPI, tenant: sc.Tenant}
}

// lookups reports whether webhooks' responses are looked up.
func (a *Adapter) lookups() bool { return a.api != nil && a.access.Configured() }

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

// Map implements adapter.Adapter, looking up without a deadline of the request's; the webhook
// calls MapContext.
func (a *Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	return a.MapContext(context.Background(), d)
}

// MapContext maps a delivery. A lookup SurveyMonkey cannot answer now (throttled, failing, too
// slow, the token refused) fails the delivery with an error carrying RetryAfter, so nothing is
// stored and SurveyMonkey sends it again.
func (a *Adapter) MapContext(ctx context.Context, d adapter.Delivery) (adapter.Result, error) {
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
	return a.mapNotification(ctx, &n, cfg)
}

func (a *Adapter) mapNotification(ctx context.Context, n *notification, cfg survey.Config) (adapter.Result, error) {
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
	if !a.lookups() {
		return adapter.Skipped(survey.ReasonFetchRequired,
			"%s: response %s of survey %s; its answers are at GET /v3/surveys/%s/responses/%s/details?simple=true",
			event, id, sid, sid, id), nil
	}
	return a.lookUp(ctx, sid, id, cfg)
}

// lookUp fetches the details of response id of survey sid and maps them as a relay's post of
// them would be.
func (a *Adapter) lookUp(ctx context.Context, sid, id string, cfg survey.Config) (adapter.Result, error) {
	what := "response " + id + " of survey " + sid
	var r details
	path := "/v3/surveys/" + url.PathEscape(sid) + "/responses/" + url.PathEscape(id) + "/details"
	err := a.api.Get(ctx, a.access, a.tenant, path, url.Values{"simple": {"true"}}, &r)
	var invalid *vendorapi.Invalid
	switch {
	case errors.Is(err, vendorapi.ErrNotFound):
		return adapter.Skipped(SkipResponseNotFound, "%s: SurveyMonkey answered 404", what), nil
	case errors.As(err, &invalid):
		return adapter.Skipped(SkipLookupInvalid, "%s: %s", what, adapter.Truncate(invalid.Reason, 200)), nil
	case err != nil:
		return adapter.Result{}, fmt.Errorf("look up %s: %w", what, err)
	}
	return lookedUp(&r, sid, id, cfg)
}

// lookedUp maps the details the API answered for response id of survey sid. What the mapping
// refuses is the API's answer, not the webhook's body: it is skipped with the reason rather than
// refused with a 400 the sender could do nothing about.
func lookedUp(r *details, sid, id string, cfg survey.Config) (adapter.Result, error) {
	what := "response " + id + " of survey " + sid
	switch {
	case string(r.ID) != id:
		return adapter.Skipped(SkipLookupInvalid, "%s: SurveyMonkey answered response %q", what, adapter.Truncate(string(r.ID), 40)), nil
	case r.SurveyID != "" && string(r.SurveyID) != sid:
		return adapter.Skipped(SkipLookupInvalid, "%s: SurveyMonkey answered a response of survey %q", what, adapter.Truncate(string(r.SurveyID), 40)), nil
	case r.Pages == nil:
		return adapter.Skipped(SkipLookupInvalid, "%s: the details carry no pages", what), nil
	}
	// The details of a response may leave survey_id out; the survey is the one asked about.
	r.SurveyID = adapter.ID(sid)
	res, err := mapDetails(r, cfg)
	if ps, ok := errors.AsType[canonical.Problems](err); ok {
		return adapter.Skipped(SkipLookupInvalid, "%s: %s", what, adapter.Truncate(ps.Error(), 200)), nil
	}
	return res, err
}

// ParseDetailsJSON decodes and maps an API answer to the lookup of response id of survey sid,
// as the adapter does.
func ParseDetailsJSON(body []byte, sid, id string, s adapter.Settings) (adapter.Result, error) {
	cfg, err := survey.Load(s)
	if err != nil {
		return adapter.Result{}, err
	}
	var r details
	if err := vendorapi.Decode(Vendor.Name, body, &r); err != nil {
		return adapter.Skipped(SkipLookupInvalid, "%v", err), nil
	}
	return lookedUp(&r, sid, id, cfg)
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
