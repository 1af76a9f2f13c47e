// Package app wires the escalation service: the rules file (reloaded when it changes), the
// TICKETS and KPI consumers, the Redis timers, the gRPC EscalationService, and the health and
// metrics endpoints.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/engine"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/grpcapi"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/logrebuild"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/consumerlag"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/tick"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
	"github.com/ticketpulse/ticketpulse/services/platform/watermark"
)

// Name is the service name in logs, traces and the NATS connection.
const Name = "escalation"

// Spec is the escalation service as the platform runs it.
var Spec = service.Spec{
	Name:       Name,
	Summary:    "escalation raises escalations from ticket events and KPI snapshots (SLA timers, rules) and serves EscalationService over gRPC.",
	GRPCAddr:   "127.0.0.1:9091",
	GRPCServes: "EscalationService, EscalationAdminService (operators), health, reflection",
	HTTPAddr:   "127.0.0.1:9191",
	AdminAddr:  "127.0.0.1:9291",
	Redis:      true,
	// Reading escalations shows customers' comments; changing them is recorded in the caller's
	// name, so the two are separate scopes.
	Access: map[string]auth.Scope{
		tpv1.EscalationService_ListEscalations_FullMethodName:       auth.EscalationsRead,
		tpv1.EscalationService_GetEscalation_FullMethodName:         auth.EscalationsRead,
		tpv1.EscalationService_WatchEscalations_FullMethodName:      auth.EscalationsRead,
		tpv1.EscalationService_AcknowledgeEscalation_FullMethodName: auth.EscalationsWrite,
		tpv1.EscalationService_ResolveEscalation_FullMethodName:     auth.EscalationsWrite,
		// The what-if replays and judges in memory and changes nothing: a reader's scope.
		tpv1.EscalationService_GetRules_FullMethodName:      auth.EscalationsRead,
		tpv1.EscalationService_SimulateRules_FullMethodName: auth.EscalationsRead,
		// Rebuilding a ticket log replays and judges a tenant's whole history: operators only.
		tpv1.EscalationAdminService_StartLogRebuild_FullMethodName: auth.Operator,
		tpv1.EscalationAdminService_WatchLogRebuild_FullMethodName: auth.Operator,
	},
}

// Config is everything the service reads from flags and the environment.
type Config struct {
	service.Common
	RulesFile   string
	RulesReload time.Duration
	// Consume is the TICKETS consumer's; the KPI consumer batches alike under KPIDurable.
	Consume    consume.Settings
	KPIDurable string
	Timers     timers.Settings
	Parallel   int
	// WatchesPerTenant caps a tenant's open WatchEscalations streams on one replica.
	WatchesPerTenant int
	Retention        time.Duration
	TicketRetention  time.Duration
	StreamReplicas   int
	// TicketsFrom is where a new TICKETS durable starts: "all" (the stream's retention) or "new".
	TicketsFrom string
	// HistoryHorizon is how old a breach may be when first judged and still be raised.
	HistoryHorizon time.Duration
	// WatermarkInterval is how often both durables' watermarks are recorded (0: off).
	WatermarkInterval time.Duration
	// Simulations, SimulateTimeout and SimulateEvents bound SimulateRules.
	Simulations     int
	SimulateTimeout time.Duration
	SimulateEvents  int
}

// Register declares the settings on s.
func (c *Config) Register(s *envflag.Set) {
	c.Common.Register(s, Spec)
	s.String(&c.RulesFile, "rules-file", "", "YAML file of SLA policies, quality rules and escalation policies per tenant (see deploy/escalation/rules.example.yaml). Empty: no rules, nothing escalates.")
	s.Duration(&c.RulesReload, "rules-reload", 10*time.Second, "How often the rules file is checked for changes; a changed file that fails validation is logged and the previous rules stay.")
	c.Consume.Register(s, consume.Settings{Durable: "escalation", BatchMax: 200, Linger: 2 * time.Millisecond, AckWait: 30 * time.Second},
		"TICKETS", "messages")
	consume.RegisterDurable(s, &c.KPIDurable, "kpi-durable", "escalation-kpi", "KPI")
	c.Timers.Register(s, timers.Settings{Poll: 50 * time.Millisecond, Lease: 30 * time.Second, Shards: 16}, "timers")
	s.Int(&c.Parallel, "parallel", 16, "Tickets or timers handled at once.")
	s.Int(&c.WatchesPerTenant, "watches-per-tenant", grpcapi.DefaultWatchesPerTenant, "Most WatchEscalations streams one tenant may hold open on this replica; one more is answered ResourceExhausted.")
	s.Duration(&c.Retention, "escalation-retention", 30*24*time.Hour, "How long a resolved escalation stays readable.")
	s.Duration(&c.TicketRetention, "ticket-retention", 45*24*time.Hour, "How long a ticket's events are kept after its last event (SLA clocks of older tickets are forgotten).")
	s.Int(&c.StreamReplicas, "stream-replicas", 1, "Replicas of the ESCALATIONS and DEADLETTER streams (3 on a NATS cluster).")
	s.String(&c.TicketsFrom, "tickets-from", "all", "Where the TICKETS consumer starts when it does not exist yet: all (judge every ticket still in the stream, so open tickets get their SLA clocks) or new (only events from now on). An existing consumer always goes on from where it was.")
	s.Duration(&c.HistoryHorizon, "history-horizon", 24*time.Hour, "How old a ticket's breach (the SLA deadline it passed, the bad rating, the reopen) may be when escalation first judges it and still be raised. An older one comes from history (an import, -tickets-from all, a rebuild): it is counted in escalation_historical_breaches_total and logged at debug, never raised or notified. 0 raises every breach, however old. An escalation policy's history_horizon in the rules file replaces this for the breaches routed to it.")
	consume.RegisterWatermark(s, &c.WatermarkInterval)
	s.Int(&c.Simulations, "simulations", grpcapi.DefaultSimulations, "Most SimulateRules calls this replica runs at once, each holding the events it replays in memory (about 300 bytes each: up to about 300 MB at -simulate-events 1000000); one more is answered ResourceExhausted.")
	s.Duration(&c.SimulateTimeout, "simulate-timeout", grpcapi.DefaultSimulateTimeout, "How long one SimulateRules call may take before it is answered DeadlineExceeded.")
	s.Int(&c.SimulateEvents, "simulate-events", grpcapi.DefaultSimulateEvents, "Most of a tenant's TICKETS messages one SimulateRules call reads (the range and the 7 days before it); a range holding more is answered ResourceExhausted.")
}

// Validate reports settings that cannot work, naming the flag.
func (c Config) Validate() error {
	var v envflag.Checks
	v.Positive("rules-reload", c.RulesReload)
	c.Consume.Check(&v)
	c.Timers.Check(&v)
	v.Positive("escalation-retention", c.Retention)
	v.Positive("ticket-retention", c.TicketRetention)
	v.NotNegative("history-horizon", c.HistoryHorizon)
	consume.CheckWatermark(&v, c.WatermarkInterval)
	v.OneOf("tickets-from", c.TicketsFrom, "all", "new")
	v.AtLeastN("parallel", c.Parallel, 1)
	v.AtLeastN("watches-per-tenant", c.WatchesPerTenant, 1)
	v.AtLeastN("simulations", c.Simulations, 1)
	v.Positive("simulate-timeout", c.SimulateTimeout)
	v.AtLeastN("simulate-events", c.SimulateEvents, 1)
	return v.Err()
}

// Deps are what a test replaces or watches in a running escalation; the zero value is production.
type Deps struct {
	service.Hooks
	// Now, when set, is the clock; time.Now otherwise.
	Now func() time.Time
	// Rebuild, when set, tunes ticket log rebuilds (logrebuild.Defaults otherwise).
	Rebuild *logrebuild.Config
	// Simulating, when set, is called by each SimulateRules call once it holds its slot.
	Simulating func(ctx context.Context)
}

// Run is the escalation process: it serves until ctx ends, then stops consuming and firing,
// finishes what is in hand and shuts down.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error { return Deps{}.Run(ctx, cfg, log) }

// Run runs escalation with d's clock and hooks.
func (d Deps) Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	now := d.Now
	if now == nil {
		now = time.Now
	}
	watcher := &rulesWatcher{path: cfg.RulesFile, log: log, now: now}
	if err := watcher.load(); err != nil {
		return err
	}

	svc, err := service.New(ctx, Spec, cfg.Common, d.Hooks, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	js, err := svc.JetStream(ctx, stream.Owned(Name, stream.Settings{Replicas: cfg.StreamReplicas})...)
	if err != nil {
		return err
	}
	rdb := svc.Redis()
	healthy := func(ctx context.Context) error { return rdb.Ping(ctx).Err() }

	m, err := newMetrics(svc.Meter())
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	queue := timers.New(rdb, cfg.Timers.Apply(timers.Options{Logger: log, OnFire: m.fired, Traces: svc.Tracing()}))
	store := escalationstore.New(rdb, cfg.Retention)
	eng := engine.New(rdb, store, queue, js, watcher.rules(), now, engine.Options{
		TicketRetention: cfg.TicketRetention, Parallel: cfg.Parallel,
		HistoryHorizon: cfg.HistoryHorizon, OnHistorical: m.historical, Tracer: svc.Tracer(),
	}, log)

	// Judging is level-triggered and a change keeps its message id, so a replay raises nothing
	// twice; with the watermark gone every message still stored is judged again, and breaches
	// older than -history-horizon are recorded, not raised.
	wm := &consume.Watermark{Redis: rdb, Meter: svc.Meter(), Interval: cfg.WatermarkInterval, Missing: watermark.ReplayAll}
	tickets := consume.New(js, cfg.Consume.Apply(consume.Config{
		Service: Name, Stream: stream.TicketsName, Filter: stream.TicketsFilter,
		Description: "escalation: SLA clocks and ticket rules", StartNew: cfg.TicketsFrom == "new",
		Watermark: wm, Tracer: svc.Tracer(),
	}), eventcodec.Decode, func(ctx context.Context, batch []consume.Decoded[*tpv1.TicketEvent]) error {
		evs := make([]*tpv1.TicketEvent, len(batch))
		traces := make([]trace.SpanContext, len(batch))
		for i, d := range batch {
			evs[i], traces[i] = d.Value, d.Trace
		}
		err := eng.TicketsTraced(ctx, evs, traces)
		if err == nil {
			m.events.Add(ctx, int64(len(evs)))
		}
		return err
	}, healthy, log)
	kpi := cfg.Consume
	kpi.Durable = cfg.KPIDurable
	snapshots := consume.New(js, kpi.Apply(consume.Config{
		Service: Name, Stream: stream.KPIName, Filter: stream.KPIFilter,
		Description: "escalation: agent and team KPI rules", DeliverLastPerSubject: true,
		Watermark: wm, Tracer: svc.Tracer(),
	}), eventcodec.DecodeSnapshot, func(ctx context.Context, batch []consume.Decoded[*tpv1.KpiSnapshot]) error {
		var errs []error
		for _, d := range batch {
			errs = append(errs, eng.Snapshot(ctx, d.Value))
		}
		return errors.Join(errs...)
	}, healthy, log)
	tickets.OnDeadLetter = func() { m.deadLettered.Add(context.Background(), 1) }
	snapshots.OnDeadLetter = tickets.OnDeadLetter
	if err := consumerlag.Observe(svc.Meter(), js, log, tickets.Lag(), snapshots.Lag()); err != nil {
		return err
	}
	open, err := newOpenGauge(svc.Meter(), store, tenantIDs(svc.Tenants()), log)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}

	grpcapi.NewServer(store, eng, js, grpcapi.Options{WatchesPerTenant: cfg.WatchesPerTenant, WhatIf: grpcapi.WhatIf{
		Rules: watcher.rules(), Store: store, Horizon: cfg.HistoryHorizon, Now: now, Holding: d.Simulating,
		Simulations: cfg.Simulations, Timeout: cfg.SimulateTimeout, MaxEvents: cfg.SimulateEvents,
	}}, log).Register(svc.GRPC())
	rcfg := logrebuild.Defaults
	if d.Rebuild != nil {
		rcfg = *d.Rebuild
	}
	rebuilds := logrebuild.NewRunner(ctx, logrebuild.NewStates(rdb), js, eng.Tickets, rcfg, log)
	logrebuild.NewServer(rebuilds, time.Second, log).Register(svc.GRPC())
	return svc.Serve(ctx,
		tickets.Run,
		rebuilds.Loop,
		snapshots.Run,
		func(ctx context.Context) error { return queue.Run(ctx, cfg.Timers.Poll, now, eng.Fire) },
		func(ctx context.Context) error { return watcher.run(ctx, cfg.RulesReload) },
		func(ctx context.Context) error { return m.observePending(ctx, queue) },
		open.run)
}

// metrics of the service.
type metrics struct {
	events, deadLettered, historicals metric.Int64Counter
	delay                             metric.Float64Histogram
	pending                           metric.Int64Gauge
}

func newMetrics(meter metric.Meter) (*metrics, error) {
	m := &metrics{}
	var err error
	if m.events, err = meter.Int64Counter("escalation_ticket_events_total", metric.WithDescription("Ticket events judged.")); err != nil {
		return nil, err
	}
	if m.historicals, err = meter.Int64Counter("escalation_historical_breaches_total",
		metric.WithDescription("Ticket breaches older than -history-horizon when judged, recorded instead of raised, by rule kind; a ticket's later judgements count its breach again.")); err != nil {
		return nil, err
	}
	if m.deadLettered, err = meter.Int64Counter("escalation_dead_lettered_total", metric.WithDescription("Messages sent to the DEADLETTER stream.")); err != nil {
		return nil, err
	}
	if m.delay, err = meter.Float64Histogram("escalation_timer_delay_seconds", metric.WithUnit("s"),
		metric.WithDescription("How late timers were handled after they were due."),
		metric.WithExplicitBucketBoundaries(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)); err != nil {
		return nil, err
	}
	if m.pending, err = meter.Int64Gauge("escalation_timers_pending", metric.WithDescription("Timers waiting to be due.")); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) historical(kind string) {
	m.historicals.Add(context.Background(), 1, metric.WithAttributes(attribute.String("kind", kind)))
}

func (m *metrics) fired(delay time.Duration) { m.delay.Record(context.Background(), delay.Seconds()) }

func (m *metrics) observePending(ctx context.Context, q *timers.Queue) error {
	return tick.NowAndEvery(ctx, 15*time.Second, func(ctx context.Context) {
		if n, err := q.Pending(ctx); err == nil {
			m.pending.Record(ctx, n)
		}
	})
}
