// Package engine is the escalation service's work: it keeps each ticket's events, judges the
// ticket against its tenant's rules whenever an event arrives or one of its timers fires, judges
// agents and teams on their KPI snapshots, turns the verdicts into escalations, raises them when
// nobody acknowledges, and publishes every lifecycle change to the ESCALATIONS stream.
//
// Everything is level-triggered: a ticket is judged from the whole set of its events at an
// instant, never from what was judged before, so a redelivered event, a timer fired twice or two
// replicas judging the same ticket cannot open a second escalation or skip a change.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/judge"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
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
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Options tune the engine.
type Options struct {
	// TicketRetention is how long a ticket's events are kept after its last one arrived.
	TicketRetention time.Duration
	// Parallel bounds the tickets or timers handled at once.
	Parallel int
	// RetryFlush is how soon a change that could not be published is tried again.
	RetryFlush time.Duration
}

// Engine judges tickets and KPI snapshots.
type Engine struct {
	rdb    redis.UniversalClient
	store  *escalationstore.Store
	timers Timers
	pub    Publisher
	rules  *atomic.Pointer[rulesfile.Config]
	now    func() time.Time
	opts   Options
	log    *slog.Logger
}

// New returns an engine reading the rules in cfg, which a reload may swap at any time.
func New(rdb redis.UniversalClient, store *escalationstore.Store, tm Timers, pub Publisher, cfg *atomic.Pointer[rulesfile.Config],
	now func() time.Time, opts Options, log *slog.Logger) *Engine {
	if opts.Parallel < 1 {
		opts.Parallel = 16
	}
	if opts.RetryFlush <= 0 {
		opts.RetryFlush = 5 * time.Second
	}
	return &Engine{rdb: rdb, store: store, timers: tm, pub: pub, rules: cfg, now: now, opts: opts, log: log}
}

// Store is the engine's escalation store.
func (e *Engine) Store() *escalationstore.Store { return e.store }

// Timer ids: a kind letter, the tenant and the ticket or escalation id, separated by a byte
// neither a tenant nor an escalation id can hold (ticket ids may, and come last).
const sep = "\x1f"

func ticketTimer(tenant, ticket string) string { return "t" + sep + tenant + sep + ticket }
func escalationTimer(tenant, id string) string { return "e" + sep + tenant + sep + id }

// eventsKey holds a ticket's events by id, in the ticket's slot (DESIGN.md §4).
func eventsKey(tenant, ticket string) string {
	return "tp:{" + tenant + ":t:" + idtoken.Escape(ticket) + "}:esc:ev"
}

func (e *Engine) tenant(id string) *rulesfile.Tenant {
	if cfg := e.rules.Load(); cfg != nil {
		if t, ok := cfg.Tenant(id); ok {
			return t
		}
	}
	return nil
}

// ticketKey identifies a ticket across tenants.
type ticketKey struct{ tenant, ticket string }

// Tickets stores the events and judges every ticket they touch. On error nothing is lost: the
// caller redelivers, storing an event twice is a no-op and judging again changes nothing that
// was already changed.
func (e *Engine) Tickets(ctx context.Context, evs []*tpv1.TicketEvent) error {
	byTicket := make(map[ticketKey][]*tpv1.TicketEvent)
	var order []ticketKey
	for _, ev := range evs {
		k := ticketKey{ev.GetTenant(), ev.GetTicketId()}
		if _, ok := byTicket[k]; !ok {
			order = append(order, k)
		}
		byTicket[k] = append(byTicket[k], ev)
	}
	// Tenants without rules have nothing to judge, so their events are not kept either.
	order = slices.DeleteFunc(order, func(k ticketKey) bool { return e.tenant(k.tenant) == nil })
	if len(order) == 0 {
		return nil
	}
	// Storing the events and loading the tickets back go in one round trip: the pipeline runs in
	// order, so each ticket is read with its new events.
	store := func(pipe redis.Pipeliner) error {
		for _, k := range order {
			key := eventsKey(k.tenant, k.ticket)
			for _, ev := range byTicket[k] {
				data, err := proto.Marshal(compact(ev))
				if err != nil {
					return fmt.Errorf("encode event %s: %w", ev.GetId(), err)
				}
				pipe.HSetNX(ctx, key, ev.GetId(), data)
			}
			pipe.Expire(ctx, key, e.opts.TicketRetention)
		}
		return nil
	}
	return errors.Join(e.judgeTickets(ctx, order, store)...)
}

// compact keeps what the rules read; the rest of an event (source, received_at) is not stored.
func compact(ev *tpv1.TicketEvent) *tpv1.TicketEvent {
	return &tpv1.TicketEvent{
		Type: ev.GetType(), OccurredAt: ev.GetOccurredAt(), Actor: ev.GetActor(),
		AssigneeId: ev.GetAssigneeId(), TeamId: ev.GetTeamId(), Priority: ev.GetPriority(), Status: ev.GetStatus(),
		Public: ev.Public, Satisfaction: ev.GetSatisfaction(), Channel: ev.GetChannel(), Tags: ev.GetTags(),
	}
}

// outcome collects what handling a batch leaves for the end, to be done in one round trip each
// instead of one per ticket: the timers to plan and the published changes to clear.
type outcome struct {
	mu        sync.Mutex
	wakes     []timers.Timer
	published map[string][]escalationstore.Pending // by tenant
}

func newOutcome() *outcome { return &outcome{published: map[string][]escalationstore.Pending{}} }

func (o *outcome) wake(ts ...timers.Timer) {
	o.mu.Lock()
	o.wakes = append(o.wakes, ts...)
	o.mu.Unlock()
}

func (o *outcome) done(tenant string, ps []escalationstore.Pending) {
	if len(ps) == 0 {
		return
	}
	o.mu.Lock()
	o.published[tenant] = append(o.published[tenant], ps...)
	o.mu.Unlock()
}

// finish plans the timers and clears the published changes. A change left in an outbox after a
// failure here is published again later and dropped by JetStream as a duplicate.
func (e *Engine) finish(ctx context.Context, o *outcome) error {
	var errs []error
	if len(o.wakes) > 0 {
		if err := e.timers.ScheduleEarlier(ctx, o.wakes); err != nil {
			errs = append(errs, fmt.Errorf("schedule timers: %w", err))
		}
	}
	if err := e.store.PublishedMany(ctx, o.published); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ticketRules are the rules judged per ticket: the SLA clocks and the ticket quality rules.
func ticketRules(t *rulesfile.Tenant) []string {
	names := []string{rulesfile.RuleFirstResponse, rulesfile.RuleNextResponse, rulesfile.RuleResolution}
	for _, q := range t.Quality {
		if q.Kind == rulesfile.KindBadRating || q.Kind == rulesfile.KindReopens {
			names = append(names, q.Name)
		}
	}
	return names
}

// judgeTickets judges the tickets at this instant: one round trip (after the writes before
// queues, if any) loads every ticket's events and which of its rules ever escalated, then each
// ticket is judged and reconciled in parallel, and the timers and outboxes of all of them are
// settled together. It returns one error per ticket.
func (e *Engine) judgeTickets(ctx context.Context, ks []ticketKey, before func(redis.Pipeliner) error) []error {
	errs := make([]error, len(ks))
	pipe := e.rdb.Pipeline()
	if before != nil {
		if err := before(pipe); err != nil {
			return fill(errs, err)
		}
	}
	evCmds := make([]*redis.MapStringStringCmd, len(ks))
	known := make([]map[string]*redis.IntCmd, len(ks))
	for i, k := range ks {
		evCmds[i] = pipe.HGetAll(ctx, eventsKey(k.tenant, k.ticket))
		t := e.tenant(k.tenant)
		if t == nil {
			continue
		}
		subj := escalationstore.Subject{Kind: escalationstore.Ticket, ID: k.ticket}
		known[i] = map[string]*redis.IntCmd{}
		for _, r := range ticketRules(t) {
			known[i][r] = e.store.KnownCmd(ctx, pipe, k.tenant, r, subj)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fill(errs, fmt.Errorf("store and load ticket events: %w", err))
	}
	o := newOutcome()
	var wg sync.WaitGroup
	sem := make(chan struct{}, e.opts.Parallel)
	for i, k := range ks {
		had := map[string]bool{}
		for r, c := range known[i] {
			had[r] = c.Val() > 0
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = e.judgeTicket(ctx, k, evCmds[i].Val(), had, o)
		}()
	}
	wg.Wait()
	if err := e.finish(ctx, o); err != nil {
		return fill(errs, err)
	}
	return errs
}

// fill sets every entry to err, keeping the ones already set.
func fill(errs []error, err error) []error {
	for i := range errs {
		errs[i] = errors.Join(errs[i], err)
	}
	return errs
}

func (e *Engine) judgeTicket(ctx context.Context, k ticketKey, stored map[string]string, had map[string]bool, o *outcome) error {
	t := e.tenant(k.tenant)
	if t == nil || len(stored) == 0 {
		return nil
	}
	evs := make([]judge.Event, 0, len(stored))
	for id, data := range stored {
		ev := &tpv1.TicketEvent{}
		if err := proto.Unmarshal([]byte(data), ev); err != nil {
			// Written by this service; a bad entry is skipped rather than blocking the ticket.
			e.log.Error("undecodable stored event", "tenant", k.tenant, "ticket", k.ticket, "event", id, "err", err)
			continue
		}
		evs = append(evs, toRuleEvent(id, ev))
	}
	now := e.now()
	j := judge.Ticket(k.ticket, evs, t, now)
	subj := escalationstore.Subject{Kind: escalationstore.Ticket, ID: k.ticket}
	if !j.Wake.IsZero() {
		o.wake(timers.Timer{ID: ticketTimer(k.tenant, k.ticket), Due: j.Wake})
	}
	var errs []error
	for _, c := range j.Conditions {
		// Most tickets never escalate: an inactive condition with nothing to resolve costs nothing.
		if !c.Active && !had[c.Rule] {
			continue
		}
		pol, _ := t.EscalationPolicy(c.Escalation)
		rec, err := e.store.Reconcile(ctx, escalationstore.Verdict{
			Tenant: k.tenant, Rule: c.Rule, Subject: subj, Active: c.Active, Severity: c.Severity,
			Summary: c.Summary, Facts: c.Facts, Labels: c.Labels, Policy: pol,
			Version: int64(len(stored)), At: now, EventsKey: eventsKey(k.tenant, k.ticket),
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.settle(ctx, k.tenant, rec, o)
	}
	return errors.Join(errs...)
}

func toRuleEvent(id string, ev *tpv1.TicketEvent) judge.Event {
	return judge.Event{
		ID: id, Type: ev.GetType(), At: ev.GetOccurredAt().AsTime(), ActorKind: ev.GetActor().GetKind(),
		Public: ev.GetPublic(), Assignee: ev.GetAssigneeId(), Team: ev.GetTeamId(), Priority: ev.GetPriority(),
		Status: ev.GetStatus(), Score: ev.GetSatisfaction().GetScore(), Comment: ev.GetSatisfaction().GetComment(),
		Channel: ev.GetChannel(), Tags: ev.GetTags(),
	}
}

// settle publishes the escalation's unpublished changes and plans the timer it needs: its next
// raise, or a retry soon when publishing failed (the failure is logged, not returned: the change
// is safe in the outbox and the timer publishes it).
func (e *Engine) settle(ctx context.Context, tenant string, rec *escalationstore.Record, o *outcome) {
	if rec == nil {
		return
	}
	var due time.Time
	published, err := e.publish(ctx, tenant, rec.Outbox)
	o.done(tenant, published)
	if err != nil {
		e.log.Warn("publish escalation change; will retry", "tenant", tenant, "escalation", rec.ID, "err", err)
		due = e.now().Add(e.opts.RetryFlush)
	}
	if !rec.RaiseAt.IsZero() && (due.IsZero() || rec.RaiseAt.Before(due)) {
		due = rec.RaiseAt
	}
	if !due.IsZero() {
		o.wake(timers.Timer{ID: escalationTimer(tenant, rec.ID), Due: due})
	}
}

// publish stores the changes in JetStream in order, each with its message id, and returns those
// stored before the first failure.
func (e *Engine) publish(ctx context.Context, tenant string, outbox []escalationstore.Pending) ([]escalationstore.Pending, error) {
	for i, p := range outbox {
		msg := &nats.Msg{Subject: escalationstore.StreamSubject(tenant, p.Rule), Data: p.Data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, escalationstore.MsgID(tenant, p.ID, p.Seq))
		if _, err := e.pub.PublishMsg(ctx, msg); err != nil {
			return outbox[:i], fmt.Errorf("publish %s: %w", msg.Subject, err)
		}
	}
	return outbox, nil
}

// Fire handles due timers: a ticket's is a judgement at this instant (all the batch's tickets
// together), an escalation's a raise to its next level and a retry of changes not yet
// published. It returns one error per timer.
func (e *Engine) Fire(ctx context.Context, cs []timers.Claimed) []error {
	errs := make([]error, len(cs))
	var tickets []ticketKey
	ticketOf := map[ticketKey]int{}
	var claimTicket []int // claim index → ticket index, -1 for other kinds
	type esc struct {
		i          int
		tenant, id string
	}
	var escs []esc
	for i, c := range cs {
		claimTicket = append(claimTicket, -1)
		kind, rest, _ := strings.Cut(c.ID, sep)
		tenant, ref, ok := strings.Cut(rest, sep)
		switch {
		case !ok:
			e.log.Error("dropping a timer with a malformed id", "id", c.ID)
		case kind == "t":
			k := ticketKey{tenant, ref}
			n, seen := ticketOf[k]
			if !seen {
				n = len(tickets)
				ticketOf[k] = n
				tickets = append(tickets, k)
			}
			claimTicket[i] = n
		case kind == "e":
			escs = append(escs, esc{i, tenant, ref})
		default:
			e.log.Error("dropping a timer of unknown kind", "id", c.ID)
		}
	}
	var wg sync.WaitGroup
	if len(tickets) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			terrs := e.judgeTickets(ctx, tickets, nil)
			for i, n := range claimTicket {
				if n >= 0 {
					errs[i] = terrs[n]
				}
			}
		}()
	}
	o := newOutcome()
	sem := make(chan struct{}, e.opts.Parallel)
	var ewg sync.WaitGroup
	for _, x := range escs {
		ewg.Add(1)
		sem <- struct{}{}
		go func() {
			defer ewg.Done()
			defer func() { <-sem }()
			errs[x.i] = e.raise(ctx, x.tenant, x.id, o)
		}()
	}
	ewg.Wait()
	if len(escs) > 0 {
		if err := e.finish(ctx, o); err != nil {
			for _, x := range escs {
				errs[x.i] = errors.Join(errs[x.i], err)
			}
		}
	}
	wg.Wait()
	return errs
}

func (e *Engine) raise(ctx context.Context, tenant, id string, o *outcome) error {
	policyOf := func(name string) *rulesfile.EscalationPolicy {
		if t := e.tenant(tenant); t != nil {
			pol, _ := t.EscalationPolicy(name)
			return pol
		}
		return nil
	}
	rec, err := e.store.Raise(ctx, tenant, id, policyOf, e.now())
	if err != nil {
		return err
	}
	e.settle(ctx, tenant, rec, o)
	return nil
}

// Snapshot judges an agent or team on its latest KPI snapshot with every KPI rule of its tenant.
func (e *Engine) Snapshot(ctx context.Context, snap *tpv1.KpiSnapshot) error {
	t := e.tenant(snap.GetTenant())
	if t == nil {
		return nil
	}
	kind := escalationstore.Agent
	if snap.GetScope() == "team" {
		kind = escalationstore.Team
	}
	subj := escalationstore.Subject{Kind: kind, ID: snap.GetId()}
	now := e.now()
	var errs []error
	o := newOutcome()
	for _, q := range t.Quality {
		if q.Kind != rulesfile.KindKPI && q.Kind != rulesfile.KindKPIBaseline {
			continue
		}
		v := q.EvaluateKPI(snap)
		if !v.Judged {
			// Too few tickets to say: an open escalation stays as it is until the figures speak.
			continue
		}
		pol, _ := t.EscalationPolicy(q.Escalation)
		rec, err := e.store.Reconcile(ctx, escalationstore.Verdict{
			Tenant: snap.GetTenant(), Rule: q.Name, Subject: subj, Active: v.Breached, Severity: q.Severity,
			Summary: v.Summary, Facts: v.Facts, Labels: map[string]string{kind: snap.GetId()}, Policy: pol,
			Version: snap.GetComputedAt().AsTime().UnixMilli(), At: now,
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.settle(ctx, snap.GetTenant(), rec, o)
	}
	return errors.Join(append(errs, e.finish(ctx, o))...)
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
	o := newOutcome()
	e.settle(ctx, tenant, rec, o)
	if err := e.finish(ctx, o); err != nil {
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
