package dispatch

import (
	"context"
	"log/slog"
	"time"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
)

// composeStage turns a logged delivery into its message. Changes that no longer decode fail
// the delivery for good.
type composeStage struct {
	now    func() time.Time
	settle stage[*delivery]
}

func (s composeStage) exec(ctx context.Context, log *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		rec := d.rec
		changes, err := rec.DecodedChanges()
		if err != nil {
			d.fail(deliveries.Attempt{At: s.now(), Error: err.Error()}, "undecodable changes")
			// Should that fail to be recorded, the delivery stays pending and its timer brings it
			// back to fail again.
			_, _ = s.settle.exec(ctx, log, []*delivery{d})
			return false, nil
		}
		// The id is the same for every attempt of a delivery (the signed webhook's webhook-id).
		d.note = &receiver.Notification{ID: rec.Tenant + "." + rec.ID, Receiver: rec.Receiver, GroupKey: rec.GroupKey,
			GroupLabels: rec.GroupLabels, Changes: changes, At: s.now(), Reminder: rec.Reminder}
		return true, nil
	})
}

// sendStage makes one attempt: it hands the message to the receiver's sender and keeps the
// result, and the attempt as the delivery log has it.
type sendStage struct{ now func() time.Time }

func (s sendStage) exec(ctx context.Context, _ *slog.Logger, ds []*delivery) ([]*delivery, error) {
	for _, d := range ds {
		d.result = d.sender.sender.Send(ctx, d.note)
		d.attempt = deliveries.Attempt{At: s.now(), Status: d.result.Status, Latency: d.result.Latency}
		if d.result.Err != nil {
			d.attempt.Error = d.result.Err.Error()
		}
	}
	return ds, nil
}
