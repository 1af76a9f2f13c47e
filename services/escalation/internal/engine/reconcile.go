package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/judge"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/ticketlog"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// reconciler is the judge: it applies a tenant's rules to a ticket's events or to a KPI snapshot
// and reconciles each rule's escalation with the verdict in the store's compare-and-set (raised,
// updated or resolved), and raises the escalations nobody acknowledged. Each escalation as a
// verdict left it goes to the batch, which publishes its changes.
type reconciler struct {
	rdb      redis.UniversalClient
	store    *escalationstore.Store
	tickets  *ticketlog.Log
	rules    Rules
	now      func() time.Time
	parallel int
	// horizon is Options.HistoryHorizon, for the escalation policies that set none of their own.
	horizon      time.Duration
	onHistorical func(kind string)
	tracer       trace.Tracer
	log          *slog.Logger
}

// startJudge starts the span of a ticket's judgement. A judgement for events continues the
// trace of the ticket's event (parent) when there is one; one for a timer (planned set)
// continues the trace that planned it, and links to it.
func (r *reconciler) startJudge(ctx context.Context, k ticketlog.Ticket, parent trace.SpanContext, planned time.Time) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{telemetry.AttrTenant.String(k.Tenant), telemetry.AttrTicket.String(k.ID)}
	if !planned.IsZero() {
		return r.startTimer(ctx, "fire ticket timer", parent, planned, attrs...)
	}
	opts := []trace.SpanStartOption{trace.WithAttributes(attrs...)}
	if parent.IsValid() {
		// Linked to the batch it was judged in, a child of the event that asked for it.
		opts = append(opts, trace.WithLinks(trace.LinkFromContext(ctx)))
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	return r.tracer.Start(ctx, "judge ticket", opts...)
}

// startTimer starts the span of a timer's firing: a child of the trace that planned it, linked to
// it (the messaging conventions' link to a creation context), with how late it fired.
func (r *reconciler) startTimer(ctx context.Context, name string, planner trace.SpanContext, due time.Time, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	attrs = append(attrs, attribute.String("timer.due", due.UTC().Format(time.RFC3339Nano)),
		attribute.Float64("timer.lateness_seconds", r.now().Sub(due).Seconds()))
	opts := []trace.SpanStartOption{trace.WithAttributes(attrs...)}
	if planner.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, planner)
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: planner, Attributes: []attribute.KeyValue{attribute.String("link.reason", "planned")}}))
	}
	return r.tracer.Start(ctx, name, opts...)
}

// endSpan ends span, marking it failed with err.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "failed")
	}
	span.End()
}

func (r *reconciler) tenant(id string) *rulesfile.Tenant {
	if cfg := r.rules.Load(); cfg != nil {
		if t, ok := cfg.Tenant(id); ok {
			return t
		}
	}
	return nil
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

// judgeTickets judges the tickets at this instant: one round trip (after the writes before queues, if
// any) loads every ticket's events and which of its rules ever escalated, then each ticket is
// judged and reconciled in parallel. planned, when set, holds per ticket the instant a timer
// judging it was due: escalation knew then what would come due, so a breach is historical only
// if it was already older than the horizon at that instant, and a timer handled late (the service
// was down) still raises what it was planned for. It returns one error per ticket.
func (r *reconciler) judgeTickets(ctx context.Context, ks []ticketlog.Ticket, planned []time.Time, parents []trace.SpanContext, before func(redis.Pipeliner) error, b *batch) []error {
	errs := make([]error, len(ks))
	pipe := r.rdb.Pipeline()
	if before != nil {
		if err := before(pipe); err != nil {
			return fill(errs, err)
		}
	}
	evCmds := make([]*redis.MapStringStringCmd, len(ks))
	known := make([]map[string]*redis.IntCmd, len(ks))
	for i, k := range ks {
		evCmds[i] = ticketlog.Load(ctx, pipe, k)
		t := r.tenant(k.Tenant)
		if t == nil {
			continue
		}
		subj := escalationstore.Subject{Kind: escalationstore.Ticket, ID: k.ID}
		known[i] = map[string]*redis.IntCmd{}
		for _, rule := range ticketRules(t) {
			known[i][rule] = r.store.KnownCmd(ctx, pipe, k.Tenant, rule, subj)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fill(errs, fmt.Errorf("store and load ticket events: %w", err))
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.parallel)
	for i, k := range ks {
		had := map[string]bool{}
		for rule, c := range known[i] {
			had[rule] = c.Val() > 0
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var learned time.Time
			if planned != nil {
				learned = planned[i]
			}
			var parent trace.SpanContext
			if parents != nil {
				parent = parents[i]
			}
			jctx, span := r.startJudge(ctx, k, parent, learned)
			errs[i] = r.judgeTicket(jctx, k, evCmds[i].Val(), had, learned, b)
			endSpan(span, errs[i])
		}()
	}
	wg.Wait()
	return errs
}

// fill sets every entry to err, keeping the ones already set.
func fill(errs []error, err error) []error {
	for i := range errs {
		errs[i] = errors.Join(errs[i], err)
	}
	return errs
}

func (r *reconciler) judgeTicket(ctx context.Context, k ticketlog.Ticket, stored map[string]string, had map[string]bool, learned time.Time, b *batch) error {
	t := r.tenant(k.Tenant)
	if t == nil || len(stored) == 0 {
		return nil
	}
	evs := r.tickets.Events(k, stored)
	now := r.now()
	j := judge.Ticket(k.ID, evs, t, now)
	// learned is when escalation learned of what is due now: now, or the earlier instant a timer
	// was planned for.
	if learned.IsZero() || learned.After(now) {
		learned = now
	}
	subj := escalationstore.Subject{Kind: escalationstore.Ticket, ID: k.ID}
	if !j.Wake.IsZero() {
		b.wake(timers.Timer{ID: ticketTimer(k.Tenant, k.ID), Due: j.Wake, Trace: telemetry.Traceparent(ctx)})
	}
	var errs []error
	for _, c := range j.Conditions {
		// Most tickets never escalate: an inactive condition with nothing to resolve costs nothing.
		if !c.Active && !had[c.Rule] {
			continue
		}
		pol, _ := t.EscalationPolicy(c.Escalation)
		if c.Active && !had[c.Rule] && r.historical(c, pol, learned) {
			r.recordHistorical(ctx, k, t, c, learned)
			continue
		}
		trace.SpanFromContext(ctx).AddEvent("verdict", trace.WithAttributes(telemetry.AttrRule.String(c.Rule), attribute.Bool("active", c.Active),
			attribute.String("severity", c.Severity.String())))
		rec, err := r.store.Reconcile(ctx, escalationstore.Verdict{
			Tenant: k.Tenant, Rule: c.Rule, Subject: subj, Active: c.Active, Severity: c.Severity,
			Summary: c.Summary, Facts: c.Facts, Labels: c.Labels, Policy: pol,
			Version: int64(len(stored)), At: now, EventsKey: ticketlog.Key(k),
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.settle(ctx, k.Tenant, rec)
	}
	return errors.Join(errs...)
}

// historical reports whether a condition the ticket never escalated on became true longer ago
// than the horizon of the escalation policy it is routed to (its history_horizon, else the
// service's). The decision is remade at every judgement from the same instants, so a historical
// breach stays one (it is never raised by a later event of its ticket) while the rules stay, and a
// breach judged in time is raised and then followed like any other. A reload that lengthens a
// policy's horizon (or sets it to 0) lets the next judgement of a ticket raise a breach that was
// historical before, as any other changed rule applies from the next judgement on.
func (r *reconciler) historical(c judge.Condition, pol *rulesfile.EscalationPolicy, learned time.Time) bool {
	return Historical(c, pol, r.horizon, learned)
}

// Historical is the decision of reconciler.historical, for a judgement outside the engine (the
// what-if) to make it alike: def is the service's -history-horizon.
func Historical(c judge.Condition, pol *rulesfile.EscalationPolicy, def time.Duration, learned time.Time) bool {
	horizon := pol.Horizon(def)
	return horizon > 0 && !c.Since.IsZero() && learned.Sub(c.Since) > horizon
}

func (r *reconciler) recordHistorical(ctx context.Context, k ticketlog.Ticket, t *rulesfile.Tenant, c judge.Condition, learned time.Time) {
	kind := ruleKind(t, c.Rule)
	if r.onHistorical != nil {
		r.onHistorical(kind)
	}
	if r.log != nil {
		r.log.DebugContext(ctx, "historical breach, not raised", "tenant", k.Tenant, "ticket", k.ID, "rule", c.Rule,
			"kind", kind, "since", c.Since.UTC().Format(time.RFC3339), "age", learned.Sub(c.Since).Round(time.Second).String())
	}
}

// ruleKind is the kind of a ticket rule: the SLA clock's name, or the quality rule's kind.
func ruleKind(t *rulesfile.Tenant, rule string) string {
	for _, q := range t.Quality {
		if q.Name == rule {
			return string(q.Kind)
		}
	}
	return rule
}

// raise raises an escalation nobody acknowledged to its policy's next level, when it is due.
func (r *reconciler) raise(ctx context.Context, tenant, id string, b *batch) error {
	policyOf := func(name string) *rulesfile.EscalationPolicy {
		if t := r.tenant(tenant); t != nil {
			pol, _ := t.EscalationPolicy(name)
			return pol
		}
		return nil
	}
	rec, err := r.store.Raise(ctx, tenant, id, policyOf, r.now())
	if err != nil {
		return err
	}
	b.settle(ctx, tenant, rec)
	return nil
}

// snapshot judges an agent, team or queue on its latest KPI snapshot with every KPI rule of its tenant.
func (r *reconciler) snapshot(ctx context.Context, snap *tpv1.KpiSnapshot, b *batch) error {
	t := r.tenant(snap.GetTenant())
	if t == nil {
		return nil
	}
	kind := escalationstore.Agent
	switch snap.GetScope() {
	case "team":
		kind = escalationstore.Team
	case "queue":
		kind = escalationstore.Queue
	}
	subj := escalationstore.Subject{Kind: kind, ID: snap.GetId()}
	now := r.now()
	var errs []error
	for _, q := range t.Quality {
		if q.Kind != rulesfile.KindKPI && q.Kind != rulesfile.KindKPIBaseline {
			continue
		}
		v := judge.KPI(q, snap)
		if !v.Judged {
			// Too few tickets to say: an open escalation stays as it is until the figures speak.
			continue
		}
		pol, _ := t.EscalationPolicy(q.Escalation)
		rec, err := r.store.Reconcile(ctx, escalationstore.Verdict{
			Tenant: snap.GetTenant(), Rule: q.Name, Subject: subj, Active: v.Breached, Severity: q.Severity,
			Summary: v.Summary, Facts: v.Facts, Labels: map[string]string{kind: snap.GetId()}, Policy: pol,
			Version: snap.GetComputedAt().AsTime().UnixMilli(), At: now,
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.settle(ctx, snap.GetTenant(), rec)
	}
	return errors.Join(errs...)
}
