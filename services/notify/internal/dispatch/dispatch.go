// Package dispatch is notify's work: it routes each escalation change to its receivers, records
// why a notification is not sent (silence, quiet hours, inhibition, disabled receiver), collects
// the rest into groups, sends each group as one message when it is due, and retries a failed
// message with backoff and jitter until the receiver's deadline, after which it goes to the
// DEADLETTER stream with every attempt. Nothing is dropped silently: every outcome is in the
// delivery log before the change is acknowledged or the timer released. What Redis forgets (it
// may lose its latest writes) the delivered record, outside Redis, still knows: each attempt
// leaves out the changes the receiver got already, and each send is recorded there (once.go).
//
// Each of those jobs is a stage (pipeline.go): a small value that takes the items in hand and
// passes on those the next stage should see. The Dispatcher only assembles the stages and feeds
// them: escalation changes into the routing stages, and due timers (group sends, reminders,
// retries) into the sending stages.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// Timers is the due-queue of group sends and retries.
type Timers interface {
	Schedule(ctx context.Context, id string, due time.Time) error
	ScheduleEarlier(ctx context.Context, ts []timers.Timer) error
	Cancel(ctx context.Context, ids ...string) error
}

// Options tune retries.
type Options struct {
	// BackoffBase is the first retry's delay (doubling per attempt, with jitter) and BackoffMax
	// its cap.
	BackoffBase, BackoffMax time.Duration
	// Busy is how long a delivery waits when its receiver has its maximum in flight.
	Busy time.Duration
	// Metrics, when set, counts attempts, outcomes and suppressions.
	Metrics *Metrics
}

// Dispatcher routes, groups and delivers.
type Dispatcher struct {
	store   *deliveries.Store
	timers  Timers
	routing atomic.Pointer[Routing]
	now     func() time.Time
	opts    Options
	log     *slog.Logger

	// attempts starts an attempt of a logged delivery; batches logs a group's batch as a
	// delivery and starts it; bg runs the attempts; test makes test sends.
	attempts stages[*delivery]
	batches  stages[*delivery]
	bg       *backgroundStage
	send     sendStage
	test     stages[*delivery]
}

// New returns a dispatcher using r until SetRouting swaps it.
func New(store *deliveries.Store, once Delivered, tm Timers, pub Publisher, r *Routing, now func() time.Time, opts Options, log *slog.Logger) *Dispatcher {
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 5 * time.Minute
	}
	if opts.Busy <= 0 {
		opts.Busy = 250 * time.Millisecond
	}
	if opts.Metrics == nil {
		opts.Metrics, _ = NewMetrics(nil)
	}
	d := &Dispatcher{store: store, timers: tm, now: now, opts: opts, log: log, send: sendStage{now: now}}
	d.routing.Store(r)

	settle := stages[*delivery]{deadLetterStage{pub: pub}, outcomeStage{store: store, timers: tm, metrics: opts.Metrics, now: now}}
	d.bg = &backgroundStage{next: stages[*delivery]{
		rateStage{},
		composeStage{now: now, settle: settle},
		d.send,
		retryStage{store: store, metrics: opts.Metrics, backoff: backoff{base: opts.BackoffBase, max: opts.BackoffMax}},
		markStage{record: once, metrics: opts.Metrics},
		settle,
	}}
	d.attempts = stages[*delivery]{
		receiverStage{routing: d.Routing, store: store, now: now, settle: settle},
		onceStage{record: once, store: store, timers: tm, metrics: opts.Metrics, now: now},
		slotStage{timers: tm, busy: opts.Busy, now: now},
		leaseStage{timers: tm, now: now},
		d.bg,
	}
	d.test = stages[*delivery]{slotStage{refuse: true}, rateStage{refuse: true}, d.send}
	d.batches = stages[*delivery]{
		recordStage{store: store, bg: d.bg},
		branch[*delivery]{d.attempts},
		remindStage{timers: tm},
		releaseStage{store: store},
	}
	return d
}

// SetRouting swaps in a reloaded routing file.
func (d *Dispatcher) SetRouting(r *Routing) { d.routing.Store(r) }

// Routing is the routing in force.
func (d *Dispatcher) Routing() *Routing { return d.routing.Load() }

// Handle routes a batch of changes. It returns once every outcome is recorded: the change is in
// its groups (whose sends are planned) or logged as suppressed.
func (d *Dispatcher) Handle(ctx context.Context, changes []*tpv1.EscalationChange) error {
	r := d.routing.Load()
	now := d.now()
	// One batch, one routing file, one read of each tenant's open escalations.
	route := stages[*notice]{
		newOpenStage(d.store, len(r.Config.Inhibits) > 0),
		routeStage{root: r.Config.Root},
		suppressStage{store: d.store, metrics: d.opts.Metrics, muters: []muter{
			silences{r.Config}, quietHours{}, inhibitions{r.Config}, disabledReceivers{d.store, r},
		}},
		groupStage{store: d.store},
	}
	var wakes []timers.Timer
	var errs []error
	for _, c := range changes {
		planned, err := route.exec(ctx, d.log, []*notice{newNotice(c, now)})
		if err != nil {
			errs = append(errs, err)
		}
		for _, n := range planned {
			wakes = append(wakes, n.wake)
		}
	}
	if len(wakes) > 0 {
		if err := d.timers.ScheduleEarlier(ctx, wakes); err != nil {
			errs = append(errs, fmt.Errorf("plan group sends: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Fire handles due timers: a group's send, a reminder or a delivery's retry. Sends run in the
// background so a slow receiver never holds up the timers of others; each send's timer is first
// pushed past its attempt's timeout, so a replica that dies mid-send leaves it to be retried.
func (d *Dispatcher) Fire(ctx context.Context, cs []timers.Claimed) []error {
	errs := make([]error, len(cs))
	for i, c := range cs {
		kind, rest, _ := strings.Cut(c.ID, sep)
		tenant, ref, ok := strings.Cut(rest, sep)
		switch {
		case !ok:
			d.log.Error("dropping a timer with a malformed id", "id", c.ID)
		case kind == "g":
			errs[i] = d.flush(ctx, tenant, ref)
		case kind == "d":
			errs[i] = d.retry(ctx, tenant, ref)
		case kind == "r":
			errs[i] = d.remind(ctx, tenant, ref)
		default:
			d.log.Error("dropping a timer of unknown kind", "id", c.ID)
		}
	}
	return errs
}

// flush turns a group's pending changes into a logged delivery and starts its first attempt.
func (d *Dispatcher) flush(ctx context.Context, tenant, gid string) error {
	now := d.now()
	b, err := d.store.Take(ctx, tenant, gid, now)
	if err != nil || b == nil {
		return err
	}
	return d.deliver(ctx, b, now)
}

// deliver runs a batch taken from its group at now through the sending stages.
func (d *Dispatcher) deliver(ctx context.Context, b *deliveries.Batch, now time.Time) error {
	_, err := d.batches.exec(ctx, d.log, []*delivery{{batch: b, taken: now}})
	return err
}

// retry attempts a logged delivery that is still pending.
func (d *Dispatcher) retry(ctx context.Context, tenant, id string) error {
	tid := deliveryTimer(tenant, id)
	if d.bg.busy(tid) {
		return d.timers.Schedule(ctx, tid, d.now().Add(d.opts.Busy))
	}
	rec, err := d.store.Get(ctx, tenant, id)
	if errors.Is(err, deliveries.ErrNotFound) {
		d.log.Warn("delivery gone from the log (trimmed); not retried", "tenant", tenant, "delivery", id)
		return nil
	}
	if err != nil || rec.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING {
		return err
	}
	return d.start(ctx, rec)
}

// start begins an attempt of a logged delivery in the background, unless the receiver is at
// its concurrency cap.
func (d *Dispatcher) start(ctx context.Context, rec *deliveries.Record) error {
	_, err := d.attempts.exec(ctx, d.log, []*delivery{{rec: rec}})
	return err
}

// Wait waits for the attempts in flight (on shutdown).
func (d *Dispatcher) Wait() { d.bg.wait() }
