// Package tick runs periodic background work (snapshots, file reloads, gauges) until its context
// ends, so each job states only what it does on a tick.
package tick

import (
	"context"
	"time"
)

// Every calls f every interval, the first time one interval from now, until ctx ends; then it
// returns nil. A call that takes longer than the interval is followed at once by the next one,
// never by a burst of the ticks it missed.
func Every(ctx context.Context, every time.Duration, f func(ctx context.Context)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		f(ctx)
	}
}

// NowAndEvery calls f at once, then as Every does.
func NowAndEvery(ctx context.Context, every time.Duration, f func(ctx context.Context)) error {
	f(ctx)
	return Every(ctx, every, f)
}
