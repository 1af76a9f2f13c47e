package dispatch

import (
	"context"
	"log/slog"
	"sync"
)

// backgroundStage runs the attempt's stages in the background, so a slow receiver never holds
// up the timers of others. An attempt outlives the caller's context (it is bounded by its own
// timeout), holds its concurrency slot until it is done, and is known as in flight meanwhile.
// Its errors are logged: the delivery's timer is still set past the attempt, so it comes back.
type backgroundStage struct {
	next     stage[*delivery]
	inflight sync.Map // delivery timer ids being attempted on this replica
	sends    sync.WaitGroup
}

func (s *backgroundStage) exec(ctx context.Context, log *slog.Logger, ds []*delivery) ([]*delivery, error) {
	for _, d := range ds {
		tid, release := d.timer(), d.release
		d.release = nil
		s.inflight.Store(tid, true)
		s.sends.Add(1)
		go func() {
			defer s.sends.Done()
			defer s.inflight.Delete(tid)
			defer release()
			if _, err := s.next.exec(context.WithoutCancel(ctx), log, []*delivery{d}); err != nil {
				log.Warn("record delivery attempt", "delivery", d.rec.ID, "err", err)
			}
		}()
	}
	return ds, nil
}

// busy reports whether the delivery with this timer is being attempted on this replica.
func (s *backgroundStage) busy(tid string) bool {
	_, ok := s.inflight.Load(tid)
	return ok
}

// wait waits for the attempts in flight.
func (s *backgroundStage) wait() { s.sends.Wait() }
