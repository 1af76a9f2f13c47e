package dispatch

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Metrics counts what the dispatcher does, by receiver.
type Metrics struct {
	attempts    metric.Int64Counter
	outcomes    metric.Int64Counter
	suppressed  metric.Int64Counter
	latency     metric.Float64Histogram
	redelivered metric.Int64Counter
	unrecorded  metric.Int64Counter
}

// NewMetrics registers the counters on meter; a nil meter counts nothing (tests).
func NewMetrics(meter metric.Meter) (*Metrics, error) {
	if meter == nil {
		meter = noop.NewMeterProvider().Meter("notify")
	}
	m := &Metrics{}
	var err error
	if m.attempts, err = meter.Int64Counter("notify_attempts_total", metric.WithDescription("Delivery attempts, by receiver and result (ok, retry, failed, gone).")); err != nil {
		return nil, err
	}
	if m.outcomes, err = meter.Int64Counter("notify_deliveries_total", metric.WithDescription("Deliveries finished, by receiver and status (delivered, failed).")); err != nil {
		return nil, err
	}
	if m.suppressed, err = meter.Int64Counter("notify_suppressed_total", metric.WithDescription("Notifications not sent on purpose, by receiver and reason (silence, quiet_hours, inhibited, disabled).")); err != nil {
		return nil, err
	}
	if m.latency, err = meter.Float64Histogram("notify_attempt_seconds", metric.WithUnit("s"), metric.WithDescription("Time of one delivery attempt, by receiver.")); err != nil {
		return nil, err
	}
	if m.redelivered, err = meter.Int64Counter("notify_redelivery_suppressed_total", metric.WithDescription("Changes not sent to a receiver because the delivered record says it got them already (a replay after Redis lost writes), by receiver.")); err != nil {
		return nil, err
	}
	if m.unrecorded, err = meter.Int64Counter("notify_delivered_record_failures_total", metric.WithDescription("Deliveries sent but not written to the delivered record (a Redis loss could then repeat them), by receiver.")); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) attempt(receiver, result string, seconds float64) {
	ctx := context.Background()
	m.attempts.Add(ctx, 1, metric.WithAttributes(attribute.String("receiver", receiver), attribute.String("result", result)))
	m.latency.Record(ctx, seconds, metric.WithAttributes(attribute.String("receiver", receiver)))
}

func (m *Metrics) outcome(receiver, status string) {
	m.outcomes.Add(context.Background(), 1, metric.WithAttributes(attribute.String("receiver", receiver), attribute.String("status", status)))
}

func (m *Metrics) suppress(receiver, reason string) {
	m.suppressed.Add(context.Background(), 1, metric.WithAttributes(attribute.String("receiver", receiver), attribute.String("reason", reason)))
}

func (m *Metrics) redelivery(receiver string, changes int) {
	m.redelivered.Add(context.Background(), int64(changes), metric.WithAttributes(attribute.String("receiver", receiver)))
}

func (m *Metrics) recordFailed(receiver string) {
	m.unrecorded.Add(context.Background(), 1, metric.WithAttributes(attribute.String("receiver", receiver)))
}
