package dispatch

import (
	"context"
	"log/slog"
	"time"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
)

// receiverStage gives a delivery its receiver's sender from the routing in force. A delivery
// whose receiver is gone from the routing file or disabled by a 410 fails for good: settle
// records it.
type receiverStage struct {
	routing func() *Routing
	store   *deliveries.Store
	now     func() time.Time
	settle  stage[*delivery]
}

func (s receiverStage) exec(ctx context.Context, log *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		now := s.now()
		ss := s.routing().senders[d.rec.Receiver]
		if ss == nil {
			d.fail(deliveries.Attempt{At: now, Error: "receiver not configured"}, "receiver "+d.rec.Receiver+" is no longer in the routing file")
			_, err := s.settle.exec(ctx, log, []*delivery{d})
			return false, err
		}
		dis, err := s.store.IsDisabled(ctx, d.rec.Receiver, ss.fingerprint)
		if err != nil {
			return false, err
		}
		if dis != nil {
			d.fail(deliveries.Attempt{At: now, Error: "receiver disabled"}, "receiver disabled: "+dis.Reason)
			_, err := s.settle.exec(ctx, log, []*delivery{d})
			return false, err
		}
		d.sender = ss
		return true, nil
	})
}
