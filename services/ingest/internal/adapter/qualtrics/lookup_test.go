package qualtrics

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/vendorapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
)

// The API answers under testdata/api are written from Qualtrics' reference pages; see
// testdata/README.md.

const testToken = "qx-test-api-token"

// fakeQualtrics stands in for a datacenter (https://yul1.qualtrics.com) on a loopback port: it
// answers GET /API/v3/surveys/{sid}/responses/{rid} from testdata/api/{sid}/{rid}.json, 404 for
// the rest, and records requests.
type fakeQualtrics struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string
	// override, when set, answers instead of the recorded files.
	override http.HandlerFunc
}

func newFake(t testing.TB) *fakeQualtrics {
	t.Helper()
	f := &fakeQualtrics{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeQualtrics) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.URL.RequestURI())
	override := f.override
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("X-API-TOKEN") != testToken || r.Header.Get("Authorization") != "" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"meta": {"httpStatus": "401 - Unauthorized", "error": {"errorMessage": "Invalid access token.", "errorCode": "AUTH_1.0"}}}`))
		return
	}
	if override != nil {
		override(w, r)
		return
	}
	rest, _ := strings.CutPrefix(r.URL.Path, "/API/v3/surveys/")
	sid, rid, _ := strings.Cut(rest, "/responses/")
	body, err := []byte(nil), os.ErrNotExist
	if sid != "" && rid != "" && !strings.ContainsAny(sid+rid, "/.") {
		body, err = os.ReadFile(filepath.Join("testdata", "api", sid, rid+".json"))
	}
	if err != nil {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"meta": {"httpStatus": "404 - Not Found", "error": {"errorMessage": "Response not found", "errorCode": "RS_1"}}}`))
		return
	}
	_, _ = w.Write(body)
}

func (f *fakeQualtrics) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// withAPI is tenant acme's adapter, whose API token reaches fake, with the settings of
// testdata/README.md.
func withAPI(fake *fakeQualtrics, o vendorapi.Options) adapter.Adapter {
	return configured{NewWithAPI(NewClient(o)).For(&tenants.SourceConfig{Tenant: "acme",
		SurveyAPI: vendorapi.Access{Token: vendorapi.NewToken(testToken), BaseURL: fake.URL}}).(*Adapter)}
}

// TestLookupGolden maps the deliveries of testdata/lookup with their responses answered from
// testdata/api: a rating, one timed by recordedDate, every way a looked-up response can fail to
// be a rating, and the deliveries that need no lookup (a workflow's, another topic).
func TestLookupGolden(t *testing.T) {
	fake := newFake(t)
	adaptertest.Golden(t, withAPI(fake, vendorapi.Options{}), filepath.Join("testdata", "lookup"))
	got := strings.Join(fake.seen(), " ")
	if !strings.Contains(got, "/API/v3/surveys/SV_0dQkWmQ3vXbLx1k/responses/R_3kGzP0xYbQm1AbC") {
		t.Errorf("requests %s, want the completed response's among them", got)
	}
	if strings.Contains(got, "R_1aaaaaaaaaaaaaa") || strings.Contains(got, "controlpanel") {
		t.Errorf("a delivery that needs no lookup was looked up: %s", got)
	}
}

// The subscription looked up and a workflow's post of the same response are one event: a tenant
// moving from its workflow to the lookup counts no rating twice.
func TestLookupIsTheWorkflowsEvent(t *testing.T) {
	fake := newFake(t)
	looked := adaptertest.One(t, withAPI(fake, vendorapi.Options{}), adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "completed-score-9-with-comment"))
	piped := adaptertest.Delivery(t, "testdata", "workflow-score-9-with-comment")
	piped.Body = []byte(strings.ReplaceAll(string(piped.Body), "R_1aaaaaaaaaaaaaa", "R_3kGzP0xYbQm1AbC"))
	workflow := adaptertest.One(t, configured{New()}, piped)
	if looked.ID != workflow.ID || looked.TicketID != workflow.TicketID || looked.Satisfaction.Score != workflow.Satisfaction.Score ||
		looked.Satisfaction.Comment != workflow.Satisfaction.Comment {
		t.Errorf("looked up %+v, piped %+v: want one event", looked, workflow)
	}
}

// A redelivery asks Qualtrics again and maps to the same event id.
func TestLookupRedeliveryIsTheSameEvent(t *testing.T) {
	fake := newFake(t)
	a := withAPI(fake, vendorapi.Options{})
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "completed-score-9-with-comment")
	first, again := adaptertest.One(t, a, d), adaptertest.One(t, a, d)
	if first.ID != again.ID {
		t.Errorf("ids %s, %s: want one", first.ID, again.ID)
	}
	if n := len(fake.seen()); n != 2 {
		t.Errorf("%d requests for two deliveries", n)
	}
}

// Without an API token, a datacenter or an API client, a subscription's delivery is skipped as
// before and nothing is asked.
func TestNoTokenSkips(t *testing.T) {
	fake := newFake(t)
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "completed-score-9-with-comment")
	tok := vendorapi.NewToken(testToken)
	for name, a := range map[string]*Adapter{
		"no token":      NewWithAPI(NewClient(vendorapi.Options{})).For(&tenants.SourceConfig{Tenant: "acme", SurveyAPI: vendorapi.Access{BaseURL: fake.URL}}).(*Adapter),
		"no datacenter": NewWithAPI(NewClient(vendorapi.Options{})).For(&tenants.SourceConfig{Tenant: "acme", SurveyAPI: vendorapi.Access{Token: tok}}).(*Adapter),
		"no client":     New().For(&tenants.SourceConfig{Tenant: "acme", SurveyAPI: vendorapi.Access{Token: tok, BaseURL: fake.URL}}).(*Adapter),
	} {
		res := adaptertest.Map(t, configured{a}, d)
		if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != "fetch_required" {
			t.Errorf("%s: %+v, want one fetch_required skip", name, res)
		}
	}
	if n := len(fake.seen()); n != 0 {
		t.Errorf("%d requests without a token", n)
	}
}

// TestLookupFailures: what each way Qualtrics' API can fail makes of a delivery. Unavailable
// answers fail the delivery with a RetryAfter (the webhook answers 503, Qualtrics retries); a
// 404 and undocumented answers are skipped with a reason.
func TestLookupFailures(t *testing.T) {
	answer := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(body)) }
	}
	status := func(code int, retryAfter string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(code)
		}
	}
	values := func(v string) string {
		return `{"result": {"responseId": "R_3kGzP0xYbQm1AbC", "values": {` + v + `}}, "meta": {"httpStatus": "200 - OK"}}`
	}
	const ok = `"finished": 1, "endDate": "2026-11-24T10:21:14Z", "ticket_id": "4521", "QID3": 9`
	tests := []struct {
		name      string
		give      http.HandlerFunc
		wantWait  time.Duration // > 0: the delivery fails with this RetryAfter
		wantSkip  string
		wantInErr string // in the error, or in the skip's detail
	}{
		{"throttled with Retry-After", status(http.StatusTooManyRequests, "3"), 3 * time.Second, "", "Qualtrics throttled"},
		{"throttled without Retry-After", status(http.StatusTooManyRequests, ""), vendorapi.DefaultRetryAfter, "", "429"},
		{"server error", status(http.StatusInternalServerError, ""), vendorapi.DefaultRetryAfter, "", "500"},
		{"gateway timeout", status(http.StatusGatewayTimeout, "30"), 30 * time.Second, "", "504"},
		{"token refused", status(http.StatusUnauthorized, ""), vendorapi.DefaultRetryAfter, "", "refused the access token"},
		{"no permission", status(http.StatusForbidden, ""), vendorapi.DefaultRetryAfter, "", "may see the survey's responses"},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, vendorapi.DefaultRetryAfter, "", "deadline exceeded"},
		{"not found", status(http.StatusNotFound, ""), 0, SkipResponseNotFound, "answered 404"},
		{"bad request", status(http.StatusBadRequest, ""), 0, SkipLookupInvalid, "answered 400"},
		{"malformed JSON", answer(`{"result": {"values": {`), 0, SkipLookupInvalid, "malformed JSON"},
		{"values not an object", answer(`{"result": {"responseId": "R_3kGzP0xYbQm1AbC", "values": []}}`), 0, SkipLookupInvalid, "must be a JSON map"},
		{"no result", answer(`{"meta": {"httpStatus": "200 - OK"}}`), 0, SkipLookupInvalid, "no result.values"},
		{"huge body", answer(values(ok + `, "pad": "` + strings.Repeat("x", 5000) + `"`)), 0, SkipLookupInvalid, "more than 4096 bytes"},
		{"another response", answer(strings.Replace(values(ok), "R_3kGzP0xYbQm1AbC", "R_9sOmEoThErResp1", 1)), 0, SkipLookupInvalid, `answered response "R_9sOmEoThErResp1"`},
		{"unfinished", answer(values(strings.Replace(ok, `"finished": 1`, `"finished": 0`, 1))), 0, "incomplete", "not finished"},
		{"survey preview", answer(values(ok + `, "status": 1`)), 0, SkipNotARating, "survey preview (status 1)"},
		{"survey test", answer(values(ok + `, "status": 2`)), 0, SkipNotARating, "survey test (status 2)"},
		{"spam", answer(values(ok + `, "status": 8`)), 0, SkipNotARating, "spam (status 8)"},
		{"no dates", answer(values(`"finished": 1, "ticket_id": "4521", "QID3": 9`)), 0, SkipLookupInvalid, "result.values.recordedDate"},
		{"date not ISO 8601", answer(values(strings.Replace(ok, "2026-11-24T10:21:14Z", "24/11/2026", 1))), 0, SkipLookupInvalid, "result.values.endDate"},
		{"score off the scale", answer(values(strings.Replace(ok, `"QID3": 9`, `"QID3": 0`, 1))), 0, SkipLookupInvalid, "result.values.QID3"},
		{"ticket an object", answer(values(strings.Replace(ok, `"ticket_id": "4521"`, `"ticket_id": {"id": 4521}`, 1))), 0, SkipLookupInvalid, "result.values.ticket_id"},
		{"no score", answer(values(`"finished": 1, "endDate": "2026-11-24T10:21:14Z", "ticket_id": "4521"`)), 0, "no_score", "QID3"},
	}
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "completed-score-9-with-comment")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(t)
			fake.override = tt.give
			a := withAPI(fake, vendorapi.Options{Timeout: time.Second, MaxResponseBytes: 4096})
			res, err := a.Map(d)
			adaptertest.CheckLookupOutcome(t, res, err, adaptertest.LookupOutcome{Wait: tt.wantWait, Skip: tt.wantSkip, InErr: tt.wantInErr}, testToken, fake.URL)
		})
	}
}

// A malformed delivery is refused before any lookup: nothing is asked for a body that names no
// response.
func TestMalformedDeliveryAsksNothing(t *testing.T) {
	fake := newFake(t)
	a := withAPI(fake, vendorapi.Options{})
	for name, field := range map[string]string{"malformed-no-response-id": "MSG.ResponseID", "malformed-bad-completed-date": "MSG.CompletedDate", "malformed-no-topic": "Topic"} {
		adaptertest.Problem(t, a, adaptertest.Delivery(t, "testdata", name), field)
	}
	if n := len(fake.seen()); n != 0 {
		t.Errorf("%d requests for malformed deliveries", n)
	}
}

// FuzzParseResponse: no API answer panics the mapping, and what maps is a valid event.
func FuzzParseResponse(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "api", "*", "*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"result": {"values": {"finished": true, "recordedDate": "2026-11-24T10:21:14Z", "ticket_id": 4521, "QID3": "7", "QID4": null}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := ParseResponseJSON(body, "SV_0dQkWmQ3vXbLx1k", "R_3kGzP0xYbQm1AbC", settings)
		if err != nil {
			t.Fatalf("an API answer is skipped, never an error: %v", err)
		}
		adaptertest.Valid(t, res.Events)
	})
}
