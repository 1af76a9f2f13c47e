package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// rateStage spaces a receiver's attempts by its rate limit and burst. With refuse (test sends,
// which someone is waiting for) an attempt the limit would delay is not made: it fails with
// ErrLimited, and gives back its concurrency slot.
type rateStage struct{ refuse bool }

func (s rateStage) exec(ctx context.Context, log *slog.Logger, ds []*delivery) ([]*delivery, error) {
	if s.refuse {
		return each(ds, func(d *delivery) (bool, error) {
			r := d.sender.limiter.Reserve()
			wait := r.Delay()
			if wait == 0 {
				return true, nil
			}
			r.Cancel()
			if d.release != nil {
				d.release()
				d.release = nil
			}
			l := d.sender.cfg.Limits
			return false, fmt.Errorf("%w: receiver %q is at its rate limit (%g per second, burst %d); try again in %v",
				ErrLimited, d.sender.cfg.Name, l.RatePerSecond, max(l.Burst, 1), wait.Round(time.Millisecond))
		})
	}
	for _, d := range ds {
		if err := d.sender.limiter.Wait(ctx); err != nil {
			log.Warn("rate limiter", "receiver", d.rec.Receiver, "err", err)
		}
	}
	return ds, nil
}
