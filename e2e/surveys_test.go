package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// surveySecret signs the Typeform deliveries of the survey test.
const surveySecret = "e2e-typeform-secret"

// typeformResponse is a form_response rating ticket with score (1 to 5) on the csat question,
// the ticket id in the hidden field ticket_id, as Typeform sends it.
func typeformResponse(token, ticket string, score int, at time.Time) string {
	return fmt.Sprintf(`{"event_id": %q, "event_type": "form_response", "form_response": {"form_id": "lT4Z3j", "token": %q,
  "submitted_at": %q, "hidden": {"ticket_id": %q},
  "definition": {"id": "lT4Z3j", "fields": [{"id": "Rk9zq1Cs4aVb", "type": "rating", "ref": "csat", "properties": {}}]},
  "answers": [{"type": "number", "number": %d, "field": {"id": "Rk9zq1Cs4aVb", "type": "rating", "ref": "csat"}}]}}`,
		"ev-"+token, token, at.UTC().Format(time.RFC3339), ticket, score)
}

// postTypeform signs body as Typeform does (sha256= and the base64 HMAC-SHA256 of the body,
// computed here, not by ingest's verify package) and posts it to acme's typeform webhook.
func postTypeform(t *testing.T, addr, body string) string {
	t.Helper()
	m := hmac.New(sha256.New, []byte(surveySecret))
	m.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/tenants/acme/webhooks/typeform", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Typeform-Signature", "sha256="+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("typeform webhook: %d %s", resp.StatusCode, answer)
	}
	return string(answer)
}

// A survey's rating reaches the agent's CSAT over gRPC whichever comes first, the ticket from
// the helpdesk or the rating from Typeform, and a redelivered response counts once.
func TestSurveyRatingsReachTheAgentsKPIs(t *testing.T) {
	s := newStackWith(t, map[string]string{"acme": `    sources:
      typeform: {secrets: [{env: E2E_TYPEFORM_SECRET}], ticket_field: ticket_id, score_question: csat, scale: 1-5}
`})
	addr := startIngest(t, s, "E2E_TYPEFORM_SECRET="+surveySecret)
	client := startKPI(t, s).as(s.tenants.Acme)
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	life := func(ticket string, start time.Time) []map[string]any {
		at := func(min int) string { return start.Add(time.Duration(min) * time.Minute).Format(time.RFC3339) }
		return []map[string]any{
			{"id": ticket + "-c", "ticket_id": ticket, "type": "ticket_created", "occurred_at": at(0), "actor": map[string]any{"id": "cust", "kind": "customer"}},
			{"id": ticket + "-a", "ticket_id": ticket, "type": "ticket_assigned", "occurred_at": at(1),
				"actor": map[string]any{"id": "lead", "kind": "agent"}, "assignee_id": "ana", "team_id": "billing"},
			{"id": ticket + "-r", "ticket_id": ticket, "type": "agent_message", "occurred_at": at(10),
				"actor": map[string]any{"id": "ana", "kind": "agent"}, "public": true},
			{"id": ticket + "-s", "ticket_id": ticket, "type": "status_changed", "occurred_at": at(30),
				"actor": map[string]any{"id": "ana", "kind": "agent"}, "status": "solved"},
		}
	}
	// The first ticket, then its rating of 2.
	post(t, addr, "acme", s.tenants.Acme, life("T-SV1", base))
	first := typeformResponse("resp-sv1", "T-SV1", 2, base.Add(2*time.Hour))
	postTypeform(t, addr, first)
	// The second ticket's rating of 5 comes before the ticket.
	postTypeform(t, addr, typeformResponse("resp-sv2", "T-SV2", 5, base.Add(26*time.Hour)))
	post(t, addr, "acme", s.tenants.Acme, life("T-SV2", base.Add(24*time.Hour)))
	// Typeform retries the first response.
	if again := postTypeform(t, addr, first); !strings.Contains(again, `"duplicates":1`) {
		t.Errorf("the redelivered response: %s, want it reported as a duplicate", again)
	}

	w := window(base.Add(-time.Hour), base.Add(72*time.Hour))
	got := waitKpis(t, client, "acme", w, func(k *tpv1.Kpis) bool { return k.GetResolutions() == 2 && k.GetCsatCount() == 2 })
	if got.GetCsatMean() != 3.5 {
		t.Errorf("CSAT mean %v, want 3.5 (ratings 2 and 5)", got.GetCsatMean())
	}
	// Nothing more arrives: the duplicate did not count a third rating.
	time.Sleep(time.Second)
	got = waitKpis(t, client, "acme", w, func(*tpv1.Kpis) bool { return true })
	if got.GetCsatCount() != 2 {
		t.Errorf("%d ratings after the redelivery, want 2", got.GetCsatCount())
	}
}
