// Package engine is the escalation service's work: it keeps each ticket's events, judges the
// ticket against its tenant's rules whenever an event arrives or one of its timers fires, judges
// agents and teams on their KPI snapshots, turns the verdicts into escalations, raises them when
// nobody acknowledges, and publishes every lifecycle change to the ESCALATIONS stream.
//
// Everything is level-triggered: a ticket is judged from the whole set of its events at an
// instant, never from what was judged before, so a redelivered event, a timer fired twice or two
// replicas judging the same ticket cannot open a second escalation or skip a change.
//
// The Engine only coordinates: the ticket log (ticketlog) keeps the events, the reconciler judges
// and reconciles the escalations, and the outbox (outbox) publishes their changes; a batch
// gathers the timers and the published changes of one piece of work to settle them together.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/outbox"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/ticketlog"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// Timers is the due-queue the engine plans its wake-ups in.
type Timers interface {
	// ScheduleEarlier sets each timer to its due time unless it is already due sooner: a
	// replica with an outdated view can then only cause an early, harmless judgement, never a
	// late one.
	ScheduleEarlier(ctx context.Context, ts []timers.Timer) error
}

// Publisher stores messages in JetStream.
type Publisher = outbox.Publisher

// Options tune the engine.
type Options struct {
	// TicketRetention is how long a ticket's events are kept after its last one arrived.
	TicketRetention time.Duration
	// Parallel bounds the tickets or timers handled at once.
	Parallel int
	// RetryFlush is how soon a change that could not be published is tried again.
	RetryFlush time.Duration
	// HistoryHorizon is how old a ticket's breach (the deadline it passed, the rating, the
	// reopen) may be when the engine first judges it and still be raised: an older one comes
	// from history (an import, a rebuild, a consumer starting at the stream's beginning), and
	// paging someone for it helps nobody. Zero: every breach is raised. An escalation policy's
	// history_horizon replaces it for the breaches routed to that policy.
	HistoryHorizon time.Duration
	// OnHistorical, when set, counts a breach recorded as historical instead of raised, by rule kind.
	OnHistorical func(kind string)
	// Tracer traces each ticket's judgement, each timer's firing and each change's publication;
	// nil traces nothing.
	Tracer trace.Tracer
}

// Engine judges tickets and KPI snapshots.
type Engine struct {
	store   *escalationstore.Store
	tickets *ticketlog.Log
	judge   *reconciler
	outbox  *outbox.Outbox
	timers  Timers
	rules   Rules
	now     func() time.Time
	opts    Options
	log     *slog.Logger
}

// Rules is the rules file in force; a reload may swap it between two calls of Load.
type Rules interface {
	Load() *rulesfile.Config
}

// New returns an engine reading the rules in cfg, which a reload may swap at any time.
func New(rdb redis.UniversalClient, store *escalationstore.Store, tm Timers, pub Publisher, cfg Rules,
	now func() time.Time, opts Options, log *slog.Logger) *Engine {
	if opts.Parallel < 1 {
		opts.Parallel = 16
	}
	if opts.RetryFlush <= 0 {
		opts.RetryFlush = 5 * time.Second
	}
	if opts.Tracer == nil {
		opts.Tracer = noop.NewTracerProvider().Tracer("")
	}
	tl := ticketlog.New(opts.TicketRetention, log)
	return &Engine{
		store:   store,
		tickets: tl,
		judge: &reconciler{rdb: rdb, store: store, tickets: tl, rules: cfg, now: now, parallel: opts.Parallel,
			horizon: opts.HistoryHorizon, onHistorical: opts.OnHistorical, tracer: opts.Tracer, log: log},
		outbox: outbox.New(pub, store, now, opts.RetryFlush, log).WithTracer(opts.Tracer),
		timers: tm,
		rules:  cfg,
		now:    now,
		opts:   opts,
		log:    log,
	}
}

// Store is the engine's escalation store.
func (e *Engine) Store() *escalationstore.Store { return e.store }

// Tickets stores the events and judges every ticket they touch. On error nothing is lost: the
// caller redelivers, storing an event twice is a no-op and judging again changes nothing that
// was already changed.
func (e *Engine) Tickets(ctx context.Context, evs []*tpv1.TicketEvent) error {
	return e.TicketsTraced(ctx, evs, nil)
}

// TicketsTraced is Tickets with the trace context each event was published with (traces[i] is
// evs[i]'s, nil for none): a ticket's judgement continues the trace of its latest event in evs.
func (e *Engine) TicketsTraced(ctx context.Context, evs []*tpv1.TicketEvent, traces []trace.SpanContext) error {
	order, byTicket := ticketlog.Group(evs)
	// Tenants without rules have nothing to judge, so their events are not kept either.
	order = slices.DeleteFunc(order, func(k ticketlog.Ticket) bool { return e.judge.tenant(k.Tenant) == nil })
	if len(order) == 0 {
		return nil
	}
	// Storing the events and loading the tickets back go in one round trip: the pipeline runs in
	// order, so each ticket is read with its new events.
	store := func(pipe redis.Pipeliner) error {
		for _, k := range order {
			if err := e.tickets.Append(ctx, pipe, k, byTicket[k]); err != nil {
				return err
			}
		}
		return nil
	}
	var parents []trace.SpanContext
	if len(traces) == len(evs) {
		of := make(map[ticketlog.Ticket]trace.SpanContext, len(order))
		for i, ev := range evs {
			if traces[i].IsValid() {
				of[ticketlog.Ticket{Tenant: ev.GetTenant(), ID: ev.GetTicketId()}] = traces[i]
			}
		}
		parents = make([]trace.SpanContext, len(order))
		for i, k := range order {
			parents[i] = of[k]
		}
	}
	return errors.Join(e.judgeTickets(ctx, order, nil, parents, store)...)
}

// judgeTickets judges the tickets and settles the timers and outboxes of all of them together.
// planned, when set, holds per ticket the instant its timer was due (see reconciler.judgeTickets);
// parents, when set, the trace each ticket's judgement continues. It returns one error per ticket.
func (e *Engine) judgeTickets(ctx context.Context, ks []ticketlog.Ticket, planned []time.Time, parents []trace.SpanContext, before func(redis.Pipeliner) error) []error {
	b := e.newBatch()
	errs := e.judge.judgeTickets(ctx, ks, planned, parents, before, b)
	if err := b.finish(ctx); err != nil {
		return fill(errs, err)
	}
	return errs
}

// Fire handles due timers: a ticket's is a judgement at this instant (all the batch's tickets
// together), an escalation's a raise to its next level and a retry of changes not yet
// published. It returns one error per timer.
func (e *Engine) Fire(ctx context.Context, cs []timers.Claimed) []error {
	errs := make([]error, len(cs))
	var tickets []ticketlog.Ticket
	ticketOf := map[ticketlog.Ticket]int{}
	var claimTicket []int   // claim index → ticket index, -1 for other kinds
	var planned []time.Time // per ticket, the earliest its claimed timers were due
	var parents []trace.SpanContext
	type esc struct {
		i          int
		tenant, id string
		c          timers.Claimed
	}
	var escs []esc
	for i, c := range cs {
		claimTicket = append(claimTicket, -1)
		kind, tenant, ref, ok := parseTimer(c.ID)
		switch {
		case !ok:
			e.log.Error("dropping a timer with a malformed id", "id", c.ID)
		case kind == "t":
			k := ticketlog.Ticket{Tenant: tenant, ID: ref}
			n, seen := ticketOf[k]
			if !seen {
				n = len(tickets)
				ticketOf[k] = n
				tickets = append(tickets, k)
				planned = append(planned, c.Due)
				parents = append(parents, telemetry.SpanContextOf(c.Trace))
			}
			if c.Due.Before(planned[n]) {
				planned[n] = c.Due
			}
			claimTicket[i] = n
		case kind == "e":
			escs = append(escs, esc{i, tenant, ref, c})
		default:
			e.log.Error("dropping a timer of unknown kind", "id", c.ID)
		}
	}
	var wg sync.WaitGroup
	if len(tickets) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			terrs := e.judgeTickets(ctx, tickets, planned, parents, nil)
			for i, n := range claimTicket {
				if n >= 0 {
					errs[i] = terrs[n]
				}
			}
		}()
	}
	b := e.newBatch()
	sem := make(chan struct{}, e.opts.Parallel)
	var ewg sync.WaitGroup
	for _, x := range escs {
		ewg.Add(1)
		sem <- struct{}{}
		go func() {
			defer ewg.Done()
			defer func() { <-sem }()
			rctx, span := e.judge.startTimer(ctx, "fire escalation timer", telemetry.SpanContextOf(x.c.Trace), x.c.Due,
				telemetry.AttrTenant.String(x.tenant), attribute.String("escalation.id", x.id))
			errs[x.i] = e.judge.raise(rctx, x.tenant, x.id, b)
			endSpan(span, errs[x.i])
		}()
	}
	ewg.Wait()
	if len(escs) > 0 {
		if err := b.finish(ctx); err != nil {
			for _, x := range escs {
				errs[x.i] = errors.Join(errs[x.i], err)
			}
		}
	}
	wg.Wait()
	return errs
}

// Snapshot judges an agent or team on its latest KPI snapshot with every KPI rule of its tenant.
func (e *Engine) Snapshot(ctx context.Context, snap *tpv1.KpiSnapshot) error {
	b := e.newBatch()
	err := e.judge.snapshot(ctx, snap, b)
	return errors.Join(err, b.finish(ctx))
}

// Acknowledge and Resolve change an escalation by hand and publish the change.
func (e *Engine) Acknowledge(ctx context.Context, tenant, id, by, note string) (*escalationstore.Record, error) {
	return e.byHand(ctx, tenant, func() (*escalationstore.Record, error) {
		return e.store.Acknowledge(ctx, tenant, id, by, note, e.now())
	})
}

// Resolve resolves an escalation by hand.
func (e *Engine) Resolve(ctx context.Context, tenant, id, by, note string) (*escalationstore.Record, error) {
	return e.byHand(ctx, tenant, func() (*escalationstore.Record, error) {
		return e.store.Resolve(ctx, tenant, id, by, note, e.now())
	})
}

func (e *Engine) byHand(ctx context.Context, tenant string, f func() (*escalationstore.Record, error)) (*escalationstore.Record, error) {
	rec, err := f()
	if err != nil {
		return nil, err
	}
	b := e.newBatch()
	b.settle(ctx, tenant, rec)
	if err := b.finish(ctx); err != nil {
		// The change is stored; its publication is retried with the escalation's next change
		// or timer.
		e.log.Warn("settle escalation change", "escalation", rec.ID, "err", err)
	}
	return rec, nil
}

// ChangeFromMsg decodes a published change.
func ChangeFromMsg(data []byte) (*tpv1.EscalationChange, error) {
	c := &tpv1.EscalationChange{}
	if err := proto.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("decode escalation change: %w", err)
	}
	return c, nil
}
