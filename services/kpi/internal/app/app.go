// Package app wires the kpi service: the TICKETS consumer and write path, the gRPC KpiService, KPI
// snapshots, and the health and metrics endpoints.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/consumer"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/grpcapi"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/snapshot"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/natsconn"
	"github.com/ticketpulse/ticketpulse/services/platform/serve"
	"github.com/ticketpulse/ticketpulse/services/platform/shell"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// Config is the kpi service's configuration.
type Config struct {
	shell.Config
	Durable          string
	BatchMax         int
	Linger           time.Duration
	Workers          int
	AckWait          time.Duration
	SuspectAfter     int
	Retention        time.Duration
	SLA              contrib.SLA
	SnapshotInterval time.Duration
	StreamReplicas   int
	Pprof            bool
	RollupInterval   time.Duration

	// OnListen, when set, receives the bound addresses (tests listen on port 0).
	OnListen func(grpcAddr, httpAddr string)
	// WriteHook, when set, runs after each write-path step; an error aborts the batch there as a
	// crash would. Tests only.
	WriteHook func(step string) error
}

// Validate reports settings that cannot work, naming the flag.
func (c Config) Validate() error {
	var v envflag.Checks
	v.AtLeastN("batch-max", c.BatchMax, 1)
	v.AtLeastN("workers", c.Workers, 1)
	v.NotNegative("batch-linger", c.Linger)
	v.AtLeast("ack-wait", c.AckWait, time.Second)
	v.AtLeastN("suspect-after", c.SuspectAfter, 2)
	v.NotNegative("bucket-retention", c.Retention)
	v.Positive("snapshot-interval", c.SnapshotInterval)
	v.Positive("rollup-interval", c.RollupInterval)
	return v.Err()
}

// Run serves until ctx ends, then stops consuming, finishes the batches in hand and shuts down.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	a, err := shell.New(ctx, "kpi", cfg.Config, log)
	if err != nil {
		return err
	}
	js, err := a.JetStream(ctx, natsconn.KPIConfig(cfg.StreamReplicas), natsconn.DeadletterConfig(cfg.StreamReplicas))
	if err != nil {
		a.Close()
		return err
	}
	rdb := a.Redis()

	writer := store.NewWriter(rdb, func(string) contrib.SLA { return cfg.SLA }, cfg.Retention, log)
	if cfg.WriteHook != nil {
		writer.SetHook(cfg.WriteHook)
	}
	rollup := store.NewRollup(rdb, cfg.Retention)
	reader := query.NewReader(rdb)
	publisher := snapshot.NewPublisher(reader, js, time.Now)
	dirty := newDirtySet()
	healthy := func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	cons, err := consumer.New(js, consumer.Config{
		Durable: cfg.Durable, BatchMax: cfg.BatchMax, Linger: cfg.Linger, Workers: cfg.Workers,
		AckWait: cfg.AckWait, SuspectAfter: cfg.SuspectAfter,
	}, writer, healthy, dirty.add, a.Meter(), log)
	if err != nil {
		a.Close()
		return fmt.Errorf("consumer metrics: %w", err)
	}

	if cfg.OnListen != nil {
		cfg.OnListen(a.GRPCAddr(), a.HTTPAddr())
	}
	if cfg.Pprof {
		a.HandleHTTP(serve.AddPprof)
	}
	register := func(gs *grpc.Server, hs *health.Server) {
		tpv1.RegisterKpiServiceServer(gs, grpcapi.NewServer(reader, time.Now, log))
		hs.SetServingStatus(tpv1.KpiService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	}
	return a.Serve(ctx, register,
		cons.Run,
		func(ctx context.Context) error { return dirty.publishEvery(ctx, cfg.SnapshotInterval, publisher, log) },
		func(ctx context.Context) error { return rollupEvery(ctx, cfg.RollupInterval, rollup, log) })
}

// dirtySet collects the agents and teams whose figures changed since the last snapshot round.
type dirtySet struct {
	mu      sync.Mutex
	changed map[string]map[bucket.Scope]struct{}
}

func newDirtySet() *dirtySet { return &dirtySet{changed: map[string]map[bucket.Scope]struct{}{}} }

func (d *dirtySet) add(r store.Result) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for tenant, scopes := range r.Changed {
		if d.changed[tenant] == nil {
			d.changed[tenant] = map[bucket.Scope]struct{}{}
		}
		for s := range scopes {
			d.changed[tenant][s] = struct{}{}
		}
	}
}

func (d *dirtySet) take() map[string]map[bucket.Scope]struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.changed
	d.changed = map[string]map[bucket.Scope]struct{}{}
	return out
}

// Publisher publishes KPI snapshots.
type Publisher interface {
	Publish(ctx context.Context, tenant string, agents, teams []string) error
}

// publishEvery coalesces changes so a busy agent costs one snapshot per interval, not one per event.
func (d *dirtySet) publishEvery(ctx context.Context, every time.Duration, p Publisher, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for tenant, scopes := range d.take() {
			var agents, teams []string
			for s := range scopes {
				switch s.Kind {
				case bucket.Agent:
					agents = append(agents, s.ID)
				case bucket.Team:
					teams = append(teams, s.ID)
				}
			}
			if err := p.Publish(ctx, tenant, agents, teams); err != nil {
				// Snapshots are the latest figures, not a log: the next change publishes again.
				log.Warn("publish kpi snapshots", "tenant", tenant, "agents", len(agents), "teams", len(teams), "err", err)
			}
		}
	}
}

// rollupEvery derives day and week totals (a store.Rollup pass) at start and then every interval.
// Until a day or week has its totals, queries read its hours or days instead: slower, never wrong.
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
		case n.Days > 0 || n.Weeks > 0:
			log.Info("rollup", "day_totals", n.Days, "week_totals", n.Weeks, "took", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}
