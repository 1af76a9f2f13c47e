package hubspot

import (
	"context"
	"errors"
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
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/hubspot/hsapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
)

// The API answers under testdata/api are written from HubSpot's reference pages; see
// testdata/README.md.

const testToken = "pat-na1-test-token"

// fakeHubSpot stands in for api.hubapi.com on a loopback port: it answers the three lookups the
// adapter makes from the recorded answers in testdata/api, 404 for the rest, and counts requests.
type fakeHubSpot struct {
	*httptest.Server
	mu       sync.Mutex
	requests map[string]int
	// override, when set, answers instead of the recorded files (which files still serves).
	override http.HandlerFunc
	// ownersStatus, when not 0, is the status the owner list is answered with.
	ownersStatus atomic.Int32
}

func newFakeHubSpot(t testing.TB) *fakeHubSpot {
	t.Helper()
	f := &fakeHubSpot{requests: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeHubSpot) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests[r.URL.Path]++
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
	f.files(w, r)
}

// files answers r from testdata/api.
func (f *fakeHubSpot) files(w http.ResponseWriter, r *http.Request) {
	if code := f.ownersStatus.Load(); code != 0 && r.URL.Path == "/crm/v3/owners" {
		w.WriteHeader(int(code))
		return
	}
	var file string
	rest, isConv := strings.CutPrefix(r.URL.Path, "/conversations/v3/conversations/threads/")
	thread, msg, isMsg := strings.Cut(rest, "/messages/")
	switch {
	case r.URL.Path == "/crm/v3/owners":
		file = "owners.json"
	case isConv && isMsg:
		file = filepath.Join("messages", msg+".json")
	case isConv && r.URL.Query().Get("association") == "TICKET":
		file = filepath.Join("threads", thread+".json")
	}
	body, err := os.ReadFile(filepath.Join("testdata", "api", file))
	if file == "" || err != nil {
		http.Error(w, `{"status":"error","message":"resource not found","category":"OBJECT_NOT_FOUND"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (f *fakeHubSpot) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[path]
}

func (f *fakeHubSpot) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.requests {
		n += c
	}
	return n
}

// withAPI is the adapter of tenant acme, whose access token reaches fake.
func withAPI(fake *fakeHubSpot, o hsapi.Options) adapter.Adapter {
	return NewWithAPI(hsapi.New(o)).For(&tenants.SourceConfig{Tenant: "acme",
		HubSpotAPI: hsapi.Access{Token: hsapi.NewToken(testToken), BaseURL: fake.URL}})
}

// TestLookupGolden maps the conversation.newMessage deliveries of testdata/lookup with their
// lookups answered from testdata/api: customer message, public reply, internal note, bot, and
// every way a lookup can come back empty.
func TestLookupGolden(t *testing.T) {
	fake := newFakeHubSpot(t)
	adaptertest.Golden(t, withAPI(fake, hsapi.Options{}), filepath.Join("testdata", "lookup"))
	// A notice the event already names is skipped without asking HubSpot anything about it.
	if n := fake.count("/conversations/v3/conversations/threads/3344556677/messages/8f1d6b0c4a9e1f7b6c5d4e3f2a1b0c9d"); n != 0 {
		t.Errorf("the status notice was looked up %d times", n)
	}
	// One owner list serves every agent message of the run.
	if n := fake.count("/crm/v3/owners"); n > 2 {
		t.Errorf("owner list read %d times; at most twice (once, and once more for a user missing from it)", n)
	}
}

// Without an access token, or without an API client, messages are skipped as before and
// nothing is asked.
func TestNoTokenSkips(t *testing.T) {
	fake := newFakeHubSpot(t)
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "agent-reply")
	for name, a := range map[string]adapter.Adapter{
		"no token":  NewWithAPI(hsapi.New(hsapi.Options{})).For(&tenants.SourceConfig{Tenant: "acme", HubSpotAPI: hsapi.Access{BaseURL: fake.URL}}),
		"no client": New().For(&tenants.SourceConfig{Tenant: "acme", HubSpotAPI: hsapi.Access{Token: hsapi.NewToken(testToken), BaseURL: fake.URL}}),
	} {
		res := adaptertest.Map(t, a, d)
		if len(res.Events) != 0 || len(res.Skipped) != 1 || res.Skipped[0].Reason != SkipConversationMessage {
			t.Errorf("%s: %+v, want one %s skip", name, res, SkipConversationMessage)
		}
	}
	if n := fake.total(); n != 0 {
		t.Errorf("%d requests without a token", n)
	}
}

// TestConversationWithMessages replays a ticket life whose messages come from the inbox: the
// reply counts for the owner the ticket was assigned to, not for the user id HubSpot's actor
// names, and the internal comment is private.
func TestConversationWithMessages(t *testing.T) {
	fake := newFakeHubSpot(t)
	steps := adaptertest.Conversation(t, withAPI(fake, hsapi.Options{}), filepath.Join("testdata", "conversation-messages"))
	var got []string
	for _, s := range steps {
		if len(s.Result.Skipped) > 0 {
			t.Errorf("%s skipped %+v", s.Name, s.Result.Skipped)
		}
		for _, ev := range s.Result.Events {
			if ev.TicketID != "5150" {
				t.Errorf("%s: ticket %s", s.Name, ev.TicketID)
			}
			d := ev.Type + ":" + ev.Actor.Kind + ":" + ev.Actor.ID + ev.AssigneeID
			if ev.Public != nil && !*ev.Public {
				d += ":private"
			}
			got = append(got, d+"@"+ev.OccurredAt.Format("15:04:05"))
		}
	}
	want := "ticket_created:system:@09:00:00 ticket_assigned:automation:8812@09:00:15 customer_message:customer:1201@09:00:30 " +
		"agent_message:agent:8812:private@09:05:00 agent_message:agent:8812@09:10:00 status_changed:agent:7001@09:30:00"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("life\n got %s\nwant %s", g, want)
	}
}

// A retry of a message event (a higher attemptNumber, later) maps to the same event ids, and
// asks HubSpot again rather than remembering: nothing is kept between deliveries but the owners.
func TestMessageRetryKeepsEventIDs(t *testing.T) {
	fake := newFakeHubSpot(t)
	a := withAPI(fake, hsapi.Options{})
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "batch-stage-and-message")
	first, err := adaptertest.Retry(t, a, d, func(d *adapter.Delivery) {
		d.Body = []byte(strings.ReplaceAll(string(d.Body), `"attemptNumber": 0`, `"attemptNumber": 3`))
	})
	if err != nil || len(first.Events) != 2 {
		t.Fatalf("%v %+v", err, first)
	}
	if n := fake.count("/conversations/v3/conversations/threads/3344556677"); n != 2 {
		t.Errorf("thread read %d times for two deliveries", n)
	}
}

// TestLookupFailures: what each way HubSpot's API can fail makes of a delivery. Unavailable
// answers fail the delivery with a RetryAfter (the webhook answers 503, HubSpot retries);
// 404s and undocumented answers are skipped with a reason.
func TestLookupFailures(t *testing.T) {
	thread := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/messages/") {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write([]byte(body))
		}
	}
	status := func(code int, retryAfter string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(code)
		}
	}
	tests := []struct {
		name      string
		give      http.HandlerFunc
		wantWait  time.Duration // > 0: the delivery fails with this RetryAfter
		wantSkip  string
		wantInErr string
	}{
		{"throttled with Retry-After", status(http.StatusTooManyRequests, "7"), 7 * time.Second, "", "429"},
		{"throttled without Retry-After", status(http.StatusTooManyRequests, ""), hsapi.DefaultRetryAfter, "", "429"},
		{"server error", status(http.StatusInternalServerError, ""), hsapi.DefaultRetryAfter, "", "500"},
		{"bad gateway asks for two minutes, gets one", status(http.StatusBadGateway, "120"), time.Minute, "", "502"},
		{"token refused", status(http.StatusUnauthorized, ""), hsapi.DefaultRetryAfter, "", "refused the access token"},
		{"scope missing", status(http.StatusForbidden, ""), hsapi.DefaultRetryAfter, "", "scopes"},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, hsapi.DefaultRetryAfter, "", "deadline exceeded"},
		{"thread not found", status(http.StatusNotFound, ""), 0, SkipThreadNotFound, ""},
		{"other client error", status(http.StatusBadRequest, ""), 0, SkipLookupInvalid, ""},
		{"malformed JSON", thread(`{"id": "3344556677", "threadAssociations": {`), 0, SkipLookupInvalid, ""},
		{"wrong JSON type", thread(`{"id": 3344556677}`), 0, SkipLookupInvalid, ""},
		{"huge body", thread(`{"id": "3344556677", "pad": "` + strings.Repeat("x", 5000) + `"}`), 0, SkipLookupInvalid, ""},
		{"another thread", thread(`{"id": "1", "threadAssociations": {"associatedTicketId": "5150"}}`), 0, SkipLookupInvalid, ""},
		{"association not a ticket id", thread(`{"id": "3344556677", "threadAssociations": {"associatedTicketId": "T-5150"}}`), 0, SkipLookupInvalid, ""},
		{"no association", thread(`{"id": "3344556677", "associatedContactId": "1201"}`), 0, SkipNoTicket, ""},
		{"message not found", thread(`{"id": "3344556677", "threadAssociations": {"associatedTicketId": "5150"}}`), 0, SkipMessageNotFound, ""},
	}
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "agent-reply")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeHubSpot(t)
			fake.override = tt.give
			a := withAPI(fake, hsapi.Options{Timeout: time.Second, MaxResponseBytes: 4096})
			res, err := a.Map(d)
			adaptertest.CheckLookupOutcome(t, res, err, adaptertest.LookupOutcome{Wait: tt.wantWait, Skip: tt.wantSkip, InErr: tt.wantInErr}, testToken, fake.URL)
		})
	}
}

// A delivery whose message lookup fails after other events mapped yields nothing at all: no
// half of a delivery is stored.
func TestFailedLookupFailsTheWholeDelivery(t *testing.T) {
	fake := newFakeHubSpot(t)
	fake.override = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }
	res, err := withAPI(fake, hsapi.Options{}).Map(adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "batch-stage-and-message"))
	if err == nil || len(res.Events) != 0 {
		t.Fatalf("got %+v, %v; want an error and no events", res, err)
	}
	if _, ok := errors.AsType[canonical.Problems](err); ok {
		t.Errorf("an unavailable API is no problem of the payload: %v", err)
	}
}

// The owner list failing is as unavailable as the message itself, unless an older list
// already knows the user.
func TestOwnersUnavailable(t *testing.T) {
	fake := newFakeHubSpot(t)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	api := hsapi.New(hsapi.Options{Now: func() time.Time { return now }})
	a := NewWithAPI(api).For(&tenants.SourceConfig{Tenant: "acme", HubSpotAPI: hsapi.Access{Token: hsapi.NewToken(testToken), BaseURL: fake.URL}})
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "agent-reply")
	if ev := adaptertest.One(t, a, d); ev.Actor.ID != "8812" {
		t.Fatalf("actor %+v, want owner 8812", ev.Actor)
	}
	// Two hours on, the list is stale and HubSpot throttles it: the old answer stands.
	now = now.Add(2 * time.Hour)
	fake.ownersStatus.Store(http.StatusTooManyRequests)
	if ev := adaptertest.One(t, a, d); ev.Actor.ID != "8812" {
		t.Fatalf("actor %+v, want owner 8812 from the stale list", ev.Actor)
	}
	if n := fake.count("/crm/v3/owners"); n != 2 {
		t.Errorf("owner list asked %d times, want 2 (read, then a refresh that failed)", n)
	}
	// A fresh client knows no owner yet: the delivery must wait, with a RetryAfter.
	b := NewWithAPI(hsapi.New(hsapi.Options{})).For(&tenants.SourceConfig{Tenant: "acme", HubSpotAPI: hsapi.Access{Token: hsapi.NewToken(testToken), BaseURL: fake.URL}})
	_, err := b.Map(d)
	if _, ok := errors.AsType[*hsapi.Unavailable](err); !ok {
		t.Fatalf("%v, want the owner list unavailable", err)
	}
}

// The lookups of one tenant are bounded: with its one slot busy, another lookup waits for it
// no longer than its deadline and then fails as unavailable; another tenant is not held up.
func TestConcurrencyPerTenant(t *testing.T) {
	release := make(chan struct{})
	fake := newFakeHubSpot(t)
	fake.override = func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/threads/3344556677") {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		fake.files(w, r)
	}
	api := hsapi.New(hsapi.Options{Concurrency: 1, Timeout: 10 * time.Second})
	acme := NewWithAPI(api).For(&tenants.SourceConfig{Tenant: "acme", HubSpotAPI: hsapi.Access{Token: hsapi.NewToken(testToken), BaseURL: fake.URL}})
	globex := NewWithAPI(api).For(&tenants.SourceConfig{Tenant: "globex", HubSpotAPI: hsapi.Access{Token: hsapi.NewToken(testToken), BaseURL: fake.URL}})
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "agent-reply")
	other := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "thread-without-ticket")

	held := make(chan error, 1)
	go func() {
		_, err := acme.(ContextMapper).MapContext(context.Background(), d)
		held <- err
	}()
	waitFor(t, func() bool { return fake.count("/conversations/v3/conversations/threads/3344556677") == 1 })
	// The request's own deadline is shorter than the held lookup's.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := acme.(ContextMapper).MapContext(ctx, other)
	if _, ok := errors.AsType[*hsapi.Unavailable](err); !ok || !strings.Contains(err.Error(), "slot") {
		t.Errorf("second lookup of acme: %v, want unavailable for want of a slot", err)
	}
	if n := fake.count("/conversations/v3/conversations/threads/3344556678"); n != 0 {
		t.Errorf("the second lookup reached HubSpot %d times", n)
	}
	if res, err := globex.Map(other); err != nil || len(res.Skipped) != 1 || res.Skipped[0].Reason != SkipNoTicket {
		t.Errorf("globex: %+v, %v; its lookups have slots of their own", res, err)
	}
	close(release)
	if err := <-held; err != nil {
		t.Errorf("held lookup: %v", err)
	}
}

// However many deliveries of a tenant arrive at once, no more than Concurrency requests are in
// flight at HubSpot.
func TestConcurrencyBound(t *testing.T) {
	fake := newFakeHubSpot(t)
	var inFlight, most atomic.Int32
	fake.override = func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		fake.files(w, r)
	}
	a := withAPI(fake, hsapi.Options{Concurrency: 2, Timeout: 10 * time.Second})
	d := adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "customer-message")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := a.Map(d); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m := most.Load(); m != 2 {
		t.Errorf("at most %d requests in flight, want 2", m)
	}
}

// ContextMapper is what the webhook looks for (httpapi.ContextMapper).
type ContextMapper interface {
	MapContext(ctx context.Context, d adapter.Delivery) (adapter.Result, error)
}

var _ ContextMapper = (*Adapter)(nil)

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The messages of one delivery are looked up at once, and still come out in the array's order.
func TestDeliveryLookupsOverlap(t *testing.T) {
	fake := newFakeHubSpot(t)
	var inFlight, most atomic.Int32
	fake.override = func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(30 * time.Millisecond)
		fake.files(w, r)
	}
	res := adaptertest.Map(t, withAPI(fake, hsapi.Options{Concurrency: 4}), adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "batch-messages"))
	var got []string
	for _, ev := range res.Events {
		got = append(got, ev.Type+"@"+ev.OccurredAt.Format("15:04:05"))
	}
	want := "customer_message@09:00:30 agent_message@09:05:00 agent_message@09:10:00 customer_message@09:20:00"
	if strings.Join(got, " ") != want || len(res.Skipped) != 1 {
		t.Errorf("events %v skipped %v, want %s and one skip", got, res.Skipped, want)
	}
	if m := most.Load(); m < 2 || m > 4 {
		t.Errorf("at most %d requests in flight for one delivery, want 2 to 4", m)
	}
}

// A delivery whose request ends while its lookups run is not mapped, not even in part.
func TestRequestEndsDuringLookups(t *testing.T) {
	fake := newFakeHubSpot(t)
	fake.override = func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/messages/5c8a") {
			<-r.Context().Done()
			return
		}
		fake.files(w, r)
	}
	a := withAPI(fake, hsapi.Options{Concurrency: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := a.(ContextMapper).MapContext(ctx, adaptertest.Delivery(t, filepath.Join("testdata", "lookup"), "batch-messages"))
	if _, ok := errors.AsType[*hsapi.Unavailable](err); !ok || len(res.Events) != 0 {
		t.Errorf("got %+v, %v; want nothing and unavailable", res, err)
	}
}

// FuzzMapWithLookups: with lookups answered by the stand-in, no delivery panics, a refusal is
// always canonical.Problems, and the events made from HubSpot's answers are valid.
func FuzzMapWithLookups(f *testing.F) {
	fake := newFakeHubSpot(f)
	adaptertest.Fuzz(f, withAPI(fake, hsapi.Options{Timeout: 10 * time.Second}), filepath.Join("testdata", "lookup"))
}
