package timers

import (
	"context"
	"errors"
	"time"
)

const (
	// maxBackoff bounds the wait between polls while Redis fails, so timers fire soon after it
	// is back.
	maxBackoff = 5 * time.Second
	// doneTimeout bounds the release of handled claims once Run's context has ended.
	doneTimeout = 5 * time.Second
)

// Run polls the queue every `every` (50ms when zero) until ctx ends, and passes what it claims to
// handle. When a shard filled its batch it polls again at once, so a burst drains at Redis's
// pace rather than one batch per tick. now is the clock (time.Now when nil).
//
// handle returns one error per claim, in order (a nil slice means all succeeded). Claims handled
// without error are released with Done; the others stay leased and are redelivered, to this or
// another replica, once their lease expires. handle gets ctx itself: when ctx ends mid-handle,
// whatever handle did not finish is redelivered after the lease, which is also what happens when
// the process dies. The successful claims of that last call are still released (with a short
// deadline of its own), since their work is done and a redelivery would only repeat it.
//
// Redis errors are logged and retried with backoff, never returned; Run returns nil once ctx
// ends.
func (q *Queue) Run(ctx context.Context, every time.Duration, now func() time.Time, handle func(ctx context.Context, cs []Claimed) []error) error {
	if handle == nil {
		return errors.New("timers: Run needs a handle function")
	}
	if every <= 0 {
		every = 50 * time.Millisecond
	}
	if now == nil {
		now = time.Now
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	backoff := every
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		wait := every
		t := now()
		cs, full, err := q.claim(ctx, t)
		if err != nil {
			if ctx.Err() != nil && len(cs) == 0 {
				return nil
			}
			q.log.WarnContext(ctx, "claim timers failed; retrying", "err", err, "retry_in", backoff)
			wait = backoff
			backoff = min(backoff*2, maxBackoff)
			full = false
		} else {
			backoff = every
		}
		if len(cs) > 0 {
			q.handle(ctx, t, cs, handle)
		}
		if full && ctx.Err() == nil {
			wait = 0
		}
		timer.Reset(wait)
	}
}

// handle runs one batch of claims through h and releases the successful ones.
func (q *Queue) handle(ctx context.Context, claimedAt time.Time, cs []Claimed, h func(context.Context, []Claimed) []error) {
	if q.onFire != nil {
		for _, c := range cs {
			q.onFire(claimedAt.Sub(c.Due))
		}
	}
	errs := h(ctx, cs)
	done := cs
	if errs != nil {
		if len(errs) != len(cs) {
			q.log.ErrorContext(ctx, "timer handler returned a wrong number of results; its claims will be redelivered",
				"claims", len(cs), "results", len(errs))
			return
		}
		done = make([]Claimed, 0, len(cs))
		for i, err := range errs {
			if err == nil {
				done = append(done, cs[i])
			}
		}
	}
	if len(done) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), doneTimeout)
	defer cancel()
	if err := q.Done(dctx, done); err != nil {
		// Not fatal: the claims are redelivered after their lease and handled again.
		q.log.WarnContext(ctx, "release handled timers failed; they will be redelivered", "err", err, "claims", len(done))
	}
}
