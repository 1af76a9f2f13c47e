package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// recordStage logs a group's batch as a delivery. A batch logged before (a flush that crashed
// after logging) goes on only while its delivery is pending and not being attempted here; one
// that is done already just lets the group go.
type recordStage struct {
	store  *deliveries.Store
	bg     *backgroundStage
	timers Timers
	now    func() time.Time
}

func (s recordStage) exec(ctx context.Context, _ *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		b := d.batch
		rec := deliveries.NewRecord(b.Tenant, b.DeliveryID(), b.Receiver, b.Key, b.GroupLabels, b.Changes, b.Data, d.taken)
		rec.Reminder = b.Reminder
		created, err := s.store.Create(ctx, rec)
		if err != nil {
			return false, err
		}
		if !created {
			if rec, err = s.store.Get(ctx, b.Tenant, rec.ID); err != nil {
				return false, err
			}
			if s.bg.busy(deliveryTimer(b.Tenant, rec.ID)) || rec.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING {
				return false, release(ctx, s.store, s.timers, s.now, b)
			}
		}
		d.rec = rec
		return true, nil
	})
}

// releaseStage clears the group's outbox once its delivery is logged and its attempt started
// (which set the delivery's own timer): the delivery carries on from here, so the group can
// let go.
type releaseStage struct {
	store  *deliveries.Store
	timers Timers
	now    func() time.Time
}

func (s releaseStage) exec(ctx context.Context, _ *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		err := release(ctx, s.store, s.timers, s.now, d.batch)
		return err == nil, err
	})
}

// release clears a batch's outbox and plans the send of the changes still waiting in its group:
// without it, changes that came while a crashed flush's outbox was being sent again would wait
// for good, as only a group's first pending change plans its send. Found by the chaos suite.
func release(ctx context.Context, store *deliveries.Store, tm Timers, now func() time.Time, b *deliveries.Batch) error {
	w, err := store.Taken(ctx, b)
	if err != nil || w.Pending == 0 {
		return err
	}
	due := w.Due
	if t := now(); due.Before(t) {
		due = t
	}
	if err := tm.ScheduleEarlier(ctx, []timers.Timer{{ID: groupTimer(b.Tenant, b.GroupID), Due: due, Trace: telemetry.Traceparent(ctx)}}); err != nil {
		return fmt.Errorf("plan the send of group %s: %w", b.GroupID, err)
	}
	return nil
}
