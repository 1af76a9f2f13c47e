// Package qualtrics maps Qualtrics survey-engine event deliveries to satisfaction ratings. An
// event subscription posts a form with Topic and MSG, MSG being JSON that names the response
// (ResponseID, SurveyID, CompletedDate, Status) without its answers. With the tenant's API
// token and datacenter the adapter asks for them, GET /API/v3/surveys/{SurveyID}/responses/
// {ResponseID} (package vendorapi bounds the request), and maps result.values; without a token
// such a delivery is accepted and skipped as fetch_required. A Workflows web service task can
// post the same form with the answers piped into MSG (the ticket's embedded data field, the
// score question's value): that maps the same way, with no lookup (docs/surveys.md).
package qualtrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/survey"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/vendorapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
)

// Source is the canonical source name and the {source} of the webhook path.
const Source = "qualtrics"

// Skip reasons of a lookup, besides survey's.
const (
	// SkipResponseNotFound: Qualtrics answers 404 for the response (deleted since the event,
	// or not a response of the survey the event names).
	SkipResponseNotFound = "response_not_found"
	// SkipLookupInvalid: the API answered something that does not map: malformed or oversized
	// JSON, another response, values the tenant's settings cannot read (a score outside the
	// scale). Asking again would not help.
	SkipLookupInvalid = "lookup_invalid"
	// SkipNotARating: the response is a survey preview, a generated test response or spam
	// (values.status), not a customer's answer.
	SkipNotARating = "not_a_rating"
)

// Vendor is how Qualtrics' API is asked: the API token in X-API-TOKEN, at the brand's
// datacenter (a tenant's api_url; there is no default).
var Vendor = vendorapi.Vendor{
	Name:        "Qualtrics",
	Authorize:   func(h http.Header, token string) { h.Set("X-API-TOKEN", token) },
	Credentials: "the API token, and that its user may see the survey's responses",
}

// NewClient returns the client the lookups of every tenant go through, bounded by o.
func NewClient(o vendorapi.Options) *vendorapi.Client { return vendorapi.New(Vendor, o) }

// completedTopic starts the topic of a completed response; the survey id follows.
const completedTopic = "surveyengine.completedresponse."

// Adapter maps Qualtrics deliveries for one tenant (For), looking responses up when the tenant
// gave an API token.
type Adapter struct {
	// api makes the lookups of every tenant; nil never looks anything up.
	api    *vendorapi.Client
	access vendorapi.Access
	tenant string
}

var _ adapter.FormSource = (*Adapter)(nil)

// New returns the Qualtrics adapter without an API client: a subscription's delivery is
// skipped as fetch_required.
func New() *Adapter { return &Adapter{} }

// NewWithAPI returns the Qualtrics adapter whose tenants with an access_token have their
// subscriptions' responses looked up through api.
func NewWithAPI(api *vendorapi.Client) *Adapter { return &Adapter{api: api} }

// For returns the adapter of one tenant, with its API access.
func (a *Adapter) For(sc *tenants.SourceConfig) adapter.Adapter {
	return &Adapter{api: a.api, access: sc.SurveyAPI, tenant: sc.Tenant}
}

// lookups reports whether responses are looked up.
func (a *Adapter) lookups() bool {
	return a.api != nil && a.access.Configured() && a.access.BaseURL != ""
}

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

// Map implements adapter.Adapter, looking up without a deadline of the request's; the webhook
// calls MapContext.
func (a *Adapter) Map(d adapter.Delivery) (adapter.Result, error) {
	return a.MapContext(context.Background(), d)
}

// MapContext maps a delivery. A lookup Qualtrics cannot answer now (throttled, failing, too
// slow, the token refused) fails the delivery with an error carrying RetryAfter, so nothing is
// stored and Qualtrics sends it again.
func (a *Adapter) MapContext(ctx context.Context, d adapter.Delivery) (adapter.Result, error) {
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
		if a.lookups() {
			return a.lookUp(ctx, sid, rid, cfg)
		}
		return adapter.Skipped(survey.ReasonFetchRequired,
			"response %s of survey %s: MSG carries no answers; they are at GET /API/v3/surveys/%s/responses/%s", rid, sid, sid, rid), nil
	}
	return mapValues(values, "MSG.", cfg, sid, rid, at)
}

// mapValues maps the values of a response: the answers a workflow piped into MSG, or the
// result.values the API answers; prefix names where they are in problems.
func mapValues(values map[string]json.RawMessage, prefix string, cfg survey.Config, sid, rid string, at time.Time) (adapter.Result, error) {
	ticketField := prefix + cfg.TicketField
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
		f := prefix + cfg.AgentField
		av, err := adapter.RawID(values[cfg.AgentField], f)
		if err != nil {
			return adapter.Result{}, err
		}
		if agent, err = survey.Agent(av, f); err != nil {
			return adapter.Result{}, err
		}
	}
	score, ok, err := scoreOf(values[cfg.ScoreQuestion], cfg.Scale, prefix+cfg.ScoreQuestion)
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

// apiResponse is what GET /API/v3/surveys/{SurveyID}/responses/{ResponseID} answers: the
// response's id and its values, embedded data and answers keyed by field name and question id.
type apiResponse struct {
	Result *struct {
		ResponseID adapter.ID                 `json:"responseId"`
		Values     map[string]json.RawMessage `json:"values"`
	} `json:"result"`
}

// lookUp fetches response rid of survey sid and maps its values.
func (a *Adapter) lookUp(ctx context.Context, sid, rid string, cfg survey.Config) (adapter.Result, error) {
	what := "response " + rid + " of survey " + sid
	var r apiResponse
	path := "/API/v3/surveys/" + url.PathEscape(sid) + "/responses/" + url.PathEscape(rid)
	err := a.api.Get(ctx, a.access, a.tenant, path, nil, &r)
	var invalid *vendorapi.Invalid
	switch {
	case errors.Is(err, vendorapi.ErrNotFound):
		return adapter.Skipped(SkipResponseNotFound, "%s: Qualtrics answered 404", what), nil
	case errors.As(err, &invalid):
		return adapter.Skipped(SkipLookupInvalid, "%s: %s", what, adapter.Truncate(invalid.Reason, 200)), nil
	case err != nil:
		return adapter.Result{}, fmt.Errorf("look up %s: %w", what, err)
	}
	return lookedUp(&r, sid, rid, cfg)
}

// notARating names the response statuses (values.status, the dataset's "Response Type") that are
// no customer's answer: 0 IP Address, 4 Imported and 16 Offline are; 1 Survey Preview, 2 Survey
// Test, 8 Spam, 9 Survey Preview Spam, 12 Imported Spam and 17 Offline Survey Preview are not.
var notARating = map[string]string{
	"1": "survey preview", "2": "survey test", "8": "spam", "9": "survey preview flagged as spam",
	"12": "imported response flagged as spam", "17": "offline survey preview",
}

// lookedUp maps the API's answer for response rid of survey sid. What the mapping refuses is the
// API's answer, not the delivery: it is skipped with the reason rather than refused with a 400
// Qualtrics could do nothing about.
func lookedUp(r *apiResponse, sid, rid string, cfg survey.Config) (adapter.Result, error) {
	what := "response " + rid + " of survey " + sid
	switch {
	case r.Result == nil || r.Result.Values == nil:
		return adapter.Skipped(SkipLookupInvalid, "%s: the answer carries no result.values", what), nil
	case r.Result.ResponseID != "" && string(r.Result.ResponseID) != rid:
		return adapter.Skipped(SkipLookupInvalid, "%s: Qualtrics answered response %q", what, adapter.Truncate(string(r.Result.ResponseID), 40)), nil
	}
	v := r.Result.Values
	// A text entry question's answer is under QIDn_TEXT in values, where a workflow pipes it as
	// it likes: comment_question QID4 reads QID4_TEXT when QID4 itself is absent.
	if q := cfg.CommentQuestion; q != "" && v[q] == nil && v[q+"_TEXT"] != nil {
		v[q] = v[q+"_TEXT"]
	}
	// status is how the response was collected: a preview, a generated test response or one
	// flagged as spam is no customer's rating.
	if st := strings.TrimSpace(string(v["status"])); notARating[st] != "" {
		return adapter.Skipped(SkipNotARating, "%s is a %s (status %s)", what, notARating[st], st), nil
	}
	// finished is 1 for a response the respondent submitted, 0 for one Qualtrics closed
	// unfinished (a partial response recorded when the session expired).
	if f := strings.TrimSpace(string(v["finished"])); f != "1" && f != "true" {
		return adapter.Skipped(survey.ReasonIncomplete, "response %s of survey %s is not finished (finished %s)", rid, sid, adapter.Truncate(f, 20)), nil
	}
	// endDate is when the respondent submitted it; recordedDate, when Qualtrics recorded it,
	// stands in for an answer without endDate.
	stamp, field := rawString(v["endDate"]), "result.values.endDate"
	if stamp == "" {
		stamp, field = rawString(v["recordedDate"]), "result.values.recordedDate"
	}
	res, err := func() (adapter.Result, error) {
		at, err := adapter.ParseTime(stamp, field, "an ISO 8601 time", timeLayouts)
		if err != nil {
			return adapter.Result{}, err
		}
		return mapValues(v, "result.values.", cfg, sid, rid, at)
	}()
	if ps, ok := errors.AsType[canonical.Problems](err); ok {
		return adapter.Skipped(SkipLookupInvalid, "%s: %s", what, adapter.Truncate(ps.Error(), 200)), nil
	}
	return res, err
}

// rawString is a JSON string's text, "" for anything else.
func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// ParseResponseJSON decodes and maps an API answer to the lookup of response rid of survey sid,
// as the adapter does.
func ParseResponseJSON(body []byte, sid, rid string, s adapter.Settings) (adapter.Result, error) {
	cfg, err := survey.Load(s)
	if err != nil {
		return adapter.Result{}, err
	}
	var r apiResponse
	if err := vendorapi.Decode(Vendor.Name, body, &r); err != nil {
		return adapter.Skipped(SkipLookupInvalid, "%v", err), nil
	}
	return lookedUp(&r, sid, rid, cfg)
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
