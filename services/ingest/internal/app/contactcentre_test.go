package app

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/httpapi"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

const (
	ccFive9Token   = "f9-url-token-0123456789"
	ccGenesys      = "gc-shared-secret-0123456789"
	ccRingCentral  = "rc-verification-token-0123"
	ccFormType     = "application/x-www-form-urlencoded"
	ccJSONType     = "application/json"
	ccAdapterTests = "../adapter"
)

// startContactCentres runs ingest with acme's Five9, Genesys Cloud and RingCentral sources.
func startContactCentres(t *testing.T, natsURL string) *running {
	t.Helper()
	ts := servicetest.WriteTenants(t, map[string]string{"acme": `    sources:
      five9:
        url_token: {env: F9_TOKEN}
        ticket_field: ticket_id
      genesys:
        secrets: [{env: GC_SECRET}]
      ringcentral:
        secrets: [{env: RC_TOKEN}]
`})
	env := map[string]string{"F9_TOKEN": ccFive9Token, "GC_SECRET": ccGenesys, "RC_TOKEN": ccRingCentral}
	return startWebhooksWith(t, natsURL, func(c *Config, d *Deps) {
		c.TenantsFile = ts.File
		c.WebhookMaxBodyBytes = 64 << 10
		c.MaxEvents = 100
		d.Getenv = func(k string) string { return env[k] }
	})
}

// ccPost posts the recorded delivery name of source's conversation with the source's credential.
func (r *running) ccPost(t *testing.T, source, name string) response {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(ccAdapterTests, source, "testdata", "conversation", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	url := r.base + "/v1/tenants/acme/webhooks/" + source
	switch source {
	case "five9":
		return do(t, http.MethodPost, url+"?token="+ccFive9Token, ccFormType, string(body), nil)
	case "genesys":
		return do(t, http.MethodPost, url, ccJSONType, string(body), map[string]string{"X-Ticketpulse-Secret": ccGenesys})
	default:
		return do(t, http.MethodPost, url, ccJSONType, string(body), map[string]string{"Verification-Token": ccRingCentral})
	}
}

// TestContactCentreCallLives posts each source's recorded call through the webhook route with
// its credential: every step is stored once with the call on its ticket, a redelivery stores
// nothing new, and a wrong credential is refused before anything is read.
func TestContactCentreCallLives(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startContactCentres(t, url)
	lives := []struct {
		source string
		names  []string
		ticket string
	}{
		{"five9", []string{"01-queued", "02-accepted", "03-disconnected"}, "48213"},
		{"genesys", []string{"01-acd-start", "02-acd-end", "03-user-end"}, "6a7b8c9d-0e1f-4a2b-3c4d-5e6f7a8b9c0d"},
		{"ringcentral", []string{"01-proceeding", "02-answered", "03-disconnected"}, "s-b7c1d2e3f4a5z19a0b1c2d3e"},
	}
	for _, l := range lives {
		for _, name := range l.names {
			if got := r.ccPost(t, l.source, name); got.status != http.StatusAccepted {
				t.Fatalf("%s %s: %d %s", l.source, name, got.status, got.body)
			}
		}
		again := r.ccPost(t, l.source, l.names[1])
		var ans httpapi.WebhookAccepted
		if err := json.Unmarshal([]byte(again.body), &ans); err != nil || again.status != http.StatusAccepted || ans.Duplicates != 1 {
			t.Errorf("%s redelivery: %d %s, want 202 with one duplicate", l.source, again.status, again.body)
		}
	}
	got := storedEvents(t, url)
	if len(got) != 9 {
		t.Fatalf("TICKETS holds %d events, want 9 (three calls of three steps)", len(got))
	}
	wantTypes := []string{"EVENT_TYPE_CALL_OFFERED", "EVENT_TYPE_CALL_ANSWERED", "EVENT_TYPE_CALL_ENDED"}
	for i, ev := range got {
		l := lives[i/3]
		if ev.GetSource() != l.source || ev.GetTicketId() != l.ticket || ev.GetType().String() != wantTypes[i%3] || ev.GetCall() == nil {
			t.Errorf("event %d: %s %s %s call %v, want %s on %s, %s", i, ev.GetSource(), ev.GetTicketId(), ev.GetType(), ev.GetCall(), l.source, l.ticket, wantTypes[i%3])
		}
	}
	if c := got[2].GetCall(); c.GetTicketId() != "48213" || c.GetTalkSeconds() != 342 || c.GetWrapUpSeconds() != 45 {
		t.Errorf("five9 call_ended %v, want ticket 48213, 342 s talk, 45 s wrap-up", c)
	}
	if c := got[4].GetCall(); c.GetWaitSeconds() != 25.4 {
		t.Errorf("genesys call_answered %v, want 25.4 s wait", c)
	}

	refused := []struct {
		name        string
		source, qs  string
		contentType string
		header      map[string]string
		want        int
	}{
		{"five9 wrong token", "five9", "?token=nope", ccFormType, nil, http.StatusUnauthorized},
		{"five9 as JSON", "five9", "?token=" + ccFive9Token, ccJSONType, nil, http.StatusUnsupportedMediaType},
		{"genesys wrong secret", "genesys", "", ccJSONType, map[string]string{"X-Ticketpulse-Secret": ccRingCentral}, http.StatusUnauthorized},
		{"ringcentral no verification token", "ringcentral", "", ccJSONType, nil, http.StatusUnauthorized},
	}
	for _, c := range refused {
		got := do(t, http.MethodPost, r.base+"/v1/tenants/acme/webhooks/"+c.source+c.qs, c.contentType, `{}`, c.header)
		if got.status != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, got.status, got.body, c.want)
		}
	}
	// The subscription handshake stores nothing and is answered 200 with its token echoed, also
	// when it comes without a Content-Type.
	for _, ct := range []string{ccJSONType, ""} {
		hs := do(t, http.MethodPost, r.base+"/v1/tenants/acme/webhooks/ringcentral", ct, "", map[string]string{"Validation-Token": "3c1a7b8e"})
		if hs.status != http.StatusOK || hs.header.Get("Validation-Token") != "3c1a7b8e" {
			t.Errorf("handshake (Content-Type %q): %d, Validation-Token %q, %s; want 200 echoing 3c1a7b8e", ct, hs.status, hs.header.Get("Validation-Token"), hs.body)
		}
	}
	// A notification is no handshake: no token comes back.
	if got := do(t, http.MethodPost, r.base+"/v1/tenants/acme/webhooks/ringcentral", ccJSONType, "", nil); got.header.Get("Validation-Token") != "" {
		t.Errorf("an answer without a handshake echoes %q", got.header.Get("Validation-Token"))
	}
	if n := len(storedEvents(t, url)); n != 9 {
		t.Errorf("TICKETS holds %d events after the refusals and the handshake, want 9", n)
	}
}
