package dispatch

import (
	"context"
	"log/slog"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// outcomeStage records an attempt and its verdict in the delivery log and sets the delivery's
// timer by it: cancelled once the delivery is delivered or failed, moved to the retry
// otherwise.
type outcomeStage struct {
	store   *deliveries.Store
	timers  Timers
	metrics *Metrics
	now     func() time.Time
}

func (s outcomeStage) exec(ctx context.Context, _ *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		rec := d.rec
		switch d.status {
		case tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED:
			s.metrics.outcome(rec.Receiver, "delivered")
			if err := s.store.Attempted(ctx, rec.Tenant, rec.ID, d.attempt, d.status, "", d.attempt.At); err != nil {
				return false, err
			}
			return true, s.timers.Cancel(ctx, d.timer())
		case tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED:
			if err := s.store.Attempted(ctx, rec.Tenant, rec.ID, d.attempt, d.status, d.reason, s.now()); err != nil {
				return false, err
			}
			s.metrics.outcome(rec.Receiver, "failed")
			return true, s.timers.Cancel(ctx, d.timer())
		default:
			if err := s.store.Attempted(ctx, rec.Tenant, rec.ID, d.attempt, d.status, d.reason, d.attempt.At); err != nil {
				return false, err
			}
			// The retry continues the trace of this attempt's send.
			return true, s.timers.ScheduleMany(ctx, []timers.Timer{{ID: d.timer(), Due: d.next, Trace: telemetry.Traceparent(ctx)}})
		}
	})
}
