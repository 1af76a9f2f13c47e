package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
)

// retryStage judges an attempt: delivered; retried with backoff and jitter while that stays
// within the receiver's deadline; failed for good when the deadline would pass or the error
// is not retryable. An endpoint that is gone (410) also disables its receiver until its
// address changes.
type retryStage struct {
	store   *deliveries.Store
	metrics *Metrics
	backoff backoff
}

func (s retryStage) exec(ctx context.Context, log *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		res, a, rec := d.result, d.attempt, d.rec
		result := "failed"
		switch {
		case res.Err == nil:
			result = "ok"
		case res.Gone:
			result = "gone"
		case res.Retryable:
			result = "retry"
		}
		s.metrics.attempt(rec.Receiver, result, res.Latency.Seconds())
		tries := len(rec.Attempts) + 1
		switch {
		case res.Err == nil:
			d.status = tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED
		case res.Gone:
			reason := fmt.Sprintf("endpoint gone (%d): receiver %s disabled until its address changes", res.Status, rec.Receiver)
			log.Error("receiver disabled", "receiver", rec.Receiver, "status", res.Status, "err", res.Err)
			d.fail(a, reason)
			// Failed either way: the delivery is settled even if the receiver could not be
			// disabled.
			return true, s.store.Disable(ctx, rec.Receiver, deliveries.Disabled{Reason: reason, At: a.At, Fingerprint: d.sender.fingerprint})
		case res.Retryable:
			next := a.At.Add(s.backoff.wait(tries))
			deadline := rec.Created.Add(d.sender.cfg.Limits.Deadline)
			if next.After(deadline) {
				d.fail(a, fmt.Sprintf("deadline %s passed after %d attempts; last: %s", d.sender.cfg.Limits.Deadline, tries, a.Error))
				break
			}
			d.status, d.next = tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING, next
			d.reason = fmt.Sprintf("attempt %d failed (%s); next at %s", tries, a.Error, next.UTC().Format(time.RFC3339))
		default:
			d.fail(a, fmt.Sprintf("not retryable: %s", a.Error))
		}
		return true, nil
	})
}

// backoff is the wait before attempt n+1: exponential from base, capped at max, with "equal
// jitter" (half fixed, half random), so retries of many deliveries spread out instead of
// arriving together.
type backoff struct{ base, max time.Duration }

func (b backoff) wait(n int) time.Duration {
	w := b.base << min(n-1, 20)
	if w <= 0 || w > b.max {
		w = b.max
	}
	return w/2 + rand.N(w/2+1)
}
