// Command loadgen generates realistic helpdesk traffic and measures the Ticketpulse pipeline
// (ingest → JetStream → kpi → Redis → gRPC) against the raw limits of JetStream and Redis
// measured in the same run. `make bench` drives it through scripts/bench.sh.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/traffic"
	"github.com/ticketpulse/ticketpulse/tools/loadgen/internal/measure"
	"github.com/ticketpulse/ticketpulse/tools/loadgen/internal/stack"
)

const usage = `loadgen generates realistic helpdesk traffic and benchmarks the Ticketpulse pipeline.

Usage:
  loadgen all    [flags]   measure everything against a running stack, in one run
  loadgen stack  [flags]   run NATS (embedded), redis-server, ingest and kpi on loopback until stopped
  loadgen gen    [flags]   print generated events, one JSON batch per line
  loadgen report FILE...   merge the JSON results of "all -json" into one markdown table

"loadgen <command> -h" documents every flag of a command. Every figure is bounded in count and
time, and only loopback addresses are accepted.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var err error
	switch args[0] {
	case "all":
		err = cmdAll(ctx, args[1:], stdout, stderr, log)
	case "stack":
		err = cmdStack(ctx, args[1:], stderr, log)
	case "gen":
		err = cmdGen(args[1:], stdout, stderr)
	case "report":
		err = cmdReport(args[1:], stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "loadgen: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "loadgen %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "loadgen %s: %v\n", args[0], err)
		return 1
	}
}

// usageError is a bad flag or argument: exit code 2, as for flag parsing errors.
type usageError struct{ error }

func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("loadgen "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nUsage: loadgen %s [flags]\n\n", summary, name)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return nil
}

// headerFlag collects repeated "Name: value" flags.
type headerFlag http.Header

func (h headerFlag) String() string { return "" }
func (h headerFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("header %q: want \"Name: value\"", v)
	}
	http.Header(h).Add(strings.TrimSpace(k), strings.TrimSpace(val))
	return nil
}

// listFlag collects repeated string flags.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func cmdAll(ctx context.Context, args []string, stdout, stderr io.Writer, log *slog.Logger) error {
	fs := newFlagSet("all", "Measures, in one run against a running stack: the raw JetStream publish rate and the raw Redis\n"+
		"script rate (the limits), the pipeline's full-speed throughput until KPIs are visible, POST → KPI\n"+
		"latency at a fixed rate, Redis memory per event and gRPC query latency. Each figure is printed as\n"+
		"it is measured, pipeline figures also as a ratio to the limits, then a markdown summary table.", stderr)
	var c measure.Config
	var steps, jsonOut, mdOut, keyFile string
	var timeout time.Duration
	var seed uint64
	headers := headerFlag{}
	fs.StringVar(&c.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS URL of the stack's server; the raw JetStream figure is measured on a scratch stream there.")
	fs.StringVar(&c.RedisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL kpi writes to; the raw script figure and the memory figure are measured there.")
	fs.StringVar(&c.IngestURL, "ingest-url", "http://127.0.0.1:8080", "Base URL of ingest's HTTP API (events go to <url>/v1/tenants/<tenant>/events).")
	fs.StringVar(&c.KpiGRPC, "kpi-grpc", "127.0.0.1:9090", "host:port of kpi's gRPC KpiService.")
	fs.StringVar(&c.Tenant, "tenant", stack.Tenant, "Tenant the traffic belongs to; ingest's tenants file must name it (loadgen stack's names "+stack.Tenant+" and "+stack.OverloadTenant+").")
	fs.StringVar(&keyFile, "api-key-file", "", "File holding the API key sent as \"Authorization: Bearer\" on every POST and gRPC call (loadgen stack writes one with every scope on its tenants: API_KEY_FILE in its env file); it needs events:write and kpis:read on -tenant and -overload-tenant. Empty sends no key, which the services refuse.")
	fs.StringVar(&c.Label, "label", "run", "Column name of this run in the summary table, e.g. \"sync 2m\".")
	fs.StringVar(&c.Sync, "sync", "", "The NATS server's JetStream sync setting, as the stack was started with (\"always\" or an interval such as 2m); recorded in the result, and with \"always\" the pipeline figure is also reported as the durable-ingest figure: POST → KPI-visible events/s over the raw publish rate, where every message is one fsync (goal ≥ 15,000 events/s and ≥ 2 ×). Empty: not known, no durable figure.")
	fs.StringVar(&steps, "steps", strings.Join(measure.DefaultSteps, ","), "Comma-separated steps to run, of "+strings.Join(measure.Steps, ", ")+" (memory needs pipeline or latency; overload needs -overload-bound and an ingest started with that -max-backlog).")
	fs.StringVar(&c.Stream, "stream", stream.TicketsName, "JetStream stream ingest stores events in.")
	fs.StringVar(&c.Consumer, "consumer", stream.KPIDurable, "Durable consumer of kpi on that stream; its backlog (pending + unacknowledged) reaching 0 means every event is KPI-visible.")
	fs.Var(headers, "header", "Extra HTTP header for every POST, as \"Name: value\"; repeatable.")
	fs.IntVar(&c.Agents, "agents", 500, "Agents in the generated traffic.")
	fs.IntVar(&c.Teams, "teams", 25, "Teams the agents belong to (agent i is in team i mod teams).")
	fs.DurationVar(&c.Spread, "spread", 28*24*time.Hour, "Tickets are created uniformly over this much time before now, so 30-day queries have data.")
	fs.IntVar(&c.Interleave, "interleave", 256, "Tickets whose events are in flight at once; each batch mixes events of many of them.")
	fs.Uint64Var(&seed, "seed", 1, "Seed of the traffic; the same seed and run id give the same events and ids.")
	fs.StringVar(&c.RunID, "run-id", strconv.FormatInt(time.Now().Unix(), 36), "Namespace of this run's event and ticket ids, so runs against the same stream never collide in JetStream's duplicate window.")
	fs.DurationVar(&c.RawTime, "raw-time", 5*time.Second, "Time limit of each raw limit measurement (JetStream, Redis).")
	fs.IntVar(&c.RawMsgs, "raw-msgs", 1_000_000, "Most messages the raw JetStream measurement publishes.")
	fs.IntVar(&c.RawPending, "raw-pending", 4000, "Most unacknowledged async publishes in flight in the raw JetStream measurement.")
	fs.IntVar(&c.MsgSize, "msg-size", 0, "Message size of the raw JetStream measurement; 0 uses the mean size of a generated event.")
	fs.IntVar(&c.RedisConns, "redis-conns", 2, "Connections sending pipelines in the raw Redis measurement.")
	fs.IntVar(&c.RedisPipeline, "redis-pipeline", 100, "Scripts per pipeline in the raw Redis measurement.")
	fs.IntVar(&c.Events, "events", 300_000, "Events the full-speed pipeline measurement posts (bounded also by -duration).")
	fs.IntVar(&c.Batch, "batch", 100, "Events per POST.")
	fs.IntVar(&c.Posters, "posters", 8, "Concurrent posters (HTTP requests in flight).")
	fs.DurationVar(&c.Duration, "duration", 60*time.Second, "Time limit for posting in the full-speed measurement; what was accepted by then is measured.")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 60*time.Second, "How long to wait, after posting, for kpi to work off its backlog.")
	fs.DurationVar(&c.RollupQuiet, "rollup-quiet", 12*time.Second, "Before the queries: how long kpi's rollup queues must stay empty (more than kpi's -rollup-interval) for the store to count as settled.")
	fs.DurationVar(&c.LagInterval, "lag-interval", time.Second, "How often the kpi consumer's backlog is sampled.")
	fs.IntVar(&c.Rate, "rate", 2000, "Events per second of the fixed-rate latency measurement.")
	fs.DurationVar(&c.RateDuration, "rate-duration", 20*time.Second, "How long the fixed-rate latency measurement sends.")
	fs.Float64Var(&c.ProbeRate, "probe-rate", 5, "Probe tickets per second inside the fixed-rate traffic; each one's POST → KPI readable time is one latency sample.")
	fs.IntVar(&c.ProbeAgents, "probe-agents", 16, "Agents the probes rotate over (ids loadgen-probe-NN, team "+measure.ProbeTeam+").")
	fs.StringVar(&c.ProbeKPI, "probe-kpi", "first_response", "Figure whose increment shows a probe is visible: first_response (count) or assigned.")
	fs.DurationVar(&c.ProbeTimeout, "probe-timeout", 10*time.Second, "How long after the fixed-rate phase to wait for probes still not visible (they count as timed out).")
	fs.DurationVar(&c.PollInterval, "poll-interval", 5*time.Millisecond, "How often GetAgentKpis is polled for probes in flight: the resolution of the latency figure.")
	fs.IntVar(&c.GRPCCalls, "grpc-calls", 300, "Calls per query kind in the gRPC latency measurement (bounded also by -grpc-time).")
	fs.DurationVar(&c.GRPCTime, "grpc-time", 5*time.Second, "Time limit per query kind in the gRPC latency measurement.")
	fs.IntVar(&c.ListPageSize, "list-page-size", 500, "page_size of the measured ListAgentKpis call (kpi allows at most 1000).")
	fs.StringVar(&c.OverloadTenant, "overload-tenant", stack.OverloadTenant, "Tenant the overload step posts for; not -tenant, since the step counts the events the stream gains for it.")
	fs.Int64Var(&c.OverloadBound, "overload-bound", 0, "The overload step's bound: the -max-backlog ingest was started with; the kpi backlog's max is reported as a fraction of it.")
	fs.IntVar(&c.OverloadEvents, "overload-events", 600_000, "Most events the overload step posts (bounded also by -overload-duration); they are encoded before the clock starts.")
	fs.DurationVar(&c.OverloadDuration, "overload-duration", 30*time.Second, "How long the overload step posts flat out.")
	fs.DurationVar(&c.OverloadPause, "overload-pause", 10*time.Millisecond, "How long a poster of the overload step waits before sending a batch refused with 429 or 503 again (it ignores the longer Retry-After on purpose).")
	fs.DurationVar(&c.OverloadSample, "overload-sample", 100*time.Millisecond, "How often the overload step samples the kpi consumer's backlog.")
	fs.StringVar(&jsonOut, "json", "", "Write the result as JSON to this file (for \"loadgen report\").")
	fs.StringVar(&mdOut, "markdown", "", "Write the summary table to this file too.")
	fs.DurationVar(&timeout, "timeout", 10*time.Minute, "Hard limit for the whole run.")
	if err := parse(fs, args); err != nil {
		return err
	}
	c.Seed = seed
	c.Steps = strings.Split(steps, ",")
	c.Headers = http.Header(headers)
	if keyFile != "" {
		key, err := readKey(keyFile)
		if err != nil {
			return usageError{err}
		}
		c.APIKey = key
	}
	if err := checkLoopback(c); err != nil {
		return usageError{err}
	}
	if err := c.Validate(); err != nil {
		return usageError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fmt.Fprintf(stdout, "== %s (run %s) ==\n", c.Label, c.RunID)
	res, runErr := measure.Run(ctx, c, stdout, log)
	if res == nil {
		return runErr
	}
	md := measure.Markdown([]*measure.Result{res})
	fmt.Fprintf(stdout, "\n%s\n", md)
	if jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return errors.Join(runErr, fmt.Errorf("encode result: %w", err))
		}
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return errors.Join(runErr, fmt.Errorf("write %s: %w", jsonOut, err))
		}
	}
	if mdOut != "" {
		if err := os.WriteFile(mdOut, []byte(md+"\n"), 0o644); err != nil {
			return errors.Join(runErr, fmt.Errorf("write %s: %w", mdOut, err))
		}
	}
	return runErr
}

// maxKeyFile bounds what is read of -api-key-file; a key is 47 bytes.
const maxKeyFile = 4 << 10

// readKey reads an API key from path. Errors never quote the content: it is a credential.
func readKey(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("api-key-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return "", fmt.Errorf("api-key-file %s: %w", path, err)
	}
	key := strings.TrimSpace(string(b))
	switch {
	case len(b) > maxKeyFile:
		return "", fmt.Errorf("api-key-file %s: more than %d bytes, not an API key", path, maxKeyFile)
	case key == "":
		return "", fmt.Errorf("api-key-file %s: empty", path)
	case strings.ContainsAny(key, " \t\r\n"):
		return "", fmt.Errorf("api-key-file %s: want one API key, found several words", path)
	}
	return key, nil
}

// checkLoopback refuses targets off this machine: a benchmark at full speed is not something to
// point at a shared server by a typo.
func checkLoopback(c measure.Config) error {
	hosts := map[string]string{}
	for name, raw := range map[string]string{"nats-url": c.NATSURL, "redis-url": c.RedisURL, "ingest-url": c.IngestURL} {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("%s %q: %w", name, raw, err)
		}
		hosts[name] = u.Hostname()
	}
	h, _, err := net.SplitHostPort(c.KpiGRPC)
	if err != nil {
		return fmt.Errorf("kpi-grpc %q: %w", c.KpiGRPC, err)
	}
	hosts["kpi-grpc"] = h
	for name, h := range hosts {
		if !isLoopback(h) {
			return fmt.Errorf("%s host %q is not a loopback address; loadgen only targets this machine", name, h)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func cmdStack(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error {
	fs := newFlagSet("stack", "Runs the pipeline on loopback for a benchmark: the embedded NATS server with JetStream (file store,\n"+
		"the given sync setting), redis-server with AOF (appendfsync everysec), ingest and kpi on free ports.\n"+
		"Both read <dir>/tenants.yaml, written first: tenants "+stack.Tenant+" and "+stack.OverloadTenant+" with a rate limit no machine reaches\n"+
		"and a new operator API key in <dir>/api-key (mode 0600) for \"loadgen all -api-key-file\".\n"+
		"When all are ready it writes their addresses to -env-file (NATS_URL, REDIS_URL, INGEST_URL, KPI_GRPC,\n"+
		"KPI_HTTP, TENANTS_FILE, API_KEY_FILE) and runs until SIGINT/SIGTERM, -lifetime, or a service exiting; then\n"+
		"it stops them all.", stderr)
	var c stack.Config
	var ingestArgs, kpiArgs listFlag
	fs.StringVar(&c.Dir, "dir", "", "Directory for the NATS store, Redis data and logs (logs/ingest.log, logs/kpi.log, logs/redis.log). Required.")
	fs.StringVar(&c.Sync, "sync", "2m", "JetStream sync setting: \"always\" (fsync before every acknowledgement) or an interval such as 2m (the NATS default).")
	fs.StringVar(&c.IngestBin, "ingest-bin", "", "Path of the built ingest binary (go build -o <path> ./services/ingest/cmd/ingest). Required.")
	fs.StringVar(&c.KpiBin, "kpi-bin", "", "Path of the built kpi binary (go build -o <path> ./services/kpi/cmd/kpi). Required.")
	fs.Var(&ingestArgs, "ingest-arg", "Extra command-line argument for ingest; repeatable.")
	fs.Var(&kpiArgs, "kpi-arg", "Extra command-line argument for kpi; repeatable.")
	fs.StringVar(&c.EnvFile, "env-file", "", "File the addresses are written to once everything is ready; removed on exit. Default <dir>/stack.env.")
	fs.DurationVar(&c.Lifetime, "lifetime", 15*time.Minute, "The stack stops by itself after this long.")
	fs.BoolVar(&c.ServersOnly, "servers-only", false, "Run only NATS and Redis (no ingest, no kpi): for the raw limits alone, or to run the services by hand.")
	fs.DurationVar(&c.ReadyTimeout, "ready-timeout", 30*time.Second, "How long each service may take to answer 200 on /readyz.")
	if err := parse(fs, args); err != nil {
		return err
	}
	var missing []string
	for name, v := range map[string]string{"dir": c.Dir, "ingest-bin": c.IngestBin, "kpi-bin": c.KpiBin} {
		if v == "" && (name == "dir" || !c.ServersOnly) {
			missing = append(missing, "-"+name)
		}
	}
	if len(missing) > 0 {
		return usageError{fmt.Errorf("missing %s", strings.Join(missing, ", "))}
	}
	if c.EnvFile == "" {
		c.EnvFile = filepath.Join(c.Dir, "stack.env")
	}
	c.IngestArgs, c.KpiArgs = ingestArgs, kpiArgs
	return stack.Run(ctx, c, log)
}

func cmdGen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", "Prints generated traffic, one JSON array (a POST body) per line, and a summary of the mix on stderr.", stderr)
	c := traffic.Config{Now: time.Now()}
	var batch int
	fs.IntVar(&c.Agents, "agents", 500, "Agents.")
	fs.IntVar(&c.Teams, "teams", 25, "Teams.")
	fs.IntVar(&c.Events, "events", 20, "Most events printed.")
	fs.IntVar(&c.Tickets, "tickets", 0, "Most tickets started; 0 leaves it to -events.")
	fs.IntVar(&batch, "batch", 100, "Events per line.")
	fs.Uint64Var(&c.Seed, "seed", 1, "Seed of the traffic.")
	fs.DurationVar(&c.Spread, "spread", 28*24*time.Hour, "Tickets are created uniformly over this much time before now.")
	fs.IntVar(&c.Interleave, "interleave", 256, "Tickets whose events are in flight at once.")
	fs.StringVar(&c.Prefix, "prefix", "gen", "Namespace of event and ticket ids.")
	if err := parse(fs, args); err != nil {
		return err
	}
	if batch < 1 {
		return usageError{fmt.Errorf("batch %d: want at least 1", batch)}
	}
	g, err := traffic.New(c)
	if err != nil {
		return usageError{err}
	}
	types := map[string]int{}
	var buf []traffic.Event
	enc := json.NewEncoder(stdout)
	for {
		buf = g.Batch(buf, batch)
		if len(buf) == 0 {
			break
		}
		for _, ev := range buf {
			types[ev.Type]++
		}
		if err := enc.Encode(buf); err != nil {
			return fmt.Errorf("write batch: %w", err)
		}
	}
	fmt.Fprintf(stderr, "%d events of %d tickets:", g.Emitted(), g.Started())
	for _, t := range []string{traffic.TicketCreated, traffic.TicketAssigned, traffic.AgentMessage, traffic.CustomerMessage,
		traffic.StatusChanged, traffic.PriorityChanged, traffic.SatisfactionRated} {
		fmt.Fprintf(stderr, " %s=%d", t, types[t])
	}
	fmt.Fprintln(stderr)
	return nil
}

func cmdReport(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" {
		return usageError{errors.New("usage: loadgen report RESULT.json... (files written by loadgen all -json)")}
	}
	var results []*measure.Result
	for _, p := range args {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read result: %w", err)
		}
		var r measure.Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("decode %s: %w", p, err)
		}
		results = append(results, &r)
	}
	fmt.Fprintln(stdout, measure.Markdown(results))
	return nil
}
