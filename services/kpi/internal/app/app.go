// Package app wires the kpi service: the TICKETS consumer and write path, the gRPC KpiService, KPI
// snapshots, and the health and metrics endpoints.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/adminapi"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/consumer"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/export"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/generation"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/grpcapi"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/rebuild"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/snapshot"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/ticketindex"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
	"github.com/ticketpulse/ticketpulse/services/platform/tick"
	"github.com/ticketpulse/ticketpulse/services/platform/watermark"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Spec is the kpi service as the platform runs it.
var Spec = service.Spec{
	Name:       "kpi",
	Summary:    "kpi keeps per-agent and per-team support KPIs from the TICKETS stream in Redis and serves them over gRPC.",
	GRPCAddr:   "127.0.0.1:9090",
	GRPCServes: "KpiService, KpiAdminService (operators), health, reflection",
	HTTPAddr:   "127.0.0.1:9190",
	AdminAddr:  "127.0.0.1:9290",
	Redis:      true,
	// The write path allocates about 20 KB per event: at Go's default target the collector took
	// about a fifth of the writer's CPU in BenchmarkWritePath, and 400 gave most of it back.
	GCPercent: 400,
	// Every KPI read names its tenant; health and reflection stay open (the gate's own rule).
	Access: map[string]auth.Scope{
		tpv1.KpiService_GetAgentKpis_FullMethodName:      auth.KPIsRead,
		tpv1.KpiService_ListAgentKpis_FullMethodName:     auth.KPIsRead,
		tpv1.KpiService_GetTeamKpis_FullMethodName:       auth.KPIsRead,
		tpv1.KpiService_ListTeamKpis_FullMethodName:      auth.KPIsRead,
		tpv1.KpiService_GetQueueKpis_FullMethodName:      auth.KPIsRead,
		tpv1.KpiService_ListQueueKpis_FullMethodName:     auth.KPIsRead,
		tpv1.KpiService_GetUnassignedKpis_FullMethodName: auth.KPIsRead,
		tpv1.KpiService_ListKpiSeries_FullMethodName:     auth.KPIsRead,
		tpv1.KpiService_ListTicketKpis_FullMethodName:    auth.KPIsRead,
		// A rebuild rewrites a tenant's figures and costs the whole stream's replay: operators only.
		tpv1.KpiAdminService_StartRebuild_FullMethodName: auth.Operator,
		tpv1.KpiAdminService_WatchRebuild_FullMethodName: auth.Operator,
	},
}

// Config is the kpi service's configuration.
type Config struct {
	service.Common
	Consume          consume.Settings
	Workers          int
	SuspectAfter     int
	Retention        time.Duration
	SLA              contrib.SLA
	RulesFile        string
	RulesReload      time.Duration
	SnapshotInterval time.Duration
	StreamReplicas   int
	RollupInterval   time.Duration
	// WatermarkInterval is how often the TICKETS durable's watermark is recorded (0: off).
	WatermarkInterval time.Duration
	RebuildGrace      time.Duration
	RebuildLease      time.Duration
	CompactAfter      time.Duration
	// TicketIndex keeps each ticket's figures in the drill-down index ListTicketKpis reads.
	TicketIndex     bool
	CompactInterval time.Duration
	// ExportsPerTenant and ExportTimeout bound the BI exports on the HTTP port.
	ExportsPerTenant int
	ExportTimeout    time.Duration
}

// defaultSLA are the first-response targets without -sla-first-response.
const defaultSLA = "urgent=1h,high=4h,normal=8h,low=24h"

// Register declares the settings on s.
func (c *Config) Register(s *envflag.Set) {
	c.Common.Register(s, Spec)
	c.Consume.Register(s, consume.Settings{Durable: stream.KPIDurable, BatchMax: 500, Linger: 2 * time.Millisecond, AckWait: 30 * time.Second},
		"TICKETS", "ticket events")
	s.Int(&c.Workers, "workers", 2, "Batches processed concurrently.")
	s.Int(&c.SuspectAfter, "suspect-after", 5, "Delivery count from which a failing batch is retried event by event and the failing event dead-lettered (only while Redis is healthy).")
	s.Duration(&c.Retention, "bucket-retention", 0, "How long KPI buckets are kept after their period ends; 0 keeps them forever.")
	s.Var(newSLAFlag(&c.SLA, defaultSLA), "sla-first-response", "First-response SLA targets per priority in calendar time (tickets without a priority count as normal); used only without -rules-file.")
	s.String(&c.RulesFile, "rules-file", "", "The escalation service's rules file (YAML): its per-tenant SLA policies, business hours, holidays and pausing statuses judge the first-response, next-response and resolution SLA figures as escalation judges them; a tenant without SLA policies then has none. Empty: only the first response is judged, against -sla-first-response in calendar time.")
	s.Duration(&c.RulesReload, "rules-reload", 10*time.Second, "How often the rules file is checked for changes; a changed file that fails validation is logged and the previous policies stay. A change applies to tickets computed after it (a ticket is computed when one of its events arrives).")
	s.Duration(&c.SnapshotInterval, "snapshot-interval", 15*time.Second, "How often changed agents' and teams' snapshots (1h, 24h, 7d and 30d figures) are published to the KPI stream.")
	s.Duration(&c.RollupInterval, "rollup-interval", 10*time.Second, "How often ended days, weeks, months and years are rolled up into their totals (until then queries read their hours, days or months); a pass with nothing new reads each tenant's list of agents and teams.")
	s.Duration(&c.RebuildGrace, "rebuild-grace", rebuild.Defaults.Grace, "After a rebuild (tpctl kpi rebuild) switched readers to the new generation of a tenant's KPI keys, how long the old generation is kept before it is deleted: longer than any KPI read, any batch of the write path (-ack-wait bounds those) and any rollup pass that began before the switch.")
	s.Duration(&c.RebuildLease, "rebuild-lease", rebuild.Defaults.Lease, "How long a rebuild job stays with a kpi replica that stopped renewing it (a crash); then any replica resumes it from its last checkpoint. Replicas renew it every few seconds and look for lapsed jobs every third of it.")
	s.Bool(&c.TicketIndex, "ticket-index", false, "Keep the drill-down index: each ticket's own figures (first response, resolution, reopens, rating, agent, team) by agent, team and tenant and hour, so ListTicketKpis can list the tickets behind a figure. It costs Redis about 450 bytes per ticket (at 1 M events, 138 bytes per event instead of 87) and the write path about a fifth more CPU per event; it expires with the hourly detail and follows rebuilds. Off, ListTicketKpis answers FailedPrecondition and the tickets export 409. Turning it on indexes a ticket at its next event; a rebuild (tpctl kpi rebuild) indexes every ticket still in TICKETS.")
	s.Duration(&c.CompactAfter, "compact-after", 7*24*time.Hour, "How long a solved or closed ticket stays unchanged before its stored events are compacted into a tombstone, which keeps its KPIs and recognises a redelivered event; a new event for it after that is counted in kpi_events_too_late_total, logged and not applied (a rebuild from TICKETS applies it). 0 keeps every ticket's events forever.")
	s.Duration(&c.CompactInterval, "compact-interval", time.Minute, "How often tickets due for compaction are looked for; each pass compacts at most 1000 per tenant and runs again at once while more are due. Ignored when -compact-after is 0.")
	s.Int(&c.StreamReplicas, "stream-replicas", 1, "Replicas of the KPI and DEADLETTER streams (3 on a NATS cluster).")
	consume.RegisterWatermark(s, &c.WatermarkInterval)
	s.Int(&c.ExportsPerTenant, "exports-per-tenant", export.DefaultPerTenant, "Exports (GET /v1/tenants/{tenant}/exports/..., docs/exports.md) of one tenant that may run at once on the HTTP port; more are answered 429.")
	s.Duration(&c.ExportTimeout, "export-timeout", export.DefaultTimeout, "The longest an export may take; one that runs longer is aborted, and the client sees a failed download.")
}

// Validate reports settings that cannot work, naming the flag.
func (c Config) Validate() error {
	var v envflag.Checks
	c.Consume.Check(&v)
	v.AtLeastN("workers", c.Workers, 1)
	v.AtLeastN("suspect-after", c.SuspectAfter, 2)
	v.AtLeastN("exports-per-tenant", c.ExportsPerTenant, 1)
	v.Positive("export-timeout", c.ExportTimeout)
	v.NotNegative("bucket-retention", c.Retention)
	v.Positive("snapshot-interval", c.SnapshotInterval)
	v.Positive("rollup-interval", c.RollupInterval)
	consume.CheckWatermark(&v, c.WatermarkInterval)
	v.Positive("rebuild-grace", c.RebuildGrace)
	v.AtLeast("rebuild-lease", c.RebuildLease, time.Second)
	v.NotNegative("compact-after", c.CompactAfter)
	if c.CompactAfter > 0 {
		v.Positive("compact-interval", c.CompactInterval)
	}
	if c.RulesFile != "" {
		// Without a rules file nothing is reloaded.
		v.Positive("rules-reload", c.RulesReload)
	}
	return v.Err()
}

// Deps are what a test replaces or watches in a running kpi; the zero value is production.
type Deps struct {
	service.Hooks
	// WriteHook, when set, runs after each write-path step; an error aborts the batch there as a
	// crash would.
	WriteHook func(step string) error
	// RebuildBatch, when set, bounds the messages a rebuild replays per write.
	RebuildBatch int
}

// Run is the kpi process: it serves until ctx ends, then stops consuming, finishes the batches in
// hand and shuts down.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if _, set := os.LookupEnv("GOGC"); !set {
		// The write path allocates fast and keeps a small live heap: collecting at 4x the live
		// heap instead of 2x is what let it hold 15,000 events/s (docs/performance.md).
		debug.SetGCPercent(400)
	}
	return Deps{}.Run(ctx, cfg, log)
}

// Run runs kpi with d's hooks.
func (d Deps) Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	rules := &rulesWatcher{path: cfg.RulesFile, log: log}
	if err := rules.load(); err != nil {
		return err
	}
	svc, err := service.New(ctx, Spec, cfg.Common, d.Hooks, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	js, err := svc.JetStream(ctx, stream.Owned("kpi", stream.Settings{Replicas: cfg.StreamReplicas})...)
	if err != nil {
		return err
	}
	rdb := svc.Redis()

	writer := store.NewWriter(rdb, rules.sla(cfg.SLA), cfg.Retention, log)
	if d.WriteHook != nil {
		writer.SetHook(d.WriteHook)
	}
	gens := generation.New(rdb)
	writer.SetGenerations(gens)
	rcfg := rebuild.Defaults
	// A Config built in code without them (Validate refuses zero) gets the defaults.
	if cfg.RebuildGrace > 0 {
		rcfg.Grace = cfg.RebuildGrace
	}
	if cfg.RebuildLease >= time.Second {
		rcfg.Lease = cfg.RebuildLease
	}
	rcfg.Check, rcfg.Checkpoint = rcfg.Lease/3, min(rebuild.Defaults.Checkpoint, rcfg.Lease/3)
	if d.RebuildBatch > 0 {
		rcfg.Batch = d.RebuildBatch
	}
	runner := rebuild.New(ctx, gens, js, writer, rcfg, log)
	dirty := newDirtySet()
	// The KPI stream keeps each agent's and team's latest snapshot, derived from the old
	// generation: after a switch every one of them is published again from the new one.
	runner.OnSwitch(func(ctx context.Context, tenant string) {
		if err := dirty.addAll(ctx, rdb, gens, tenant); err != nil {
			log.Warn("kpi rebuild: queue snapshots of the new generation", "tenant", tenant, "err", err)
		}
	})
	compactMetrics, err := store.NewMetrics(svc.Meter())
	if err != nil {
		return fmt.Errorf("compaction metrics: %w", err)
	}
	writer.SetMetrics(compactMetrics)
	writer.SetFileResolved(cfg.CompactAfter > 0)
	writer.SetTicketIndex(cfg.TicketIndex)
	rollup := store.NewRollup(rdb, cfg.Retention)
	rollup.OnRetired(rcfg.Grace, func(ctx context.Context, ks string) error {
		n, err := gens.Drop(ctx, ks, nil)
		if err == nil && n > 0 {
			log.Info("kpi rebuild: totals a rollup pass wrote into a deleted generation deleted", "keyspace", ks, "keys", n)
		}
		return err
	})
	reader := query.NewReader(rdb)
	publisher := snapshot.NewPublisher(currentReader{reader, gens}, js, time.Now).WithTracer(svc.Tracer())
	healthy := func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	cons, err := consumer.New(js, consumer.Config{
		Durable: cfg.Consume.Durable, BatchMax: cfg.Consume.BatchMax, Linger: cfg.Consume.Linger, Workers: cfg.Workers,
		AckWait: cfg.Consume.AckWait, SuspectAfter: cfg.SuspectAfter,
		// KPIs are derived and idempotent: with its watermark gone (Redis emptied, first start of
		// this version) the whole stream is replayed.
		Watermark: &consume.Watermark{Redis: rdb, Meter: svc.Meter(), Interval: cfg.WatermarkInterval, Missing: watermark.ReplayAll},
		Tracer:    svc.Tracer(),
	}, writer, healthy, dirty.add, svc.Meter(), log)
	if err != nil {
		return fmt.Errorf("consumer metrics: %w", err)
	}

	kpis := grpcapi.NewServer(reader, time.Now, log).WithKeyspaces(gens)
	if cfg.TicketIndex {
		kpis.WithTickets(ticketindex.NewReader(rdb))
	}
	tpv1.RegisterKpiServiceServer(svc.GRPC(), kpis)
	exports, err := export.New(export.Config{
		Auth: auth.NewGate(svc.Tenants(), log),
		Sources: map[string]export.Source{
			"agents": export.NewSeries(kpis, tpv1.ScopeKind_SCOPE_KIND_AGENT, time.Now),
			"teams":  export.NewSeries(kpis, tpv1.ScopeKind_SCOPE_KIND_TEAM, time.Now),
			"queues": export.NewSeries(kpis, tpv1.ScopeKind_SCOPE_KIND_QUEUE, time.Now),
			// Without -ticket-index it answers 409 before any row (docs/exports.md).
			"tickets": export.NewTickets(kpis),
		},
		PerTenant: cfg.ExportsPerTenant, Timeout: cfg.ExportTimeout,
	}, log)
	if err != nil {
		return err
	}
	exports.Register(svc.HTTP())
	tpv1.RegisterKpiAdminServiceServer(svc.GRPC(), adminapi.NewServer(runner, time.Second, log))
	loops := []func(context.Context) error{
		cons.Run,
		runner.Loop,
		func(ctx context.Context) error {
			return dirty.publishEvery(ctx, cfg.SnapshotInterval, publisher, svc.Tracer(), log)
		},
		func(ctx context.Context) error { return rollupEvery(ctx, cfg.RollupInterval, rollup, log) },
		func(ctx context.Context) error { return rules.run(ctx, cfg.RulesReload) },
	}
	if cfg.CompactAfter > 0 {
		compactor := store.NewCompactor(rdb, writer, cfg.CompactAfter, compactBatch, log)
		loops = append(loops, func(ctx context.Context) error { return compactEvery(ctx, cfg.CompactInterval, compactor, log) })
	}
	return svc.Serve(ctx, loops...)
}

// compactBatch bounds the tickets of one tenant a compaction pass reads and compacts: three
// pipelined round trips of at most that many commands.
const compactBatch = 1000

// compactEvery runs compaction passes: again at once while a tenant has more tickets due than a
// batch, otherwise every interval. Replicas may all run it: each ticket is compacted under a
// compare-and-set of its version.
func compactEvery(ctx context.Context, every time.Duration, c *store.Compactor, log *slog.Logger) error {
	for {
		start := time.Now()
		n, err := c.Pass(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("compaction", "err", err)
		case n.Compacted > 0 || n.Finished > 0:
			log.Info("compaction", "compacted", n.Compacted, "finished_pending", n.Finished, "skipped", n.Skipped,
				"took", time.Since(start).Round(time.Millisecond))
		}
		wait := every
		if err == nil && n.More {
			wait = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// currentReader reads a tenant's snapshots from its current key generation.
type currentReader struct {
	r    *query.Reader
	gens *generation.Store
}

func (c currentReader) Read(ctx context.Context, tenant string, qs []query.Query) ([]*bucket.Totals, error) {
	ks, err := c.gens.Current(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return c.r.Read(ctx, ks, qs)
}

// dirtySet collects the agents and teams whose figures changed since the last snapshot round,
// and the traces of the batches that changed them (at most maxSnapshotLinks a tenant).
type dirtySet struct {
	mu      sync.Mutex
	changed map[string]map[bucket.Scope]struct{}
	links   map[string][]trace.Link
}

// maxSnapshotLinks bounds the batches a round of snapshots links to; a busy round links to its
// first ones.
const maxSnapshotLinks = 16

func newDirtySet() *dirtySet {
	return &dirtySet{changed: map[string]map[bucket.Scope]struct{}{}, links: map[string][]trace.Link{}}
}

// add marks what r changed; ctx is the changing batch's, whose span the snapshot links to.
func (d *dirtySet) add(ctx context.Context, r store.Result) {
	sc := trace.SpanContextFromContext(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	for tenant, scopes := range r.Changed {
		if d.changed[tenant] == nil {
			d.changed[tenant] = map[bucket.Scope]struct{}{}
		}
		for s := range scopes {
			d.changed[tenant][s] = struct{}{}
		}
		if sc.IsValid() && len(d.links[tenant]) < maxSnapshotLinks {
			d.links[tenant] = append(d.links[tenant], trace.Link{SpanContext: sc})
		}
	}
}

// addAll marks every agent, team and queue the tenant's current generation ever credited.
func (d *dirtySet) addAll(ctx context.Context, rdb redis.UniversalClient, gens *generation.Store, tenant string) error {
	ks, err := gens.Current(ctx, tenant)
	if err != nil {
		return err
	}
	scopes := map[bucket.Scope]struct{}{}
	for _, set := range []struct {
		key  string
		kind bucket.Kind
	}{{bucket.AllAgentsKey(ks), bucket.Agent}, {bucket.AllTeamsKey(ks), bucket.Team}, {bucket.AllQueuesKey(ks), bucket.Queue}} {
		toks, err := rdb.SMembers(ctx, set.key).Result()
		if err != nil {
			return fmt.Errorf("list %s: %w", set.key, err)
		}
		for _, tok := range toks {
			id, err := idtoken.Unescape(tok)
			if err != nil {
				return fmt.Errorf("%s member %q: %w", set.key, tok, err)
			}
			scopes[bucket.Scope{Kind: set.kind, ID: id}] = struct{}{}
		}
	}
	d.add(ctx, store.Result{Changed: map[string]map[bucket.Scope]struct{}{tenant: scopes}})
	return nil
}

func (d *dirtySet) take() (map[string]map[bucket.Scope]struct{}, map[string][]trace.Link) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out, links := d.changed, d.links
	d.changed, d.links = map[string]map[bucket.Scope]struct{}{}, map[string][]trace.Link{}
	return out, links
}

// Publisher publishes KPI snapshots.
type Publisher interface {
	Publish(ctx context.Context, tenant string, agents, teams, queues []string) error
}

// publishEvery coalesces changes so a busy agent costs one snapshot per interval, not one per
// event. Each tenant's round is a span linked to the batches that changed its figures.
func (d *dirtySet) publishEvery(ctx context.Context, every time.Duration, p Publisher, tracer trace.Tracer, log *slog.Logger) error {
	return tick.Every(ctx, every, func(ctx context.Context) {
		changed, links := d.take()
		for tenant, scopes := range changed {
			var agents, teams, queues []string
			for s := range scopes {
				switch s.Kind {
				case bucket.Agent:
					agents = append(agents, s.ID)
				case bucket.Team:
					teams = append(teams, s.ID)
				case bucket.Queue:
					queues = append(queues, s.ID)
				}
			}
			sctx, span := tracer.Start(ctx, "kpi snapshot", trace.WithNewRoot(), trace.WithLinks(links[tenant]...),
				trace.WithAttributes(telemetry.AttrTenant.String(tenant), attribute.Int("kpi.agents", len(agents)), attribute.Int("kpi.teams", len(teams)), attribute.Int("kpi.queues", len(queues))))
			if err := p.Publish(sctx, tenant, agents, teams, queues); err != nil {
				// Snapshots are the latest figures, not a log: the next change publishes again.
				log.Warn("publish kpi snapshots", "tenant", tenant, "agents", len(agents), "teams", len(teams), "queues", len(queues), "err", err)
				span.RecordError(err)
				span.SetStatus(codes.Error, "publish failed")
			}
			span.End()
		}
	})
}

// rollupEvery derives day, week, month and year totals (a store.Rollup pass) at start and then
// every interval. Until a period has its totals, queries read what they are derived from instead:
// slower, never wrong.
func rollupEvery(ctx context.Context, every time.Duration, r *store.Rollup, log *slog.Logger) error {
	if every <= 0 {
		every = time.Minute
	}
	for {
		start := time.Now()
		n, err := r.Pass(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("rollup", "err", err)
		case n.Days > 0 || n.Weeks > 0 || n.Months > 0 || n.Years > 0:
			log.Info("rollup", "day_totals", n.Days, "week_totals", n.Weeks, "month_totals", n.Months, "year_totals", n.Years,
				"took", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}
