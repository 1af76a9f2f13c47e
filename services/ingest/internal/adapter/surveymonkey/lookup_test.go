package surveymonkey

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/vendorapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
)

// The API answers under testdata/api are written from SurveyMonkey's reference pages; see
// testdata/README.md.

const testToken = "sm-test-access-token"

// fakeSurveyMonkey stands in for api.surveymonkey.com on a loopback port: it answers GET
// /v3/surveys/{sid}/responses/{id}/details?simple=true from testdata/api/{sid}/{id}.json, 404
// for the rest, and counts requests.
type fakeSurveyMonkey struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string
	// override, when set, answers instead of the recorded files.
	override http.HandlerFunc
}

func newFake(t testing.TB) *fakeSurveyMonkey {
	t.Helper()
	f := &fakeSurveyMonkey{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSurveyMonkey) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.URL.RequestURI())
	override := f.override
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if override != nil {
		override(w, r)
		return
	}
	rest, _ := strings.CutPrefix(r.URL.Path, "/v3/surveys/")
	sid, rest, _ := strings.Cut(rest, "/responses/")
	id, isDetails := strings.CutSuffix(rest, "/details")
	var body []byte
	err := os.ErrNotExist
	if isDetails && r.URL.Query().Get("simple") == "true" && !strings.ContainsAny(sid+id, "/.") {
		body, err = os.ReadFile(filepath.Join("testdata", "api", sid, id+".json"))
	}
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error": {"id": "1020", "name": "Resource Not Found", "docs": "https://developer.surveymonkey.com/api/v3/#error-codes", "message": "There was an error retrieving the requested resource.", "http_status_code": 404}}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (f *fakeSurveyMonkey) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// withAPI is tenant acme's adapter, whose access token reaches fake, with the settings of
// testdata/README.md.
func withAPI(fake *fakeSurveyMonkey, o vendorapi.Options) adapter.Adapter {
	return configured{NewWithAPI(NewClient(o)).For(&tenants.SourceConfig{Tenant: "acme",
		SurveyAPI: vendorapi.Access{Token: vendorapi.NewToken(testToken), BaseURL: fake.URL}}).(*Adapter)}
}

// TestLookupGolden maps the webhooks of testdata/lookup with their responses answered from
// testdata/api: a rating, the same rating from response_updated, an NPS 0, and every way a
// looked-up response can fail to be a rating.
func TestLookupGolden(t *testing.T) {
	fake := newFake(t)
	adaptertest.Golden(t, withAPI(fake, vendorapi.Options{}), filepath.Join("testdata", "lookup"))
	for _, r := range fake.seen() {
		if strings.Contains(r, "114233052") {
			t.Errorf("response_created was looked up: %s", r)
		}
	}
	want := "/v3/surveys/405712311/responses/114233045/details?simple=true"
	if s := fake.seen(); len(s) == 0 || !strings.Contains(strings.Join(s, " "), want) {
		t.Errorf("requests %v, want %s among them", s, want)
	}
}

// The webhook looked up and the relay's post of the same details are one event: a tenant moving
// from its relay to the lookup counts no rating twice.
func TestLookupIsTheRelaysEvent(t *testing.T) {
	fake := newFake(t)
	looked := adaptertest.One(t, withAPI(fake, vendorapi.Options{}), adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "response-completed"))
	relayed := adaptertest.One(t, configured{New()}, adaptertest.Delivery(t, "testdata", "details-nps-9-with-comment"))
	if looked.ID != relayed.ID || looked.TicketID != relayed.TicketID || looked.Satisfaction.Score != relayed.Satisfaction.Score {
		t.Errorf("looked up %+v, relayed %+v: want one event", looked, relayed)
	}
}

// A redelivery asks SurveyMonkey again (nothing is remembered between deliveries) and maps to
// the same event id; response_updated of an unchanged response too.
func TestLookupRedeliveryIsTheSameEvent(t *testing.T) {
	fake := newFake(t)
	a := withAPI(fake, vendorapi.Options{})
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "response-completed")
	first, again := adaptertest.One(t, a, d), adaptertest.One(t, a, d)
	updated := adaptertest.One(t, a, adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "response-updated"))
	if first.ID != again.ID || first.ID != updated.ID {
		t.Errorf("ids %s, %s, %s: want one", first.ID, again.ID, updated.ID)
	}
	if n := len(fake.seen()); n != 3 {
		t.Errorf("%d requests for three deliveries", n)
	}
}

// Without an access token, or without an API client, a webhook is skipped as before and nothing
// is asked.
func TestNoTokenSkips(t *testing.T) {
	fake := newFake(t)
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "response-completed")
	for name, a := range map[string]*Adapter{
		"no token":  NewWithAPI(NewClient(vendorapi.Options{})).For(&tenants.SourceConfig{Tenant: "acme", SurveyAPI: vendorapi.Access{BaseURL: fake.URL}}).(*Adapter),
		"no client": New().For(&tenants.SourceConfig{Tenant: "acme", SurveyAPI: vendorapi.Access{Token: vendorapi.NewToken(testToken), BaseURL: fake.URL}}).(*Adapter),
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

// TestLookupFailures: what each way SurveyMonkey's API can fail makes of a delivery. Unavailable
// answers fail the delivery with a RetryAfter (the webhook answers 503, SurveyMonkey retries);
// a 404 and undocumented answers are skipped with a reason.
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
	completed := func(sid string) string {
		return `{"id": "114233045", "survey_id": "` + sid + `", "response_status": "completed", "date_modified": "2026-11-24T10:20:05+00:00",
			"custom_variables": {"ticket_id": "4521"}, "pages": [{"questions": [{"id": "667461690", "answers": [{"simple_text": "9"}]}]}]}`
	}
	tests := []struct {
		name      string
		give      http.HandlerFunc
		wantWait  time.Duration // > 0: the delivery fails with this RetryAfter
		wantSkip  string
		wantInErr string // in the error, or in the skip's detail
	}{
		{"throttled with Retry-After", status(http.StatusTooManyRequests, "7"), 7 * time.Second, "", "SurveyMonkey throttled"},
		{"throttled without Retry-After", status(http.StatusTooManyRequests, ""), vendorapi.DefaultRetryAfter, "", "429"},
		{"server error", status(http.StatusInternalServerError, ""), vendorapi.DefaultRetryAfter, "", "500"},
		{"unavailable asks for two minutes, gets one", status(http.StatusServiceUnavailable, "120"), time.Minute, "", "503"},
		{"token refused", status(http.StatusUnauthorized, ""), vendorapi.DefaultRetryAfter, "", "refused the access token"},
		{"scope missing", status(http.StatusForbidden, ""), vendorapi.DefaultRetryAfter, "", "responses_read_detail"},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, vendorapi.DefaultRetryAfter, "", "deadline exceeded"},
		{"not found", status(http.StatusNotFound, ""), 0, SkipResponseNotFound, "answered 404"},
		{"other client error", status(http.StatusBadRequest, ""), 0, SkipLookupInvalid, "answered 400"},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example.com/", http.StatusFound)
		}, 0, SkipLookupInvalid, "answered 302"},
		{"malformed JSON", answer(`{"id": "114233045", "pages": [`), 0, SkipLookupInvalid, "malformed JSON"},
		{"wrong JSON type", answer(`{"id": "114233045", "pages": {}}`), 0, SkipLookupInvalid, "pages must be a JSON slice"},
		{"huge body", answer(`{"id": "114233045", "pad": "` + strings.Repeat("x", 5000) + `"}`), 0, SkipLookupInvalid, "more than 4096 bytes"},
		{"another response", answer(strings.Replace(completed("405712311"), "114233045", "114233999", 1)), 0, SkipLookupInvalid, `answered response "114233999"`},
		{"another survey", answer(completed("405700000")), 0, SkipLookupInvalid, `of survey "405700000"`},
		{"no pages", answer(`{"id": "114233045", "survey_id": "405712311", "response_status": "completed"}`), 0, SkipLookupInvalid, "no pages"},
		{"incomplete", answer(strings.Replace(completed("405712311"), `"completed"`, `"partial"`, 1)), 0, "incomplete", "partial"},
		{"bad date", answer(strings.Replace(completed("405712311"), "2026-11-24T10:20:05+00:00", "yesterday", 1)), 0, SkipLookupInvalid, "date_modified"},
		{"choice id only", answer(strings.Replace(completed("405712311"), `"simple_text": "9"`, `"choice_id": "4385137466"`, 1)), 0, SkipLookupInvalid, "simple_text"},
	}
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "response-completed")
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

// The lookups of one tenant never exceed its slots: the rest wait for one (a wait past the
// timeout is vendorapi's TestSlotsPerTenant). Each request here ends by itself, so what the fake
// counts in flight is what the client sent at once.
func TestLookupConcurrency(t *testing.T) {
	fake := newFake(t)
	var inFlight, most atomic.Int32
	fake.override = func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		w.WriteHeader(http.StatusNotFound)
	}
	a := withAPI(fake, vendorapi.Options{Concurrency: 2, Timeout: 10 * time.Second})
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "response-completed")
	var wg sync.WaitGroup
	results := make(chan adapter.Result, 8)
	for range 8 {
		wg.Go(func() {
			res, err := a.Map(d)
			if err != nil {
				t.Errorf("Map: %v", err)
			}
			results <- res
		})
	}
	wg.Wait()
	close(results)
	for res := range results {
		if len(res.Skipped) != 1 || res.Skipped[0].Reason != SkipResponseNotFound {
			t.Errorf("result %+v, want the 404 skipped as %s", res, SkipResponseNotFound)
		}
	}
	if m := most.Load(); m != 2 {
		t.Errorf("at most %d requests in flight, want 2", m)
	}
}

// FuzzParseDetails: no API answer panics the mapping, and what maps is a valid event.
func FuzzParseDetails(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "api", "*", "*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id": "114233045", "pages": null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := ParseDetailsJSON(body, "405712311", "114233045", settings)
		if err != nil {
			t.Fatalf("an API answer is skipped, never an error: %v", err)
		}
		adaptertest.Valid(t, res.Events)
	})
}
