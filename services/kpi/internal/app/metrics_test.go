package app

import (
	"slices"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// The operator's series on /metrics: batch write latency in seconds (1 ms to 60 s, where the
// SDK's default bounds 0, 5, 10 ... 10000 put every batch in the first bucket), batch sizes 1 to
// 1000, events written, and the durable's lag.
func TestMetricsPage(t *testing.T) {
	s := newStack(t)
	js := ticketsJS(t, s)
	ts := servicetest.WriteTenants(t, nil)
	r := runKPI(t, s, ts, nil)
	defer r.Stop()
	client := tpv1.NewKpiServiceClient(r.DialAs(ts.Acme))
	start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	publishEvents(t, js, jsonEvents("T-1", start))
	waitKpis(t, client, "acme", window(start, start.Add(24*time.Hour)), func(k *tpv1.Kpis) bool { return k.GetCsatCount() == 1 })

	c, page := r.HTTPClient(), r.AdminURL("/metrics")
	seconds := []string{"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf"}
	if got := servicetest.MetricBuckets(t, c, page, "kpi_batch_write_seconds"); !slices.Equal(got, seconds) {
		t.Errorf("kpi_batch_write_seconds buckets %v; want %v", got, seconds)
	}
	sizes := []string{"1", "2", "5", "10", "25", "50", "100", "250", "500", "1000", "+Inf"}
	if got := servicetest.MetricBuckets(t, c, page, "kpi_batch_size"); !slices.Equal(got, sizes) {
		t.Errorf("kpi_batch_size buckets %v; want %v", got, sizes)
	}
	// A local Redis writes a batch well within a second: not all of them in the +Inf bucket, nor
	// (as with the old bounds) all in the first.
	n := servicetest.MetricSum(t, c, page, "kpi_batch_write_seconds_count", "")[""]
	if le := servicetest.MetricSum(t, c, page, "kpi_batch_write_seconds_bucket", "le"); n < 1 || le["1"] != n {
		t.Errorf("kpi_batch_write_seconds: %v batches, %v of them within 1 s; want at least one, all within 1 s", n, le["1"])
	}
	if got := servicetest.MetricSum(t, c, page, "kpi_events_total", "")[""]; got != 5 {
		t.Errorf("kpi_events_total %v; want 5", got)
	}
	lag := servicetest.MetricSum(t, c, page, "messaging_consumer_pending", "messaging_consumer_group_name")
	if v, ok := lag["kpi"]; !ok || v != 0 {
		t.Errorf("kpi's pending messages %v (present %v); want 0 once it is caught up", v, ok)
	}
	for _, name := range []string{"messaging_consumer_ack_pending", "messaging_consumer_redelivered", "messaging_consumer_oldest_unacked_age_seconds"} {
		if _, ok := servicetest.MetricSum(t, c, page, name, "messaging_consumer_group_name")["kpi"]; !ok {
			t.Errorf("%s has no series for the kpi durable", name)
		}
	}
}
