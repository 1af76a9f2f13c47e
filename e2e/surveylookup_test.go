package e2e

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// The survey apps of the lookup test: SurveyMonkey signs its webhooks with the app's API key and
// secret and is read with the app's access token; Qualtrics posts to a URL carrying a token and
// is read with an API token.
const (
	smAPIKey      = "e2e-sm-client-id"
	smSecret      = "e2e-sm-api-secret"
	smToken       = "e2e-sm-access-token"
	smSurvey      = "405712311"
	qxURLToken    = "e2e-qualtrics-url-token"
	qxToken       = "e2e-qualtrics-api-token"
	qxSurvey      = "SV_0dQkWmQ3vXbLx1k"
	smScoreID     = "667461690"
	lookupAgentID = "ana"
)

// surveyAPIs stands in for api.surveymonkey.com and a Qualtrics datacenter on one loopback
// port, each checking its own token header. ratings maps a response id to its ticket and score
// (1 to 5); a response in throttled is answered 429 with Retry-After 7.
type surveyAPIs struct {
	*httptest.Server
	mu        sync.Mutex
	requests  int
	ratings   map[string]lookupRating
	throttled map[string]bool
}

type lookupRating struct {
	ticket string
	score  int
	at     time.Time
}

func newSurveyAPIs(t *testing.T, ratings map[string]lookupRating) *surveyAPIs {
	a := &surveyAPIs{ratings: ratings, throttled: map[string]bool{}}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *surveyAPIs) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests++
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	var id string
	switch {
	case strings.HasPrefix(r.URL.Path, "/v3/surveys/"+smSurvey+"/responses/"):
		// GET /v3/surveys/{id}/responses/{id}/details?simple=true, fields from SurveyMonkey's
		// reference page for that endpoint.
		if r.Header.Get("Authorization") != "Bearer "+smToken || r.URL.Query().Get("simple") != "true" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		id, _ = strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v3/surveys/"+smSurvey+"/responses/"), "/details")
		if a.isThrottled(w, id) {
			return
		}
		rt, ok := a.ratings[id]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"id": %q, "survey_id": %q, "collector_id": "300001", "response_status": "completed",
  "custom_variables": {"ticket_id": %q, "agent": %q}, "date_created": %q, "date_modified": %q,
  "pages": [{"id": "168830093", "questions": [{"id": %q, "answers": [{"choice_id": "4385137466", "simple_text": "%d"}]}]}]}`,
			id, smSurvey, rt.ticket, lookupAgentID, rt.at.Add(-time.Minute).Format(time.RFC3339), rt.at.Format(time.RFC3339), smScoreID, rt.score)
	case strings.HasPrefix(r.URL.Path, "/API/v3/surveys/"+qxSurvey+"/responses/"):
		// GET /API/v3/surveys/{SurveyID}/responses/{ResponseID}, fields from Qualtrics' "Get
		// Survey Response" page.
		if r.Header.Get("X-API-TOKEN") != qxToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		id = strings.TrimPrefix(r.URL.Path, "/API/v3/surveys/"+qxSurvey+"/responses/")
		if a.isThrottled(w, id) {
			return
		}
		rt, ok := a.ratings[id]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"result": {"responseId": %q, "values": {"startDate": %q, "endDate": %q, "status": 0, "progress": 100,
  "finished": 1, "recordedDate": %q, "_recordId": %q, "ticket_id": %q, "QID3": %d}, "labels": {}, "displayedFields": ["QID3"],
  "displayedValues": {}}, "meta": {"requestId": "e2e", "httpStatus": "200 - OK"}}`,
			id, rt.at.Add(-time.Minute).Format(time.RFC3339), rt.at.Format(time.RFC3339), rt.at.Format(time.RFC3339), id, rt.ticket, rt.score)
	default:
		http.NotFound(w, r)
	}
}

func (a *surveyAPIs) isThrottled(w http.ResponseWriter, id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.throttled[id] {
		return false
	}
	w.Header().Set("Retry-After", "7")
	w.WriteHeader(http.StatusTooManyRequests)
	return true
}

func (a *surveyAPIs) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests
}

// smWebhook is a response_completed webhook as SurveyMonkey sends it (fields from its Webhooks
// page): ids only.
func smWebhook(eventID, response string) string {
	return fmt.Sprintf(`{"name": "Ticketpulse CSAT", "filter_type": "survey", "filter_id": %q, "event_type": "response_completed",
  "event_id": %q, "object_type": "response", "object_id": %q, "event_datetime": "2026-03-02T11:00:01.182613+00:00",
  "resources": {"respondent_id": %q, "recipient_id": "0", "user_id": "5000001", "collector_id": "300001", "survey_id": %q}}`,
		smSurvey, eventID, response, response, smSurvey)
}

// postSurveyMonkey signs body as SurveyMonkey does (base64 HMAC-SHA1 keyed with API key & API
// secret, computed here, not by ingest) unless signed is false, and posts it.
func postSurveyMonkey(t *testing.T, addr, body string, signed bool) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/tenants/acme/webhooks/surveymonkey", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signed {
		m := hmac.New(sha1.New, []byte(smAPIKey+"&"+smSecret))
		m.Write([]byte(body))
		req.Header.Set("Sm-Apikey", smAPIKey)
		req.Header.Set("Sm-Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return do(t, req)
}

// postQualtrics posts a completedResponse subscription's form (Topic and MSG, naming the
// response only) to acme's qualtrics URL with token.
func postQualtrics(t *testing.T, addr, response, token string) (int, http.Header, string) {
	t.Helper()
	msg := fmt.Sprintf(`{"Status":"Complete","SurveyID":%q,"ResponseID":%q,"CompletedDate":"2026-03-02 12:00:00","BrandID":"acmecx"}`, qxSurvey, response)
	form := url.Values{"Topic": {"surveyengine.completedResponse." + qxSurvey}, "MSG": {msg}}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/tenants/acme/webhooks/qualtrics?token="+url.QueryEscape(token), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(answer)
}

// A SurveyMonkey webhook and a Qualtrics subscription, which name a response and nothing of its
// answers, reach the agent's CSAT over kpi's gRPC once ingest looks the responses up at the
// vendors' APIs (a local stand-in): a delivery that fails its signature or token is refused
// before any lookup, a throttled lookup is answered 503 with the vendor's Retry-After and stores
// nothing, and a redelivered webhook counts once.
func TestSurveyLookupsReachTheAgentsCSAT(t *testing.T) {
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	api := newSurveyAPIs(t, map[string]lookupRating{
		"114233045":         {ticket: "T-SL1", score: 2, at: base.Add(2 * time.Hour)},
		"R_3kGzP0xYbQm1AbC": {ticket: "T-SL2", score: 5, at: base.Add(3 * time.Hour)},
	})
	s := newStackWith(t, map[string]string{"acme": `    sources:
      surveymonkey:
        api_key: ` + smAPIKey + `
        secrets: [{env: E2E_SM_SECRET}]
        ticket_field: ticket_id
        agent_field: agent
        score_question: "` + smScoreID + `"
        scale: 1-5
        access_token: {env: E2E_SM_TOKEN}
        api_url: ` + api.URL + `
      qualtrics:
        url_token: {env: E2E_QX_URL_TOKEN}
        ticket_field: ticket_id
        score_question: QID3
        scale: 1-5
        access_token: {env: E2E_QX_TOKEN}
        api_url: ` + api.URL + `
`})
	addr := startIngest(t, s, "E2E_SM_SECRET="+smSecret, "E2E_SM_TOKEN="+smToken, "E2E_QX_URL_TOKEN="+qxURLToken, "E2E_QX_TOKEN="+qxToken)
	client := startKPI(t, s).as(s.tenants.Acme)
	life := func(ticket string, start time.Time) []map[string]any {
		at := func(min int) string { return start.Add(time.Duration(min) * time.Minute).Format(time.RFC3339) }
		return []map[string]any{
			{"id": ticket + "-c", "ticket_id": ticket, "type": "ticket_created", "occurred_at": at(0), "actor": map[string]any{"id": "cust", "kind": "customer"}},
			{"id": ticket + "-a", "ticket_id": ticket, "type": "ticket_assigned", "occurred_at": at(1),
				"actor": map[string]any{"id": "lead", "kind": "agent"}, "assignee_id": lookupAgentID, "team_id": "billing"},
			{"id": ticket + "-s", "ticket_id": ticket, "type": "status_changed", "occurred_at": at(30),
				"actor": map[string]any{"id": lookupAgentID, "kind": "agent"}, "status": "solved"},
		}
	}
	post(t, addr, "acme", s.tenants.Acme, life("T-SL1", base))
	post(t, addr, "acme", s.tenants.Acme, life("T-SL2", base.Add(time.Hour)))

	// Refused before any lookup: an unsigned SurveyMonkey webhook, a Qualtrics post with the
	// wrong URL token.
	sm := smWebhook("10000002", "114233045")
	if status, _, answer := postSurveyMonkey(t, addr, sm, false); status != http.StatusUnauthorized {
		t.Fatalf("unsigned surveymonkey: %d %s", status, answer)
	}
	if status, _, answer := postQualtrics(t, addr, "R_3kGzP0xYbQm1AbC", "not-the-token"); status != http.StatusUnauthorized && status != http.StatusForbidden {
		t.Fatalf("qualtrics with a wrong token: %d %s", status, answer)
	}
	if n := api.count(); n != 0 {
		t.Fatalf("%d lookups for refused deliveries", n)
	}

	// SurveyMonkey throttles the first try: 503 with its Retry-After, nothing stored.
	api.mu.Lock()
	api.throttled["114233045"] = true
	api.mu.Unlock()
	if status, h, answer := postSurveyMonkey(t, addr, sm, true); status != http.StatusServiceUnavailable || h.Get("Retry-After") != "7" {
		t.Fatalf("throttled lookup: %d Retry-After %q %s, want 503 with Retry-After 7", status, h.Get("Retry-After"), answer)
	}
	api.mu.Lock()
	delete(api.throttled, "114233045")
	api.mu.Unlock()

	// SurveyMonkey's retry, then Qualtrics' subscription: both looked up and stored.
	if status, _, answer := postSurveyMonkey(t, addr, sm, true); status != http.StatusAccepted || !strings.Contains(answer, `"accepted":["`) {
		t.Fatalf("surveymonkey: %d %s", status, answer)
	}
	if status, _, answer := postQualtrics(t, addr, "R_3kGzP0xYbQm1AbC", qxURLToken); status != http.StatusAccepted || !strings.Contains(answer, `"accepted":["`) {
		t.Fatalf("qualtrics: %d %s", status, answer)
	}
	// SurveyMonkey sends the webhook again (a response_updated of the unchanged response would
	// map alike): the same event, stored once.
	if status, _, answer := postSurveyMonkey(t, addr, smWebhook("10000003", "114233045"), true); status != http.StatusAccepted || !strings.Contains(answer, `"duplicates":1`) {
		t.Fatalf("redelivered surveymonkey webhook: %d %s, want one duplicate", status, answer)
	}

	w := window(base.Add(-time.Hour), base.Add(24*time.Hour))
	got := waitKpis(t, client, "acme", w, func(k *tpv1.Kpis) bool { return k.GetResolutions() == 2 && k.GetCsatCount() == 2 })
	if got.GetCsatMean() != 3.5 {
		t.Errorf("CSAT mean %v, want 3.5 (SurveyMonkey's 2 and Qualtrics' 5)", got.GetCsatMean())
	}
	time.Sleep(time.Second)
	if got = waitKpis(t, client, "acme", w, func(*tpv1.Kpis) bool { return true }); got.GetCsatCount() != 2 {
		t.Errorf("%d ratings after the redelivery, want 2", got.GetCsatCount())
	}
	// Three SurveyMonkey lookups (throttled, stored, redelivered) and one Qualtrics lookup.
	if n := api.count(); n != 4 {
		t.Errorf("%d lookups, want 4", n)
	}
}
