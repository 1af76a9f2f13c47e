package app

import (
	"context"
	"net/http"
	"testing"

	"google.golang.org/protobuf/proto"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// Call events are taken by the events API like any canonical event and stored with their call
// under their own subjects; one naming another ticket than its call's is refused naming the
// field, and nothing of its request is stored.
func TestPostCalls(t *testing.T) {
	_, url := testenv.NATS(t)
	r := start(t, url, nil)
	stream := tickets(t, url)

	calls := `[{"id":"CA-9-a","ticket_id":"T-77","type":"call_answered","occurred_at":"2026-03-02T09:14:23Z",` +
		`"actor":{"id":"ana","kind":"agent"},"call":{"call_id":"CA-9","ticket_id":"T-77","direction":"inbound",` +
		`"agent_id":"ana","team_id":"phones","queue_id":"support","wait_seconds":18.0004}},` +
		`{"id":"CA-10-x","ticket_id":"CA-10","type":"call_abandoned","occurred_at":"2026-03-02T09:30:00Z",` +
		`"actor":{"kind":"system"},"call":{"call_id":"CA-10","direction":"inbound","wait_seconds":64}}]`
	wantJSON(t, r.post(t, "acme", calls), http.StatusAccepted, `{"accepted":["CA-9-a","CA-10-x"],"duplicates":0}`)
	want := []struct {
		subject string
		call    *ticketpulsev1.CallInfo
	}{
		{"tickets.acme.call_answered", &ticketpulsev1.CallInfo{CallId: "CA-9", TicketId: "T-77", AgentId: "ana", TeamId: "phones",
			QueueId: "support", Direction: ticketpulsev1.CallDirection_CALL_DIRECTION_INBOUND, WaitSeconds: 18}},
		{"tickets.acme.call_abandoned", &ticketpulsev1.CallInfo{CallId: "CA-10",
			Direction: ticketpulsev1.CallDirection_CALL_DIRECTION_INBOUND, WaitSeconds: 64}},
	}
	for i, w := range want {
		m, err := stream.GetMsg(context.Background(), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		var ev ticketpulsev1.TicketEvent
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if m.Subject != w.subject || !proto.Equal(ev.GetCall(), w.call) {
			t.Errorf("message %d: stored %s %v; want %s with %v", i+1, m.Subject, &ev, w.subject, w.call)
		}
	}

	bad := `[{"id":"CA-11-o","ticket_id":"CA-11","type":"call_offered","occurred_at":"2026-03-02T09:40:00Z",` +
		`"actor":{"kind":"system"},"call":{"call_id":"CA-11","direction":"inbound"}},` +
		`{"id":"CA-11-a","ticket_id":"T-1","type":"call_answered","occurred_at":"2026-03-02T09:40:05Z",` +
		`"actor":{"kind":"system"},"call":{"call_id":"CA-11","direction":"inbound","agent_id":"ana","talk_seconds":5}}]`
	wantJSON(t, r.post(t, "acme", bad), http.StatusBadRequest, `{"error":"invalid request","problems":[
		{"index":1,"field":"call.talk_seconds","reason":"talk_seconds, hold_seconds and wrap_up_seconds are only allowed on call_ended"},
		{"index":1,"field":"ticket_id","reason":"must equal call.call_id for a call with no ticket (or set call.ticket_id to the linked ticket)"}]}`)
	if n := msgCount(t, stream); n != 2 {
		t.Errorf("stream holds %d messages; want 2", n)
	}
}
