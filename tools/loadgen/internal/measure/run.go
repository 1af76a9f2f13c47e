// Package measure runs the benchmark's measurements against a running stack (NATS with
// JetStream, Redis, ingest, kpi): the raw limits of JetStream and Redis, then the pipeline's
// throughput, latency, query latency and memory, each pipeline figure set against the limits
// measured in the same run.
package measure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/redact"
	"github.com/ticketpulse/ticketpulse/services/platform/redisconn"
	"github.com/ticketpulse/ticketpulse/services/platform/traffic"
)

// Steps in the order they run. Memory is read after the traffic steps and before the queries,
// so the queries' own caching, if any, is not counted as event storage. Overload runs last, and
// only when asked for: it needs an ingest started with a small -max-backlog (-overload-bound).
var Steps = []string{"jetstream", "redis", "pipeline", "latency", "memory", "grpc", "overload"}

// DefaultSteps are the steps of a run that does not name its own.
var DefaultSteps = Steps[:len(Steps)-1]

// Config says where the stack is and how hard to push it.
type Config struct {
	NATSURL, RedisURL, IngestURL, KpiGRPC string
	Tenant                                string
	Label                                 string
	// Sync is the NATS server's sync setting, as the stack was started with ("always" or an
	// interval); with "always" the run reports the durable-ingest figure. Empty: not known.
	Sync             string
	Steps            []string
	Stream, Consumer string
	Headers          http.Header
	// APIKey is sent as "Authorization: Bearer" on every POST and in every gRPC call's metadata;
	// empty sends none.
	APIKey string

	// Traffic shape.
	Agents, Teams int
	Spread        time.Duration
	Interleave    int
	Seed          uint64
	RunID         string

	// Raw limits.
	RawTime       time.Duration
	RawMsgs       int
	RawPending    int
	MsgSize       int
	RedisConns    int
	RedisPipeline int

	// Full-speed pipeline.
	Events       int
	Batch        int
	Posters      int
	Duration     time.Duration
	DrainTimeout time.Duration
	// RollupQuiet is how long kpi's rollup queues must stay empty before queries are measured:
	// longer than kpi's -rollup-interval, so no pass is still at work.
	RollupQuiet time.Duration
	LagInterval time.Duration

	// Fixed-rate latency.
	Rate         int
	RateDuration time.Duration
	ProbeRate    float64
	ProbeAgents  int
	ProbeKPI     string
	ProbeTimeout time.Duration
	PollInterval time.Duration

	// Queries.
	GRPCCalls    int
	GRPCTime     time.Duration
	ListPageSize int

	// Overload: ingest's -max-backlog, the tenant the step posts for (its events are counted in
	// the stream, so no other step may post for it), and how long and how much to post flat out.
	OverloadBound    int64
	OverloadTenant   string
	OverloadEvents   int
	OverloadDuration time.Duration
	OverloadPause    time.Duration
	OverloadSample   time.Duration
}

// Validate rejects settings that would make a step unbounded or meaningless.
func (c Config) Validate() error {
	var errs []error
	for _, s := range c.Steps {
		if !slices.Contains(Steps, s) {
			errs = append(errs, fmt.Errorf("step %q: want some of %s", s, strings.Join(Steps, ",")))
		}
	}
	positive := map[string]int{"batch": c.Batch, "posters": c.Posters, "rate": c.Rate, "probe-agents": c.ProbeAgents,
		"grpc-calls": c.GRPCCalls, "raw-msgs": c.RawMsgs, "raw-pending": c.RawPending, "redis-conns": c.RedisConns,
		"redis-pipeline": c.RedisPipeline, "list-page-size": c.ListPageSize}
	for name, v := range positive {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s %d: want at least 1", name, v))
		}
	}
	durations := map[string]time.Duration{"duration": c.Duration, "drain-timeout": c.DrainTimeout, "rate-duration": c.RateDuration,
		"raw-time": c.RawTime, "grpc-time": c.GRPCTime, "lag-interval": c.LagInterval, "poll-interval": c.PollInterval, "probe-timeout": c.ProbeTimeout}
	for name, d := range durations {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: want a positive duration", name, d))
		}
	}
	if c.Batch < 4 {
		errs = append(errs, fmt.Errorf("batch %d: want at least 4 (a probe ticket rides in a batch)", c.Batch))
	}
	if c.ProbeRate <= 0 {
		errs = append(errs, fmt.Errorf("probe-rate %g: want a positive rate", c.ProbeRate))
	}
	if c.ProbeKPI != "first_response" && c.ProbeKPI != "assigned" {
		errs = append(errs, fmt.Errorf("probe-kpi %q: want first_response or assigned", c.ProbeKPI))
	}
	if c.ListPageSize > 1000 {
		errs = append(errs, fmt.Errorf("list-page-size %d: kpi allows at most 1000", c.ListPageSize))
	}
	if c.Events < 1 {
		errs = append(errs, fmt.Errorf("events %d: want at least 1", c.Events))
	}
	if c.Sync != "" && c.Sync != "always" {
		if d, err := time.ParseDuration(c.Sync); err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("sync %q: want \"always\" or a positive duration such as 2m", c.Sync))
		}
	}
	if c.has("overload") {
		if c.OverloadBound < 1 {
			errs = append(errs, fmt.Errorf("overload-bound %d: the overload step needs ingest's -max-backlog", c.OverloadBound))
		}
		if c.OverloadTenant == "" || c.OverloadTenant == c.Tenant {
			errs = append(errs, fmt.Errorf("overload-tenant %q: want a tenant other than -tenant %q, so the step counts only its own events", c.OverloadTenant, c.Tenant))
		}
		if c.OverloadEvents < 1 {
			errs = append(errs, fmt.Errorf("overload-events %d: want at least 1", c.OverloadEvents))
		}
		for name, d := range map[string]time.Duration{"overload-duration": c.OverloadDuration, "overload-sample": c.OverloadSample} {
			if d <= 0 {
				errs = append(errs, fmt.Errorf("%s %s: want a positive duration", name, d))
			}
		}
		if c.OverloadPause < 0 {
			errs = append(errs, fmt.Errorf("overload-pause %s: want 0 or more", c.OverloadPause))
		}
	}
	return errors.Join(errs...)
}

func (c Config) has(step string) bool { return slices.Contains(c.Steps, step) }

// env holds the connections every step shares.
type env struct {
	cfg   Config
	nc    *nats.Conn
	js    jetstream.JetStream
	rdb   *redis.Client
	kpi   ticketpulsev1.KpiServiceClient
	lag   lagWatch
	runID string
	now   time.Time
}

// traffic is the generator configuration of one phase; phases get disjoint ids.
func (e *env) traffic(phase string, events int) traffic.Config {
	return traffic.Config{
		Agents: e.cfg.Agents, Teams: e.cfg.Teams, Events: events, Seed: e.cfg.Seed + uint64(phase[0]),
		Now: e.now, Spread: e.cfg.Spread, Interleave: e.cfg.Interleave, Prefix: e.runID + "-" + phase,
	}
}

// Result is everything one run measured; steps that were skipped or failed stay nil.
type Result struct {
	Label     string    `json:"label"`
	RunID     string    `json:"run_id"`
	Started   time.Time `json:"started"`
	Settings  Settings  `json:"settings"`
	JetStream *Rate     `json:"jetstream_raw,omitempty"`
	Redis     *Rate     `json:"redis_raw,omitempty"`
	Pipeline  *Pipeline `json:"pipeline,omitempty"`
	Latency   *Latency  `json:"latency,omitempty"`
	Memory    *Memory   `json:"memory,omitempty"`
	Queries   []Query   `json:"queries,omitempty"`
	Overload  *Overload `json:"overload,omitempty"`
	// Durable is the pipeline figure against the raw one-fsync-per-message publish rate, on a
	// server with sync "always".
	Durable *Durable `json:"durable,omitempty"`
	Errors  []string `json:"errors,omitempty"`
	Elapsed float64  `json:"elapsed_seconds"`
	Machine string   `json:"machine"`
	Extra   []string `json:"notes,omitempty"`
}

// Settings records the knobs that shape the figures, so a table can say what it measured.
type Settings struct {
	Agents       int     `json:"agents"`
	Teams        int     `json:"teams"`
	Events       int     `json:"events"`
	Batch        int     `json:"batch"`
	Posters      int     `json:"posters"`
	Rate         int     `json:"rate"`
	RateSeconds  float64 `json:"rate_seconds"`
	ProbeRate    float64 `json:"probe_rate"`
	ListPageSize int     `json:"list_page_size"`
	Sync         string  `json:"sync,omitempty"`
}

// Run measures the configured steps, printing one line per figure to out as it goes. A failed step
// is recorded in the result and the others still run; the returned error joins the failures.
func Run(ctx context.Context, cfg Config, out io.Writer, log *slog.Logger) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	res := &Result{Label: cfg.Label, RunID: cfg.RunID, Started: time.Now().UTC(), Machine: machine(),
		Settings: Settings{Agents: cfg.Agents, Teams: cfg.Teams, Events: cfg.Events, Batch: cfg.Batch, Posters: cfg.Posters,
			Rate: cfg.Rate, RateSeconds: cfg.RateDuration.Seconds(), ProbeRate: cfg.ProbeRate, ListPageSize: cfg.ListPageSize, Sync: cfg.Sync}}
	e := &env{cfg: cfg, runID: cfg.RunID, now: time.Now()}
	var errs []error
	fail := func(step string, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", step, err))
		res.Errors = append(res.Errors, step+": "+err.Error())
		fmt.Fprintf(out, "%-14s FAILED: %v\n", step, err)
	}

	nc, err := nats.Connect(cfg.NATSURL, nats.Name("loadgen"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", redact.URL(cfg.NATSURL), err)
	}
	defer nc.Close()
	e.nc = nc
	if e.js, err = jetstream.New(nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	e.lag = lagWatch{js: e.js, stream: cfg.Stream, consumer: cfg.Consumer}
	if e.rdb, err = redisconn.Open(ctx, cfg.RedisURL); err != nil {
		return nil, err
	}
	defer e.rdb.Close()
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if cfg.APIKey != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer(cfg.APIKey)))
	}
	conn, err := grpc.NewClient(cfg.KpiGRPC, dial...)
	if err != nil {
		return nil, fmt.Errorf("grpc client %s: %w", cfg.KpiGRPC, err)
	}
	defer conn.Close()
	e.kpi = ticketpulsev1.NewKpiServiceClient(conn)
	start := time.Now()

	size := cfg.MsgSize
	if size <= 0 {
		if size, err = meanEventSize(e); err != nil {
			return nil, err
		}
	}
	if cfg.has("jetstream") {
		log.Info("measuring raw JetStream publish rate", "limit", cfg.RawTime)
		r, err := JetStreamRaw(ctx, nc, cfg.RawMsgs, size, cfg.RawPending, cfg.RawTime)
		if err != nil {
			fail("jetstream-raw", err)
		} else {
			res.JetStream = r
			fmt.Fprintf(out, "%-14s %s msgs/s  (%s msgs in %.2f s; %s)\n", "jetstream-raw", Count(r.PerSec), Count(float64(r.Ops)), r.Seconds, r.Note)
		}
	}
	if cfg.has("redis") {
		log.Info("measuring raw Redis script rate", "limit", cfg.RawTime)
		r, err := RedisRaw(ctx, e.rdb, cfg.RedisConns, cfg.RedisPipeline, cfg.Agents, cfg.RawTime)
		if err != nil {
			fail("redis-raw", err)
		} else {
			res.Redis = r
			fmt.Fprintf(out, "%-14s %s scripts/s  (%s in %.2f s; %s)\n", "redis-raw", Count(r.PerSec), Count(float64(r.Ops)), r.Seconds, r.Note)
		}
	}

	sendsTraffic := cfg.has("pipeline") || cfg.has("latency")
	overload := cfg.has("overload")
	if overload {
		if err := e.lag.waitConsumer(ctx, 30*time.Second); err != nil {
			fail("overload", err)
			overload = false
		}
	}
	var memBefore redisMemory
	if sendsTraffic {
		if err := e.lag.waitConsumer(ctx, 30*time.Second); err != nil {
			fail("pipeline", err)
			sendsTraffic = false
		}
	}
	if sendsTraffic && cfg.has("memory") {
		if memBefore, err = readMemory(ctx, e.rdb); err != nil {
			fail("memory", err)
		}
	}
	stored := 0
	memoryValid := true
	if sendsTraffic && cfg.has("pipeline") {
		log.Info("posting at full speed", "events", cfg.Events, "posters", cfg.Posters, "limit", cfg.Duration)
		p, err := runPipeline(ctx, e)
		if err != nil {
			fail("pipeline", err)
			// Some of its events are stored but not counted: a memory figure would be inflated.
			memoryValid = false
		} else {
			res.Pipeline = p
			stored += p.Accepted
			printPipeline(out, res)
			if res.Durable = durable(res); res.Durable != nil {
				printDurable(out, res.Durable)
			}
		}
	}
	if sendsTraffic && cfg.has("latency") {
		log.Info("posting at a fixed rate with probes", "rate", cfg.Rate, "for", cfg.RateDuration)
		l, err := runLatency(ctx, e)
		if l != nil {
			res.Latency = l
			stored += l.Events
			printLatency(out, l)
		}
		if err != nil {
			fail("latency", err)
		}
	}
	// The memory figure and the queries should see every event written; waiting is quick when kpi
	// kept up.
	caughtUp := false
	if sendsTraffic && stored > 0 {
		if seq, err := e.lag.lastSeq(ctx); err == nil {
			if _, _, err := e.lag.waitDrained(ctx, seq, cfg.DrainTimeout); err != nil {
				res.Extra = append(res.Extra, "after the traffic: "+err.Error())
			} else {
				caughtUp = true
			}
		}
	}
	if sendsTraffic && cfg.has("memory") && !memoryValid {
		fail("memory", errors.New("not measured: the pipeline step failed, so the events stored are not known"))
	}
	if sendsTraffic && cfg.has("memory") && memoryValid && stored > 0 {
		if !caughtUp {
			res.Extra = append(res.Extra, "memory was read before kpi had caught up: bytes per event is an underestimate")
		}
		m, err := e.memoryAfter(ctx, memBefore, stored)
		if err != nil {
			fail("memory", err)
		} else {
			res.Memory = m
			fmt.Fprintf(out, "%-14s Redis %s B/event (used_memory %+.1f MB for %s events; dataset %s B/event; %s keys); JetStream %s B/msg (%s msgs, %.1f MB)\n",
				"memory", Count(m.BytesPerEvent), float64(m.UsedAfter-m.UsedBefore)/1e6, Count(float64(m.Events)), Count(m.DatasetPerEvent),
				Count(float64(m.Keys)), Count(m.StreamPerMsg), Count(float64(m.StreamMsgs)), float64(m.StreamBytes)/1e6)
		}
	}
	if cfg.has("grpc") && sendsTraffic && stored > 0 {
		// The rollup starts on the days the traffic touched every -rollup-interval; a 28-day
		// backfill keeps it busy for a while, and queries meanwhile read hours instead of totals.
		took, err := e.waitRollup(ctx, cfg.RollupQuiet, 3*time.Minute)
		if err != nil {
			res.Extra = append(res.Extra, "queries measured before the rollup finished: "+err.Error())
		} else {
			res.Extra = append(res.Extra, fmt.Sprintf("kpi's rollup had derived the totals of every ended day and week %.1f s after kpi caught up (queues then empty for %s); queries were measured then", took.Seconds(), cfg.RollupQuiet))
		}
		log.Info("rollup settled", "waited", took.Round(time.Millisecond))
	}
	if cfg.has("grpc") {
		log.Info("measuring query latency", "calls", cfg.GRPCCalls, "limit", cfg.GRPCTime)
		qs, err := runQueries(ctx, e)
		res.Queries = qs
		for _, q := range qs {
			fmt.Fprintf(out, "%-14s %-32s %s, %d rows\n", "grpc", q.Name, q.Latency, q.Rows)
		}
		if err != nil {
			fail("grpc", err)
		}
	}
	if overload {
		log.Info("posting flat out against the backlog bound", "bound", cfg.OverloadBound, "posters", cfg.Posters, "limit", cfg.OverloadDuration)
		o, err := runOverload(ctx, e)
		if err != nil {
			fail("overload", err)
		} else {
			res.Overload = o
			printOverload(out, res)
		}
	}
	res.Elapsed = time.Since(start).Seconds()
	return res, errors.Join(errs...)
}

// meanEventSize is the mean encoded size of a generated event, so the raw JetStream figure is
// measured with messages as large as the ones ingest stores.
func meanEventSize(e *env) (int, error) {
	g, err := traffic.New(e.traffic("s", 2000))
	if err != nil {
		return 0, err
	}
	total, n := 0, 0
	for {
		ev, ok := g.Next()
		if !ok {
			break
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return 0, fmt.Errorf("encode event: %w", err)
		}
		total += len(b)
		n++
	}
	return total / max(n, 1), nil
}

func printPipeline(out io.Writer, res *Result) {
	p := res.Pipeline
	cut := ""
	if p.CutShort {
		cut = fmt.Sprintf(", cut short by the time limit at %s of %s", Count(float64(p.Accepted)), Count(float64(p.Target)))
	}
	drained := ""
	if !p.Drained {
		drained = " (NOT drained in time: lower bound)"
	}
	fmt.Fprintf(out, "%-14s %s events/s POST→KPI-visible%s  (%s events, %d posters × %d/batch, %.1f s%s)\n",
		"pipeline", Count(p.VisibleRate), drained, Count(float64(p.Accepted)), p.Posters, p.Batch, p.VisibleSeconds, cut)
	fmt.Fprintf(out, "%-14s = %s × raw JetStream publish, %s × raw Redis scripts\n", "pipeline",
		fmtRatio(Ratio(p.VisibleRate, rateOf(res.JetStream))), fmtRatio(Ratio(p.VisibleRate, rateOf(res.Redis))))
	drain := "kpi had no backlog worth timing when posting ended"
	if p.DrainRate > 0 {
		drain = "kpi worked off the backlog left at " + Count(p.DrainRate) + " events/s"
	}
	fmt.Fprintf(out, "%-14s ingest accepted %s events/s (= %s × raw JetStream); %s; POST %s; %d retries\n",
		"pipeline", Count(p.IngestRate), fmtRatio(Ratio(p.IngestRate, rateOf(res.JetStream))), drain, p.Post, p.Retries)
	fmt.Fprintf(out, "%-14s kpi backlog max %s msgs, trend %s while posting; samples: %s\n", "pipeline-lag", Count(float64(p.Lag.Max)), p.Lag.TrendString(), p.Lag)
}

func printLatency(out io.Writer, l *Latency) {
	fmt.Fprintf(out, "%-14s POST→KPI readable (%s) %s; %d probes, %d timed out\n", "latency", l.KPI, l.Visible, l.Probes, l.TimedOut)
	held := "rate held"
	if !l.RateHeld() {
		held = "RATE NOT HELD: the pipeline could not take this load"
	}
	fmt.Fprintf(out, "%-14s target %s events/s, achieved %s for %.1f s (%d late batches, %s); POST %s\n",
		"latency", Count(float64(l.TargetRate)), Count(l.AchievedRate), l.Seconds, l.Late, held, l.Post)
	_, verdict := l.Lag.KeptUp(float64(l.TargetRate))
	fmt.Fprintf(out, "%-14s kpi backlog max %s msgs, trend %s: %s; samples: %s\n", "latency-lag", Count(float64(l.Lag.Max)), l.Lag.TrendString(), verdict, l.Lag)
}

// machine names what the figures were measured on; everything runs on it at once.
func machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}

func rateOf(r *Rate) float64 {
	if r == nil {
		return 0
	}
	return r.PerSec
}
