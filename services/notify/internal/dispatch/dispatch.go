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

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// Timers is the due-queue of group sends and retries.
type Timers interface {
	Schedule(ctx context.Context, id string, due time.Time) error
	ScheduleMany(ctx context.Context, ts []timers.Timer) error
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
	// Tracer traces the routing of each change, each timer's firing and each attempt; nil
	// traces nothing.
	Tracer trace.Tracer
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
	if opts.Tracer == nil {
		opts.Tracer = noop.NewTracerProvider().Tracer("")
	}
	d := &Dispatcher{store: store, timers: tm, now: now, opts: opts, log: log, send: sendStage{now: now, tracer: opts.Tracer}}
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
		recordStage{store: store, bg: d.bg, timers: tm, now: now},
		branch[*delivery]{d.attempts},
		remindStage{timers: tm},
		releaseStage{store: store, timers: tm, now: now},
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
	return d.HandleTraced(ctx, changes, nil)
}

// HandleTraced is Handle with the trace context each change was published with (traces[i] is
// changes[i]'s): each change's routing continues its trace, and so does its group's send.
func (d *Dispatcher) HandleTraced(ctx context.Context, changes []*tpv1.EscalationChange, traces []trace.SpanContext) error {
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
	for i, c := range changes {
		rctx := ctx
		opts := []trace.SpanStartOption{trace.WithAttributes(telemetry.AttrTenant.String(c.GetEscalation().GetTenant()),
			telemetry.AttrRule.String(c.GetEscalation().GetRule()), attribute.String("escalation.id", c.GetEscalation().GetId()),
			attribute.String("escalation.change", c.GetKind().String()))}
		if len(traces) == len(changes) && traces[i].IsValid() {
			rctx = trace.ContextWithRemoteSpanContext(ctx, traces[i])
			opts = append(opts, trace.WithLinks(trace.LinkFromContext(ctx)))
		}
		rctx, span := d.opts.Tracer.Start(rctx, "route change", opts...)
		planned, err := route.exec(rctx, d.log, []*notice{newNotice(c, now)})
		if err != nil {
			errs = append(errs, err)
			span.RecordError(err)
			span.SetStatus(codes.Error, "routing failed")
		}
		span.SetAttributes(attribute.Int("notify.groups_planned", len(planned)))
		span.End()
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
		if !ok {
			d.log.Error("dropping a timer with a malformed id", "id", c.ID)
			continue
		}
		tctx, span := d.startTimer(ctx, c, kind, tenant)
		switch kind {
		case "g":
			errs[i] = d.flush(tctx, tenant, ref)
		case "d":
			errs[i] = d.retry(tctx, tenant, ref)
		case "r":
			errs[i] = d.remind(tctx, tenant, ref)
		default:
			d.log.Error("dropping a timer of unknown kind", "id", c.ID)
		}
		if errs[i] != nil {
			span.RecordError(errs[i])
			span.SetStatus(codes.Error, "failed")
		}
		span.End()
	}
	return errs
}

// startTimer starts the span of a timer's firing: a child of the trace that planned it (a
// change's routing), linked to it, with how late it fired.
func (d *Dispatcher) startTimer(ctx context.Context, c timers.Claimed, kind, tenant string) (context.Context, trace.Span) {
	name := map[string]string{"g": "send group", "d": "retry delivery", "r": "remind"}[kind]
	if name == "" {
		name = "timer"
	}
	opts := []trace.SpanStartOption{trace.WithAttributes(telemetry.AttrTenant.String(tenant),
		attribute.String("timer.due", c.Due.UTC().Format(time.RFC3339Nano)), attribute.Float64("timer.lateness_seconds", d.now().Sub(c.Due).Seconds()))}
	if planner := telemetry.SpanContextOf(c.Trace); planner.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, planner)
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: planner, Attributes: []attribute.KeyValue{attribute.String("link.reason", "planned")}}))
	}
	return d.opts.Tracer.Start(ctx, name, opts...)
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
