package app

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/hubspot"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/httpapi"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

var _ httpapi.ContextMapper = hubspot.New()

const (
	crmHSToken   = "pat-na1-hs-token-0123456789"
	crmHSTestdir = "../adapter/hubspot/testdata"
)

// hubSpotAPI stands in for api.hubapi.com: it answers from the adapter's recorded API answers
// unless fail is set, and records every request.
type hubSpotAPI struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
	fail  http.HandlerFunc
}

func newHubSpotAPI(t *testing.T) *hubSpotAPI {
	api := &hubSpotAPI{}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.mu.Lock()
		api.paths = append(api.paths, r.URL.Path)
		fail := api.fail
		api.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+crmHSToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if fail != nil {
			fail(w, r)
			return
		}
		var file string
		rest, _ := strings.CutPrefix(r.URL.Path, "/conversations/v3/conversations/threads/")
		thread, msg, isMsg := strings.Cut(rest, "/messages/")
		switch {
		case r.URL.Path == "/crm/v3/owners":
			file = "owners.json"
		case isMsg:
			file = filepath.Join("messages", msg+".json")
		case rest != "":
			file = filepath.Join("threads", thread+".json")
		}
		body, err := os.ReadFile(filepath.Join(crmHSTestdir, "api", file))
		if file == "" || err != nil {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(api.Close)
	return api
}

func (a *hubSpotAPI) requests() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.paths)
}

func (a *hubSpotAPI) failWith(h http.HandlerFunc) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail = h
}

// startHubSpotMessages runs ingest with acme's HubSpot source holding a private app token whose
// API is api.
func startHubSpotMessages(t *testing.T, natsURL string, api *hubSpotAPI) *running {
	t.Helper()
	ts := servicetest.WriteTenants(t, map[string]string{"acme": `    sources:
      hubspot:
        secrets: [{env: HS_SECRET}]
        target_url: ` + crmHSURL + `
        portal_ids: [62515]
        access_token: {env: HS_TOKEN}
        api_url: ` + api.URL + `
`})
	env := map[string]string{"HS_SECRET": crmHSSecret, "HS_TOKEN": crmHSToken}
	return startWebhooksWith(t, natsURL, func(c *Config, d *Deps) {
		c.TenantsFile = ts.File
		c.WebhookMaxBodyBytes = 64 << 10
		c.MaxEvents = 100
		c.VendorAPITimeout = 2 * time.Second
		d.Getenv = func(k string) string { return env[k] }
	})
}

func hubSpotFixture(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(crmHSTestdir, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHubSpotConversationMessages posts a recorded ticket life whose messages HubSpot's webhook
// names only by thread and id, through the real webhook route and JetStream: ingest looks them
// up (after the signature, never before), stores the messages on the thread's ticket with the
// assigned owner as the replying agent, stores nothing while HubSpot's API is unavailable and
// answers 503 with Retry-After, and a retry of a stored message is a duplicate.
func TestHubSpotConversationMessages(t *testing.T) {
	_, url := testenv.NATS(t)
	api := newHubSpotAPI(t)
	r := startHubSpotMessages(t, url, api)
	dir := "conversation-messages"
	reply := hubSpotFixture(t, filepath.Join(dir, "05-agent-reply.json"))

	// Unsigned, or signed by someone else: refused before any lookup.
	if got := r.hook(t, "acme", "hubspot", reply, nil); got.status != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d %s", got.status, got.body)
	}
	tampered := hubSpotSigned(reply, time.Now())
	if got := r.hook(t, "acme", "hubspot", strings.Replace(reply, "3344556677", "3344556678", 1), tampered); got.status != http.StatusUnauthorized {
		t.Fatalf("tampered: %d %s", got.status, got.body)
	}
	if n := api.requests(); n != 0 {
		t.Fatalf("%d requests to HubSpot for deliveries that failed verification", n)
	}

	names := []string{"01-ticket-created", "02-assigned", "03-customer-message", "04-internal-comment", "05-agent-reply", "06-closed"}
	for _, name := range names {
		body := hubSpotFixture(t, filepath.Join(dir, name+".json"))
		if got := r.hook(t, "acme", "hubspot", body, hubSpotSigned(body, time.Now())); got.status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", name, got.status, got.body)
		}
	}
	events := storedEvents(t, url)
	var got []string
	for _, ev := range events {
		d := strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_") + " " + ev.GetTicketId() + " " + ev.GetActor().GetId() + ev.GetAssigneeId()
		if ev.Public != nil {
			d += map[bool]string{true: " public", false: " private"}[ev.GetPublic()]
		}
		got = append(got, d)
	}
	want := []string{"TICKET_CREATED 5150 ", "TICKET_ASSIGNED 5150 8812", "CUSTOMER_MESSAGE 5150 1201 public", "AGENT_MESSAGE 5150 8812 private",
		"AGENT_MESSAGE 5150 8812 public", "STATUS_CHANGED 5150 7001"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("stored\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if at := events[4].GetOccurredAt().AsTime(); !at.Equal(time.Date(2026, 3, 2, 9, 10, 0, 0, time.UTC)) {
		t.Errorf("reply occurred at %v, want the message's createdAt", at)
	}

	// HubSpot's retry of the reply: the same event id, a duplicate.
	retry := strings.ReplaceAll(reply, `"attemptNumber": 0`, `"attemptNumber": 1`)
	wantJSON(t, r.hook(t, "acme", "hubspot", retry, hubSpotSigned(retry, time.Now())), http.StatusAccepted,
		`{"accepted":["`+events[4].GetId()+`"],"duplicates":1}`)

	// The API unavailable: 503 with Retry-After, nothing stored; then the retry goes through.
	bot := hubSpotFixture(t, filepath.Join("lookup", "bot-reply.json"))
	stored := msgCount(t, tickets(t, url))
	unavailable := []struct {
		name       string
		fail       http.HandlerFunc
		retryAfter string
		reason     string
	}{
		{"throttled", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		}, "7", "429"},
		{"failing", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }, "10", "502"},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, "10", "did not answer"},
	}
	for _, tt := range unavailable {
		t.Run(tt.name, func(t *testing.T) {
			api.failWith(tt.fail)
			got := r.hook(t, "acme", "hubspot", bot, hubSpotSigned(bot, time.Now()))
			if got.status != http.StatusServiceUnavailable || got.header.Get("Retry-After") != tt.retryAfter ||
				!strings.Contains(got.body, `"error":"source unavailable"`) || !strings.Contains(got.body, tt.reason) {
				t.Errorf("got %d Retry-After %q %s, want 503 after %s mentioning %s", got.status, got.header.Get("Retry-After"), got.body, tt.retryAfter, tt.reason)
			}
			if strings.Contains(got.body, crmHSToken) {
				t.Errorf("the answer shows the token: %s", got.body)
			}
			if n := msgCount(t, tickets(t, url)); n != stored {
				t.Errorf("stream holds %d messages, want %d", n, stored)
			}
		})
	}
	api.failWith(nil)
	if res := r.hook(t, "acme", "hubspot", bot, hubSpotSigned(bot, time.Now())); res.status != http.StatusAccepted {
		t.Fatalf("after HubSpot recovered: %d %s", res.status, res.body)
	}
	last := storedEvents(t, url)
	if ev := last[len(last)-1]; ev.GetType() != ticketpulsev1.EventType_EVENT_TYPE_AGENT_MESSAGE || ev.GetActor().GetKind() != ticketpulsev1.ActorKind_ACTOR_KIND_BOT {
		t.Errorf("bot reply stored as %v", ev)
	}
}
