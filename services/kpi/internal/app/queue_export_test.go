package app

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
)

// The queues export is served on kpi's HTTP port behind the credential check, from the call
// figures the pipeline credited to each queue: one row per queue and day, the call columns
// filled, the ticket columns 0.
func TestQueuesExportOnHTTPPort(t *testing.T) {
	s := newStack(t)
	ts := servicetest.WriteTenants(t, nil)
	r := runKPI(t, s, ts, nil)
	js := ticketsJS(t, s)
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sec := time.Second
	for _, c := range []queueCall{
		{id: "C1", queue: "support", agent: "ana", wait: 10 * sec, talk: 100 * sec},
		{id: "C2", queue: "support", wait: 40 * sec, offeredAt: time.Minute},
		{id: "C3", queue: oddQueue, agent: "bo", wait: 5 * sec, talk: 60 * sec, offeredAt: 2 * time.Minute},
	} {
		for _, ev := range c.events("acme", start) {
			msg, err := eventcodec.Encode(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.PublishMsg(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
		}
	}

	queues := "http://" + r.HTTP + "/v1/tenants/acme/exports/queues.csv?from=2026-03-01&to=2026-03-04&time_zone=Europe/Berlin"
	if code, body := fetch(t, queues, ""); code != http.StatusUnauthorized {
		t.Errorf("without credential: %d %s", code, body)
	}
	if code, body := fetch(t, queues, ts.Globex); code != http.StatusForbidden {
		t.Errorf("with globex's key: %d %s", code, body)
	}
	// Both queues over three days, once every call is counted.
	var recs [][]string
	col := map[string]int{}
	deadline := time.Now().Add(15 * time.Second)
	for {
		recs = waitExport(t, queues, ts.Acme, 7)
		for i, c := range recs[0] {
			col[c] = i
		}
		if recs[5][col["call_handle_time_count"]] == "1" && recs[2][col["call_handle_time_count"]] == "1" && recs[5][col["calls_abandoned"]] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the export never counted every call: %q", recs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Rows by queue id, then day: the odd queue's three days, then support's.
	if got := strings.Join(recs[5][:6], ","); got != "acme,queue,support,2026-03-02T00:00:00+01:00,2026-03-03T00:00:00+01:00,Europe/Berlin" {
		t.Errorf("support's row %q", got)
	}
	if got := recs[2][col["scope_id"]]; got != oddQueue {
		t.Errorf("the odd queue's row names %q, want %q", got, oddQueue)
	}
	want := map[string]string{"calls_offered": "2", "calls_answered": "1", "calls_abandoned": "1", "calls_answered_in_service_level": "1",
		"call_abandon_rate": "0.5", "call_service_level": "0.5", "call_speed_of_answer_mean_seconds": "10", "call_handle_time_sum_seconds": "100",
		"assigned": "0", "first_response_count": "0"}
	for name, w := range want {
		if got := recs[5][col[name]]; got != w {
			t.Errorf("support on March 2: %s = %q, want %q", name, got, w)
		}
	}
	if got := recs[4][col["calls_offered"]]; got != "0" {
		t.Errorf("support on March 1: calls_offered %q, want 0", got)
	}
}
