package dispatch

import (
	"context"
	"log/slog"
)

// rateStage spaces a receiver's attempts by its rate limit and burst.
type rateStage struct{}

func (rateStage) exec(ctx context.Context, log *slog.Logger, ds []*delivery) ([]*delivery, error) {
	for _, d := range ds {
		if err := d.sender.limiter.Wait(ctx); err != nil {
			log.Warn("rate limiter", "receiver", d.rec.Receiver, "err", err)
		}
	}
	return ds, nil
}
