package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// slotStage takes one of the receiver's concurrency slots for the attempt. A receiver with its
// maximum in flight makes the delivery wait `busy`, without an attempt; with refuse (test
// sends, which have no timer to wait on) it fails with ErrLimited instead.
type slotStage struct {
	timers Timers
	busy   time.Duration
	now    func() time.Time
	refuse bool
}

func (s slotStage) exec(ctx context.Context, _ *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		slots := d.sender.slots
		select {
		case slots <- struct{}{}:
			d.release = func() { <-slots }
			return true, nil
		default:
			if s.refuse {
				return false, fmt.Errorf("%w: receiver %q has its maximum of %d attempts in flight; try again shortly",
					ErrLimited, d.sender.cfg.Name, cap(slots))
			}
			return false, s.timers.Schedule(ctx, d.timer(), s.now().Add(s.busy))
		}
	})
}

// leaseStage pushes the delivery's timer past the time its attempt could take: should this
// replica die mid-send, the timer brings the delivery back to be retried.
type leaseStage struct {
	timers Timers
	now    func() time.Time
}

func (s leaseStage) exec(ctx context.Context, _ *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		if err := s.timers.Schedule(ctx, d.timer(), s.now().Add(d.sender.cfg.Limits.Timeout+5*time.Second)); err != nil {
			d.release()
			return false, err
		}
		return true, nil
	})
}
