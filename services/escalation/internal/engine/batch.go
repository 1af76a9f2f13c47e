package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/outbox"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// batch collects what handling a batch leaves for its end, to be done in one round trip each
// instead of one per ticket: the timers to plan and the published changes to clear.
type batch struct {
	outbox *outbox.Outbox
	timers Timers

	mu        sync.Mutex
	wakes     []timers.Timer
	published map[string][]escalationstore.Pending // by tenant
}

func (e *Engine) newBatch() *batch {
	return &batch{outbox: e.outbox, timers: e.timers, published: map[string][]escalationstore.Pending{}}
}

func (b *batch) wake(ts ...timers.Timer) {
	b.mu.Lock()
	b.wakes = append(b.wakes, ts...)
	b.mu.Unlock()
}

func (b *batch) done(tenant string, ps []escalationstore.Pending) {
	if len(ps) == 0 {
		return
	}
	b.mu.Lock()
	b.published[tenant] = append(b.published[tenant], ps...)
	b.mu.Unlock()
}

// settle publishes the escalation's unpublished changes and plans the timer it needs: its next
// raise, or a retry soon when publishing failed.
func (b *batch) settle(ctx context.Context, tenant string, rec *escalationstore.Record) {
	if rec == nil {
		return
	}
	published, due := b.outbox.Send(ctx, tenant, rec)
	b.done(tenant, published)
	if !rec.RaiseAt.IsZero() && (due.IsZero() || rec.RaiseAt.Before(due)) {
		due = rec.RaiseAt
	}
	if !due.IsZero() {
		b.wake(timers.Timer{ID: escalationTimer(tenant, rec.ID), Due: due, Trace: telemetry.Traceparent(ctx)})
	}
}

// finish plans the timers and clears the published changes.
func (b *batch) finish(ctx context.Context) error {
	var errs []error
	if len(b.wakes) > 0 {
		if err := b.timers.ScheduleEarlier(ctx, b.wakes); err != nil {
			errs = append(errs, fmt.Errorf("schedule timers: %w", err))
		}
	}
	if err := b.outbox.Clear(ctx, b.published); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
