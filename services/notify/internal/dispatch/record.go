package dispatch

import (
	"context"
	"log/slog"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
)

// recordStage logs a group's batch as a delivery. A batch logged before (a flush that crashed
// after logging) goes on only while its delivery is pending and not being attempted here; one
// that is done already just lets the group go.
type recordStage struct {
	store *deliveries.Store
	bg    *backgroundStage
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
				return false, s.store.Taken(ctx, b)
			}
		}
		d.rec = rec
		return true, nil
	})
}

// releaseStage clears the group's outbox once its delivery is logged and its attempt started
// (which set the delivery's own timer): the delivery carries on from here, so the group can
// let go.
type releaseStage struct{ store *deliveries.Store }

func (s releaseStage) exec(ctx context.Context, _ *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		err := s.store.Taken(ctx, d.batch)
		return err == nil, err
	})
}
