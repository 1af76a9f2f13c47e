package app

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// The operator's series on /metrics: events by tenant, source and outcome from the events API
// and the webhooks alike, webhook deliveries by tenant, and the publish latency of both in
// seconds from 1 ms to 60 s.
func TestMetricsPage(t *testing.T) {
	_, url := testenv.NATS(t)
	r := startWebhooks(t, url)
	body := "[" + event("m-1", "agent_message", `"public":true`) + "," + event("m-2", "customer_message", "") + "]"
	wantJSON(t, r.hook(t, "acme", "generic", body, signed("d-1", time.Now(), body)), 202, `{"accepted":["m-1","m-2"],"duplicates":0}`)
	wantJSON(t, r.hook(t, "acme", "generic", body, signed("d-2", time.Now(), body)), 202, `{"accepted":["m-1","m-2"],"duplicates":2}`)
	// A tenant outside the tenants file is never a label of its own.
	if got := r.hook(t, "nobody-we-know", "generic", body, signed("d-3", time.Now(), body)); got.status != http.StatusNotFound {
		t.Fatalf("webhook of an unknown tenant: %d %s; want 404", got.status, got.body)
	}
	if got := r.post(t, "acme", "["+event("m-3", "ticket_created", "")+","+event("m-1", "agent_message", `"public":true`)+"]"); got.status != http.StatusAccepted {
		t.Fatalf("POST: %d %s", got.status, got.body)
	}

	c, page := http.DefaultClient, r.AdminURL("/metrics")
	bySeries := map[string]float64{}
	for _, label := range []string{"tenant", "source", "outcome"} {
		for v, n := range servicetest.MetricSum(t, c, page, "ingest_events_total", label) {
			bySeries[label+"="+v] = n
		}
	}
	want := map[string]float64{"tenant=acme": 6, "source=generic": 4, "source=api": 2, "outcome=accepted": 3, "outcome=duplicate": 3}
	for k, v := range want {
		if bySeries[k] != v {
			t.Errorf("ingest_events_total %s = %v; want %v (all: %v)", k, bySeries[k], v, bySeries)
		}
	}
	if got := servicetest.MetricSum(t, c, page, "ingest_webhook_deliveries_total", "tenant"); got["acme"] != 2 || got["unknown"] != 1 || len(got) != 2 {
		t.Errorf("ingest_webhook_deliveries_total by tenant %v; want acme 2, unknown 1", got)
	}
	// The two webhooks and the API request, in one latency histogram.
	if got := servicetest.MetricSum(t, c, page, "ingest_publish_duration_seconds_count", "")[""]; got != 3 {
		t.Errorf("ingest_publish_duration_seconds_count %v; want 3", got)
	}
	seconds := []string{"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf"}
	if got := servicetest.MetricBuckets(t, c, page, "ingest_publish_duration_seconds"); !slices.Equal(got, seconds) {
		t.Errorf("ingest_publish_duration_seconds buckets %v; want %v", got, seconds)
	}
}
