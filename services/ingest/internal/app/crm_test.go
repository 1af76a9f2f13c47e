package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/hubspot"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/salesforce"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/httpapi"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// The CRM adapters take the tenant's statuses: and Salesforce answers with its own body.
var (
	_ httpapi.Acknowledger = salesforce.New()
	_ httpapi.Configurable = salesforce.New()
	_ httpapi.Configurable = hubspot.New()
)

const (
	crmOrg       = "00D5g000004XyZaEAK"
	crmSFToken   = "sf-url-token-0123456789"
	crmSFSecret  = "sf-flow-secret-0123456789"
	crmHSSecret  = "hs-client-secret-0123456789"
	crmHSURL     = "https://hooks.example.com/v1/tenants/acme/webhooks/hubspot"
	xmlType      = "text/xml; charset=utf-8"
	crmSFTestdir = "../adapter/salesforce/testdata"
)

// startCRM runs ingest with acme's Salesforce and HubSpot sources.
func startCRM(t *testing.T, natsURL string) *running {
	t.Helper()
	ts := servicetest.WriteTenants(t, map[string]string{"acme": `    sources:
      salesforce:
        url_token: {env: SF_TOKEN}
        secrets: [{env: SF_SECRET}]
        organization_id: ` + crmOrg + `
        statuses: {"Awaiting Parts": on_hold}
      hubspot:
        secrets: [{env: HS_SECRET}]
        target_url: ` + crmHSURL + `
        portal_ids: [62515]
`})
	env := map[string]string{"SF_TOKEN": crmSFToken, "SF_SECRET": crmSFSecret, "HS_SECRET": crmHSSecret}
	return startWebhooksWith(t, natsURL, func(c *Config, d *Deps) {
		c.TenantsFile = ts.File
		c.WebhookMaxBodyBytes = 64 << 10
		c.MaxEvents = 100
		d.Getenv = func(k string) string { return env[k] }
	})
}

func (r *running) outbound(t *testing.T, query, body string) response {
	t.Helper()
	return do(t, http.MethodPost, r.base+"/v1/tenants/acme/webhooks/salesforce"+query, xmlType, body, map[string]string{"SOAPAction": `""`})
}

// storedEvents reads every event of the TICKETS stream, in order.
func storedEvents(t *testing.T, natsURL string) []*ticketpulsev1.TicketEvent {
	t.Helper()
	s := tickets(t, natsURL)
	n := msgCount(t, s)
	out := make([]*ticketpulsev1.TicketEvent, 0, n)
	for seq := uint64(1); seq <= n; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		var ev ticketpulsev1.TicketEvent
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		if want := "tickets.acme." + strings.TrimPrefix(strings.ToLower(ev.GetType().String()), "event_type_"); m.Subject != want {
			t.Errorf("message %d subject %s, want %s", seq, m.Subject, want)
		}
		out = append(out, &ev)
	}
	return out
}

func wantAck(t *testing.T, got response) {
	t.Helper()
	if got.status != http.StatusOK || got.body != salesforce.Ack || got.header.Get("Content-Type") != xmlType {
		t.Errorf("got %d %q %s, want 200 %q with the SOAP acknowledgement", got.status, got.header.Get("Content-Type"), got.body, xmlType)
	}
}

// TestSalesforceCaseLife posts a recorded Case life as Salesforce's Outbound Messages: each is
// acknowledged in SOAP only after its events are stored, and a retried notification stores
// nothing new.
func TestSalesforceCaseLife(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startCRM(t, url)
	dir := filepath.Join(crmSFTestdir, "conversation")
	names := []string{"01-case-created", "02-assigned-to-agent", "03-private-note", "04-first-public-reply", "05-closed"}
	bodies := map[string]string{}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name+".xml"))
		if err != nil {
			t.Fatal(err)
		}
		bodies[name] = string(b)
		wantAck(t, r.outbound(t, "?token="+crmSFToken, string(b)))
	}
	type want struct {
		id, typ, actor, assignee, status string
		public                           *bool
	}
	const agent, queue = "0055g00000Agt1AAAQ", "00G5g000001QueAEAS"
	wants := []want{
		{"04l5g00000Lfe01AAB-created", "TICKET_CREATED", "0035g00000Cust9AAA", "", "NEW", nil},
		{"04l5g00000Lfe02AAB-status", "STATUS_CHANGED", agent, agent, "OPEN", nil},
		{"04l5g00000Lfe02AAB-owner", "TICKET_ASSIGNED", agent, agent, "UNSPECIFIED", nil},
		{"04l5g00000Lfe02AAB-priority", "PRIORITY_CHANGED", agent, agent, "UNSPECIFIED", nil},
		{"04l5g00000Lfe03AAB-comment", "AGENT_MESSAGE", agent, "", "UNSPECIFIED", proto.Bool(false)},
		{"04l5g00000Lfe04AAB-comment", "AGENT_MESSAGE", agent, "", "UNSPECIFIED", proto.Bool(true)},
		{"04l5g00000Lfe05AAB-status", "STATUS_CHANGED", agent, agent, "CLOSED", nil},
		{"04l5g00000Lfe05AAB-owner", "TICKET_ASSIGNED", agent, agent, "UNSPECIFIED", nil},
		{"04l5g00000Lfe05AAB-priority", "PRIORITY_CHANGED", agent, agent, "UNSPECIFIED", nil},
	}
	got := storedEvents(t, url)
	if len(got) != len(wants) {
		t.Fatalf("TICKETS holds %d events, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		ev := got[i]
		typ := strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_")
		status := strings.TrimPrefix(ev.GetStatus().String(), "TICKET_STATUS_")
		if ev.GetId() != w.id || typ != w.typ || ev.GetActor().GetId() != w.actor || ev.GetAssigneeId() != w.assignee ||
			status != w.status || ev.GetSource() != "salesforce" || ev.GetTenant() != "acme" || ev.GetTicketId() != "5005g00000Life1AAA" {
			t.Errorf("event %d: %v", i, ev)
		}
		if w.public != nil && (ev.Public == nil || *ev.Public != *w.public) {
			t.Errorf("event %d public %v, want %v", i, ev.Public, *w.public)
		}
	}
	if got[0].GetTeamId() != queue || got[0].GetChannel() != "email" {
		t.Errorf("created: team %q channel %q, want the queue and email", got[0].GetTeamId(), got[0].GetChannel())
	}
	// Salesforce delivers a notification again when it missed the acknowledgement: acknowledged
	// again, stored once.
	wantAck(t, r.outbound(t, "?token="+crmSFToken, bodies["05-closed"]))
	if n := msgCount(t, tickets(t, url)); n != uint64(len(wants)) {
		t.Errorf("a retried notification was stored again: %d events", n)
	}
}

func TestSalesforceRejectionsChangeNothing(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startCRM(t, url)
	s := tickets(t, url)
	created, err := os.ReadFile(filepath.Join(crmSFTestdir, "conversation", "01-case-created.xml"))
	if err != nil {
		t.Fatal(err)
	}
	dtd, err := os.ReadFile(filepath.Join(crmSFTestdir, "malformed-om-dtd.xml"))
	if err != nil {
		t.Fatal(err)
	}
	otherOrg := strings.Replace(string(created), crmOrg, "00D000000000001AAA", 1)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	flowBody := `{"organization_id":"00D000000000001AAA","record":{"attributes":{"type":"Case"},"Id":"5005g00000Flow1AAA","CreatedDate":"2026-03-02T09:00:00.000+0000"}}`
	mac := hmac.New(sha256.New, []byte(crmSFSecret))
	mac.Write([]byte(now + "." + flowBody))
	flowHeaders := map[string]string{"X-Ticketpulse-Timestamp": now, "X-Ticketpulse-Signature": "v1=" + hex.EncodeToString(mac.Sum(nil))}
	tests := []struct {
		name   string
		got    func() response
		status int
		want   string
	}{
		{"other organisation", func() response { return r.outbound(t, "?token="+crmSFToken, otherOrg) }, 403,
			`{"error":"forbidden","code":"wrong_account","reason":"OrganizationId \"00D000000000001AAA\" is not this tenant's Salesforce organisation"}`},
		{"other organisation in a signed Flow callout", func() response {
			return do(t, http.MethodPost, r.base+"/v1/tenants/acme/webhooks/salesforce", jsonType, flowBody, flowHeaders)
		}, 403, `{"error":"forbidden","code":"wrong_account","reason":"organization_id \"00D000000000001AAA\" is not this tenant's Salesforce organisation"}`},
		{"no token", func() response { return r.outbound(t, "", string(created)) }, 401,
			`{"error":"unauthorized","code":"missing_credentials","reason":"salesforce Outbound Messages need the token query parameter"}`},
		{"wrong token", func() response { return r.outbound(t, "?token=nope", string(created)) }, 401,
			`{"error":"unauthorized","code":"bad_token","reason":"the token query parameter is wrong"}`},
		{"DTD", func() response { return r.outbound(t, "?token="+crmSFToken, string(dtd)) }, 400,
			`{"error":"invalid request","problems":[{"index":0,"field":"","reason":"a DTD or other \u003c!...\u003e declaration is not allowed in a SOAP message"}]}`},
		{"plain text", func() response {
			return do(t, http.MethodPost, r.base+"/v1/tenants/acme/webhooks/salesforce?token="+crmSFToken, "text/plain", string(created), nil)
		}, 415, `{"error":"unsupported media type","reason":"Content-Type must be text/xml (Outbound Messages) or application/json (Flow callouts)"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantJSON(t, tt.got(), tt.status, tt.want)
			if n := msgCount(t, s); n != 0 {
				t.Errorf("stream holds %d messages", n)
			}
		})
	}
}

// hubSpotSigned returns HubSpot's v3 headers for body, computed here independently of package
// verify: base64(HMAC-SHA256(secret, "POST" + URI + body + timestamp in ms)).
func hubSpotSigned(body string, at time.Time) map[string]string {
	ts := strconv.FormatInt(at.UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(crmHSSecret))
	mac.Write([]byte("POST" + crmHSURL + body + ts))
	return map[string]string{"X-HubSpot-Signature-v3": base64.StdEncoding.EncodeToString(mac.Sum(nil)), "X-HubSpot-Request-Timestamp": ts}
}

func TestHubSpotWebhook(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startCRM(t, url)
	body := `[{"eventId":1,"subscriptionId":2,"portalId":62515,"appId":3,"occurredAt":1772442000000,"subscriptionType":"ticket.creation","attemptNumber":0,"objectId":4203,"changeSource":"FORM"},` +
		`{"eventId":2,"subscriptionId":4,"portalId":62515,"appId":3,"occurredAt":1772445600000,"subscriptionType":"ticket.propertyChange","attemptNumber":0,"objectId":4203,"propertyName":"hs_pipeline_stage","propertyValue":"4","changeSource":"CRM_UI","sourceId":"userId:8812"}]`
	got := r.hook(t, "acme", "hubspot", body, hubSpotSigned(body, time.Now()))
	if got.status != http.StatusAccepted || !strings.Contains(got.body, `"duplicates":0`) {
		t.Fatalf("got %d %s, want 202", got.status, got.body)
	}
	events := storedEvents(t, url)
	if len(events) != 2 || events[1].GetStatus() != ticketpulsev1.TicketStatus_TICKET_STATUS_CLOSED || events[1].GetActor().GetId() != "8812" {
		t.Fatalf("stored %v", events)
	}
	// HubSpot's retry: the same events with attemptNumber 1, signed anew.
	retry := strings.ReplaceAll(body, `"attemptNumber":0`, `"attemptNumber":1`)
	wantJSON(t, r.hook(t, "acme", "hubspot", retry, hubSpotSigned(retry, time.Now())), 202,
		`{"accepted":["`+events[0].GetId()+`","`+events[1].GetId()+`"],"duplicates":2}`)

	otherPortal := strings.ReplaceAll(body, "62515", "99")
	stale := hubSpotSigned(body, time.Now().Add(-6*time.Minute))
	tests := []struct {
		name   string
		body   string
		header map[string]string
		status int
		code   string
	}{
		{"other portal", otherPortal, hubSpotSigned(otherPortal, time.Now()), 403, "wrong_account"},
		{"tampered", strings.Replace(body, "4203", "4204", 1), hubSpotSigned(body, time.Now()), 401, "bad_signature"},
		{"stale", body, stale, 401, "stale_timestamp"},
		{"unsigned", body, nil, 401, "missing_signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.hook(t, "acme", "hubspot", tt.body, tt.header)
			if got.status != tt.status || !strings.Contains(got.body, `"code":"`+tt.code+`"`) {
				t.Errorf("got %d %s, want %d %s", got.status, got.body, tt.status, tt.code)
			}
		})
	}
	if n := msgCount(t, tickets(t, url)); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
}

// The acknowledgement is Salesforce's signal to stop retrying, so it is never sent for a message
// JetStream did not store; the tenant's statuses: reaches the adapter.
func TestSalesforceAckOnlyWhenStored(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startCRM(t, url)
	custom, err := os.ReadFile(filepath.Join(crmSFTestdir, "om-case-custom-status-open.xml"))
	if err != nil {
		t.Fatal(err)
	}
	deleteTickets(t, url)
	got := r.outbound(t, "?token="+crmSFToken, string(custom))
	if got.status != http.StatusServiceUnavailable || strings.Contains(got.body, "Ack") || got.header.Get("Content-Type") != jsonType {
		t.Fatalf("got %d %q %s, want a JSON 503 without the acknowledgement", got.status, got.header.Get("Content-Type"), got.body)
	}
	if _, err := stream.Ensure(context.Background(), jetStream(t, url), stream.Tickets(time.Hour, 1)); err != nil {
		t.Fatal(err)
	}
	wantAck(t, r.outbound(t, "?token="+crmSFToken, string(custom)))
	events := storedEvents(t, url)
	if len(events) == 0 || events[0].GetType() != ticketpulsev1.EventType_EVENT_TYPE_STATUS_CHANGED ||
		events[0].GetStatus() != ticketpulsev1.TicketStatus_TICKET_STATUS_ON_HOLD {
		t.Errorf("stored %v, want the tenant's Awaiting Parts → on_hold first", events)
	}
}

// A signed Flow callout is answered in JSON, like the helpdesks.
func TestSalesforceFlowCallout(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startCRM(t, url)
	body, err := os.ReadFile(filepath.Join(crmSFTestdir, "flow-case-created-web.json"))
	if err != nil {
		t.Fatal(err)
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(crmSFSecret))
	mac.Write([]byte(now + "."))
	mac.Write(body)
	h := map[string]string{"X-Ticketpulse-Timestamp": now, "X-Ticketpulse-Signature": "v1=" + hex.EncodeToString(mac.Sum(nil))}
	got := do(t, http.MethodPost, r.base+"/v1/tenants/acme/webhooks/salesforce", jsonType, string(body), h)
	if got.status != http.StatusAccepted || got.header.Get("Content-Type") != jsonType || !strings.Contains(got.body, `"duplicates":0`) {
		t.Fatalf("got %d %s", got.status, got.body)
	}
	events := storedEvents(t, url)
	if len(events) != 1 || events[0].GetType() != ticketpulsev1.EventType_EVENT_TYPE_TICKET_CREATED ||
		events[0].GetActor().GetKind() != ticketpulsev1.ActorKind_ACTOR_KIND_CUSTOMER {
		t.Errorf("stored %v", events)
	}
}
