package app

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// The operator's series on /metrics: deliveries by receiver and outcome, attempt latency in
// seconds from 1 ms to 60 s, dead letters by service and tenant, and the durable's lag.
func TestMetricsPage(t *testing.T) {
	h := newHook(t, 200, 400)
	s := newStack(t, fmt.Sprintf(`receivers:
  - name: hook
    webhook: {url: %q, secrets: [{env: TP_TEST_HOOK_SECRET}]}
route:
  receiver: hook
  group_by: ["..."]
  group_wait: 0s
`, h.srv.URL))
	r := s.run(t)
	c, page := r.HTTPClient(), r.AdminURL("/metrics")
	s.publish(t, change("T-1", "bad-rating", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1))
	waitFor(t, "the first delivery", func() bool {
		return servicetest.MetricSum(t, c, page, "notify_deliveries_total", "status")["delivered"] == 1
	})
	// The receiver answers 400 from now on: not retryable, dead-lettered at once.
	s.publish(t, change("T-2", "bad-rating", "billing", tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, 1))
	waitFor(t, "the dead letter", func() bool {
		return servicetest.MetricSum(t, c, page, "deadletter_messages_total", "service")["notify"] == 1
	})
	if got := servicetest.MetricSum(t, c, page, "deadletter_messages_total", "tenant"); got["acme"] != 1 {
		t.Errorf("deadletter_messages_total by tenant %v; want acme 1", got)
	}
	if got := servicetest.MetricSum(t, c, page, "notify_deliveries_total", "status"); got["delivered"] != 1 || got["failed"] != 1 {
		t.Errorf("notify_deliveries_total by status %v; want delivered 1, failed 1", got)
	}
	if got := servicetest.MetricSum(t, c, page, "notify_deliveries_total", "receiver"); got["hook"] != 2 {
		t.Errorf("notify_deliveries_total by receiver %v; want hook 2", got)
	}
	seconds := []string{"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf"}
	if got := servicetest.MetricBuckets(t, c, page, "notify_attempt_seconds"); !slices.Equal(got, seconds) {
		t.Errorf("notify_attempt_seconds buckets %v; want %v", got, seconds)
	}
	if got := servicetest.MetricSum(t, c, page, "notify_attempt_seconds_count", "receiver"); got["hook"] != 2 {
		t.Errorf("notify_attempt_seconds_count by receiver %v; want hook 2", got)
	}
	if _, ok := servicetest.MetricSum(t, c, page, "messaging_consumer_pending", "messaging_consumer_group_name")["notify"]; !ok {
		t.Error("messaging_consumer_pending has no series for the notify durable")
	}
}
