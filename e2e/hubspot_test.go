package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// The HubSpot app of the test: its client secret signs the webhooks, its target URL is part of
// what is signed, and its private app token reads the conversations API.
const (
	hubSpotSecret    = "e2e-hubspot-client-secret"
	hubSpotTargetURL = "https://hooks.example.com/v1/tenants/acme/webhooks/hubspot"
	hubSpotToken     = "pat-na1-e2e-token"
)

// The recorded portal: ticket 5150 in portal 62515, opened from chat thread 3344556677, assigned
// to owner 8812, whose user id (the A-<userId> actor of the inbox) is 7001.
const (
	hsTicket = "5150"
	hsThread = "3344556677"
)

// hsLife is the ticket's start; the inbox's messages are minutes after it.
var hsLife = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// hsMessage is one message of the thread as GET /conversations/v3/conversations/threads/{id}/
// messages/{id} returns it (fields from HubSpot's reference page for that endpoint).
type hsMessage struct {
	id, typ, sender, direction string
	at                         time.Duration
}

var hsMessages = []hsMessage{
	{"0a11c9d0e5b6", "MESSAGE", "V-1201", "INCOMING", 30 * time.Second}, // the customer writes
	{"0a11c9d0e5b7", "COMMENT", "A-7001", "", 5 * time.Minute},          // an internal note: no response
	{"0a11c9d0e5b8", "MESSAGE", "A-7001", "OUTGOING", 10 * time.Minute}, // the first response
	{"0a11c9d0e5b9", "MESSAGE", "V-1201", "INCOMING", 20 * time.Minute}, // the customer again
	{"0a11c9d0e5ba", "MESSAGE", "A-7001", "OUTGOING", 26 * time.Minute}, // the next response
}

func (m hsMessage) json() string {
	created := hsLife.Add(m.at).Format(time.RFC3339)
	direction := ""
	if m.direction != "" {
		direction = fmt.Sprintf(`, "direction": %q, "channelId": "1000", "channelAccountId": "240120"`, m.direction)
	}
	return fmt.Sprintf(`{"type": %q, "id": %q, "conversationsThreadId": %q, "createdAt": %q, "updatedAt": %q, "createdBy": %q,
  "senders": [{"actorId": %q, "name": "Someone"}], "recipients": [], "archived": false, "text": "...", "richText": "<p>...</p>",
  "attachments": [], "truncationStatus": "NOT_TRUNCATED"%s}`, m.typ, m.id, hsThread, created, created, m.sender, m.sender, direction)
}

// hubSpotAPI stands in for api.hubapi.com on a loopback port, answering the thread, its messages
// and the portal's owners, and counting what it is asked.
type hubSpotAPI struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
}

func newHubSpotAPI(t *testing.T) *hubSpotAPI {
	api := &hubSpotAPI{}
	byID := map[string]hsMessage{}
	for _, m := range hsMessages {
		byID[m.id] = m
	}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.mu.Lock()
		api.requests++
		api.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+hubSpotToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		threadPath := "/conversations/v3/conversations/threads/" + hsThread
		switch {
		case r.URL.Path == threadPath && r.URL.Query().Get("association") == "TICKET":
			fmt.Fprintf(w, `{"id": %q, "createdAt": "2026-03-02T08:59:58Z", "status": "OPEN", "originalChannelId": "1000",
  "originalChannelAccountId": "240120", "spam": false, "inboxId": "147959634", "associatedContactId": "1201", "archived": false,
  "threadAssociations": {"associatedTicketId": %q}}`, hsThread, hsTicket)
		case strings.HasPrefix(r.URL.Path, threadPath+"/messages/"):
			m, ok := byID[strings.TrimPrefix(r.URL.Path, threadPath+"/messages/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, m.json())
		case r.URL.Path == "/crm/v3/owners":
			io.WriteString(w, `{"results": [{"id": "8812", "email": "agent@example.com", "type": "PERSON", "userId": 7001,
  "userIdIncludingInactive": 7001, "archived": false}]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(api.Close)
	return api
}

func (a *hubSpotAPI) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests
}

// hsEvent is one element of a HubSpot webhook array (fields from HubSpot's Webhooks API page).
func hsEvent(id int, sub string, at time.Time, fields string) string {
	return fmt.Sprintf(`{"eventId": %d, "subscriptionId": 2461, "portalId": 62515, "appId": 1160452, "occurredAt": %d,
  "subscriptionType": %q, "attemptNumber": 0, %s}`, id, at.UnixMilli(), sub, fields)
}

func hsStage(id int, at time.Time, stage string) string {
	return hsEvent(id, "ticket.propertyChange", at, fmt.Sprintf(`"objectId": %s, "propertyName": "hs_pipeline_stage", "propertyValue": %q,
  "changeSource": "CRM_UI", "sourceId": "userId:7001"`, hsTicket, stage))
}

func hsNewMessage(id int, m hsMessage) string {
	return hsEvent(id, "conversation.newMessage", hsLife.Add(m.at), fmt.Sprintf(`"objectId": %s, "messageId": %q, "messageType": %q,
  "changeFlag": "NEW_MESSAGE"`, hsThread, m.id, m.typ))
}

// postHubSpot signs body as HubSpot's v3 signature does (computed here from HubSpot's
// documentation, not by ingest) and posts it; it returns the status and the answer.
func postHubSpot(t *testing.T, addr, body string, signed bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/tenants/acme/webhooks/hubspot", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signed {
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		m := hmac.New(sha256.New, []byte(hubSpotSecret))
		m.Write([]byte("POST" + hubSpotTargetURL + body + ts))
		req.Header.Set("X-HubSpot-Signature-v3", base64.StdEncoding.EncodeToString(m.Sum(nil)))
		req.Header.Set("X-HubSpot-Request-Timestamp", ts)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

// A HubSpot ticket life (created from chat, assigned, stage changes, the customer's messages,
// an internal note, the agent's replies, closed), posted as HubSpot's webhooks with the messages
// read from the conversations API, gives the assigned owner its first and next response and
// the resolution over kpi's gRPC; a redelivered reply counts once.
func TestHubSpotTicketLife(t *testing.T) {
	api := newHubSpotAPI(t)
	s := newStackWith(t, map[string]string{"acme": `    sources:
      hubspot:
        secrets: [{env: E2E_HUBSPOT_SECRET}]
        target_url: ` + hubSpotTargetURL + `
        portal_ids: [62515]
        access_token: {env: E2E_HUBSPOT_TOKEN}
        api_url: ` + api.URL + `
`})
	addr := startIngest(t, s, "E2E_HUBSPOT_SECRET="+hubSpotSecret, "E2E_HUBSPOT_TOKEN="+hubSpotToken)
	client := startKPI(t, s).as(s.tenants.Acme)

	at := func(d time.Duration) time.Time { return hsLife.Add(d) }
	deliveries := []string{
		hsEvent(2001, "ticket.creation", at(0), `"objectId": `+hsTicket+`, "changeFlag": "CREATED", "changeSource": "CONVERSATIONS"`),
		hsEvent(2002, "ticket.propertyChange", at(15*time.Second), `"objectId": `+hsTicket+`, "propertyName": "hubspot_owner_id",
  "propertyValue": "8812", "changeSource": "AUTOMATION_PLATFORM", "sourceId": ""`),
		hsNewMessage(3001, hsMessages[0]),
		hsStage(2003, at(time.Minute), "3"), // waiting on us
		hsNewMessage(3002, hsMessages[1]),
		hsNewMessage(3003, hsMessages[2]),
		hsStage(2004, at(10*time.Minute+5*time.Second), "2"), // waiting on contact
		hsNewMessage(3004, hsMessages[3]),
		hsNewMessage(3005, hsMessages[4]),
		hsStage(2005, at(30*time.Minute), "4"), // closed
	}
	// Unsigned, a message is refused before HubSpot is asked anything.
	if status, answer := postHubSpot(t, addr, "["+deliveries[2]+"]", false); status != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d %s", status, answer)
	}
	if n := api.count(); n != 0 {
		t.Fatalf("%d requests to HubSpot for an unsigned delivery", n)
	}
	for i, d := range deliveries {
		if status, answer := postHubSpot(t, addr, "["+d+"]", true); status != http.StatusAccepted {
			t.Fatalf("delivery %d: %d %s", i+1, status, answer)
		}
	}
	// HubSpot's retry of the first reply: stored already.
	retry := strings.Replace("["+deliveries[5]+"]", `"attemptNumber": 0`, `"attemptNumber": 1`, 1)
	if status, answer := postHubSpot(t, addr, retry, true); status != http.StatusAccepted || !strings.Contains(answer, `"duplicates":1`) {
		t.Fatalf("retry: %d %s, want 202 with one duplicate", status, answer)
	}

	w := window(time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC))
	kpis := func(agent string) *tpv1.Kpis {
		resp, err := client.GetAgentKpis(context.Background(), &tpv1.GetAgentKpisRequest{Tenant: "acme", AgentId: agent, Window: w})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetAgent().GetKpis()
	}
	var got *tpv1.Kpis
	deadline := time.Now().Add(time.Minute)
	for got = kpis("8812"); got.GetResolutions() < 1 || got.GetNextResponse().GetCount() < 1; got = kpis("8812") {
		if time.Now().After(deadline) {
			t.Fatalf("owner 8812's KPIs never complete: %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		// Created 09:00:00, the first public reply by A-7001 (owner 8812) at 09:10:00; the
		// note at 09:05 is no response.
		{"first responses", float64(got.GetFirstResponse().GetCount()), 1},
		{"first response (s)", got.GetFirstResponse().GetSumSeconds(), 600},
		// The customer again at 09:20:00, answered at 09:26:00.
		{"next responses", float64(got.GetNextResponse().GetCount()), 1},
		{"next response (s)", got.GetNextResponse().GetSumSeconds(), 360},
		// Created 09:00:00, closed (stage 4) at 09:30:00, assigned to 8812.
		{"resolutions", float64(got.GetResolutions()), 1},
		{"resolution (s)", got.GetResolution().GetSumSeconds(), 1800},
		{"assigned", float64(got.GetAssigned()), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	// The user id of the inbox's actor is not an agent of its own.
	if other := kpis("7001"); other.GetFirstResponse().GetCount() != 0 || other.GetNextResponse().GetCount() != 0 {
		t.Errorf("user id 7001 has responses of its own: %v", other)
	}
}
