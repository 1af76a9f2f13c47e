package app

import (
	"context"
	"net/http"
	"testing"

	"google.golang.org/protobuf/proto"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// A qa_scored event is taken by the events API like any canonical event and stored with its
// review; one carrying a ticket attribute is refused naming the field, and nothing is stored.
func TestPostQAScored(t *testing.T) {
	_, url := testenv.NATS(t)
	r := start(t, url, nil)
	stream := tickets(t, url)

	review := `{"id":"qa-1","ticket_id":"T-77","type":"qa_scored","occurred_at":"2026-03-02T09:20:00Z",` +
		`"actor":{"id":"lead","kind":"agent"},"qa":{"review_id":"g-1","reviewer_id":"lead","agent_id":"ana",` +
		`"team_id":"billing","score":87.456,"auto_fail":true,"scorecard":"Email","categories":{"Tone":66.666}}}`
	wantJSON(t, r.post(t, "acme", review), http.StatusAccepted, `{"accepted":["qa-1"],"duplicates":0}`)
	m, err := stream.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var ev ticketpulsev1.TicketEvent
	if err := proto.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}
	want := &ticketpulsev1.QaReview{ReviewId: "g-1", ReviewerId: "lead", AgentId: "ana", TeamId: "billing", Score: 87.46,
		AutoFail: true, Scorecard: "Email", Categories: map[string]float64{"Tone": 66.67}}
	if m.Subject != "tickets.acme.qa_scored" || ev.GetType() != ticketpulsev1.EventType_EVENT_TYPE_QA_SCORED || !proto.Equal(ev.GetQa(), want) {
		t.Errorf("stored %s %v", m.Subject, &ev)
	}

	bad := `{"id":"qa-2","ticket_id":"T-77","type":"qa_scored","occurred_at":"2026-03-02T09:20:00Z","team_id":"billing",` +
		`"actor":{"kind":"system"},"qa":{"review_id":"g-2","agent_id":"ana","score":"90"}}`
	wantJSON(t, r.post(t, "acme", bad), http.StatusBadRequest, `{"error":"invalid request","problems":[
		{"index":0,"field":"qa.score","reason":"must be a JSON number, not a string"},
		{"index":0,"field":"team_id","reason":"not allowed on qa_scored: a review does not change the ticket (the reviewed agent and team are qa.agent_id and qa.team_id)"}]}`)
	if n := msgCount(t, stream); n != 1 {
		t.Errorf("stream holds %d messages; want 1", n)
	}
}
