package dispatch

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
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
// result, and the attempt as the delivery log has it. Each attempt is a span, parent of the
// receiver's HTTP request or SMTP session.
type sendStage struct {
	now    func() time.Time
	tracer trace.Tracer
}

func (s sendStage) exec(ctx context.Context, _ *slog.Logger, ds []*delivery) ([]*delivery, error) {
	for _, d := range ds {
		actx, span := s.tracer.Start(ctx, "deliver "+d.note.Receiver, trace.WithAttributes(telemetry.AttrReceiver.String(d.note.Receiver),
			attribute.Int("notify.changes", len(d.note.Changes)), attribute.Bool("notify.reminder", d.note.Reminder)))
		if d.rec != nil {
			span.SetAttributes(telemetry.AttrTenant.String(d.rec.Tenant), attribute.String("notify.delivery_id", d.rec.ID),
				attribute.Int("notify.attempt", len(d.rec.Attempts)+1))
		}
		d.result = d.sender.sender.Send(actx, d.note)
		span.SetAttributes(attribute.Int("notify.status", d.result.Status), attribute.Bool("notify.retryable", d.result.Retryable))
		if d.result.Err != nil {
			// The sender's error names the step and status, never the message or a secret.
			span.SetStatus(codes.Error, d.result.Err.Error())
		}
		span.End()
		d.attempt = deliveries.Attempt{At: s.now(), Status: d.result.Status, Latency: d.result.Latency}
		if d.result.Err != nil {
			d.attempt.Error = d.result.Err.Error()
		}
	}
	return ds, nil
}
