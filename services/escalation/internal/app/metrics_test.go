package app

import (
	"slices"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"
)

var secondsBuckets = []string{"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf"}

// The operator's series on /metrics: open escalations by rule and level, timer lateness in
// seconds from 1 ms to 60 s, and the lag of both durables.
func TestMetricsPage(t *testing.T) {
	prev := openEvery
	openEvery = 50 * time.Millisecond
	t.Cleanup(func() { openEvery = prev })
	s := newStack(t, "")
	r := s.run(t, s.config())
	page := r.AdminURL("/metrics")
	c := r.HTTPClient()

	// Breached a minute ago: triggered at level 1 and raised to level 2 ten minutes later.
	s.publish(t, createdAgo("M-1", s.clock.now(), time.Hour+time.Minute), createdAgo("M-2", s.clock.now(), time.Hour+time.Minute))
	waitFor(t, "two open escalations at level 1", func() bool {
		return servicetest.MetricSum(t, c, page, "escalation_open", "level")["1"] == 2
	})
	if got := servicetest.MetricSum(t, c, page, "escalation_open", "rule"); got["sla-first-response"] != 2 {
		t.Errorf("escalation_open by rule %v; want sla-first-response 2", got)
	}
	s.clock.advance(10 * time.Minute)
	waitFor(t, "both raised to level 2, none left at level 1", func() bool {
		got := servicetest.MetricSum(t, c, page, "escalation_open", "level")
		return got["2"] == 2 && got["1"] == 0
	})
	if _, ok := servicetest.MetricSum(t, c, page, "escalation_open", "level")["1"]; !ok {
		t.Error("level 1's series disappeared instead of reading 0")
	}

	if got := servicetest.MetricBuckets(t, c, page, "escalation_timer_delay_seconds"); !slices.Equal(got, secondsBuckets) {
		t.Errorf("escalation_timer_delay_seconds buckets %v; want %v", got, secondsBuckets)
	}
	lag := servicetest.MetricSum(t, c, page, "messaging_consumer_pending", "messaging_consumer_group_name")
	if _, ok := lag["escalation"]; !ok {
		t.Errorf("messaging_consumer_pending by durable %v; want escalation's", lag)
	}
	if _, ok := lag["escalation-kpi"]; !ok {
		t.Errorf("messaging_consumer_pending by durable %v; want escalation-kpi's", lag)
	}
	age := servicetest.MetricSum(t, c, page, "messaging_consumer_oldest_unacked_age_seconds", "messaging_consumer_group_name")
	// Read within seconds of the events' arrival (and cached for consumerlag.MinInterval).
	if v, ok := age["escalation"]; !ok || v < 0 || v > 30 {
		t.Errorf("escalation's oldest unacked age %v (present %v); want 0 to 30 s", v, ok)
	}
}
