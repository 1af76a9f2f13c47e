// Command kpi consumes ticket events from JetStream, keeps per-agent and per-team KPIs in Redis and
// serves them over gRPC (ticketpulse.v1.KpiService).
package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/app"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
)

func main() {
	var cfg app.Config
	var sla string
	register := func(s *envflag.Set) {
		cfg.Config.Register(s, "127.0.0.1:9090", "127.0.0.1:9190", "KpiService, health, reflection")
		s.String(&cfg.Durable, "durable", "kpi", "Name of the durable JetStream consumer; replicas share it.")
		s.Int(&cfg.BatchMax, "batch-max", 500, "Most events written to Redis in one batch.")
		s.Duration(&cfg.Linger, "batch-linger", 2*time.Millisecond, "How long to wait for more events once one arrived; keeps latency low when traffic is light.")
		s.Int(&cfg.Workers, "workers", 2, "Batches processed concurrently.")
		s.Duration(&cfg.AckWait, "ack-wait", 30*time.Second, "How long JetStream waits for an ack before redelivering an event.")
		s.Int(&cfg.SuspectAfter, "suspect-after", 5, "Delivery count from which a failing batch is retried event by event and the failing event dead-lettered (only while Redis is healthy).")
		s.Duration(&cfg.Retention, "bucket-retention", 0, "How long KPI buckets are kept after their period ends; 0 keeps them forever.")
		s.String(&sla, "sla-first-response", "urgent=1h,high=4h,normal=8h,low=24h", "First-response SLA targets per priority (tickets without a priority count as normal).")
		s.Duration(&cfg.SnapshotInterval, "snapshot-interval", 15*time.Second, "How often changed agents' and teams' snapshots (1h, 24h, 7d and 30d figures) are published to the KPI stream.")
		s.Duration(&cfg.RollupInterval, "rollup-interval", 10*time.Second, "How often ended days and weeks are rolled up into day and week totals (until then queries read their hours and days); a pass with nothing new reads each tenant's list of agents and teams.")
		s.Bool(&cfg.Pprof, "pprof", false, "Serve Go runtime profiles under /debug/pprof/ on the HTTP address.")
		s.Int(&cfg.StreamReplicas, "stream-replicas", 1, "Replicas of the KPI and DEADLETTER streams (3 on a NATS cluster).")
	}
	run := func(ctx context.Context, log *slog.Logger) error {
		if _, set := os.LookupEnv("GOGC"); !set {
			// The write path allocates fast and keeps a small live heap: collecting at 4x the live
			// heap instead of 2x is what let it hold 15,000 events/s (docs/performance.md).
			debug.SetGCPercent(400)
		}
		parsed, err := app.ParseSLA(sla)
		if err != nil {
			return err
		}
		cfg.SLA = parsed
		return app.Run(ctx, cfg, log)
	}
	os.Exit(service.Main("kpi", "kpi keeps per-agent and per-team support KPIs from the TICKETS stream in Redis and serves them over gRPC.",
		os.Args[1:], os.Stderr, &cfg.Common, register, run))
}
