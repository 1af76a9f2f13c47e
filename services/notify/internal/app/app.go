// Package app wires the notify service: the routing file (reloaded when it changes), the
// ESCALATIONS consumer with its watermark replay, the record of delivered changes, the group and
// retry timers, the gRPC NotificationService, and the health and metrics endpoints.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/delivered"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/dispatch"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/grpcapi"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/routing"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/consumerlag"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/filewatch"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
	"github.com/ticketpulse/ticketpulse/services/platform/watermark"
)

// Name is the service name in logs, traces and the NATS connection.
const Name = "notify"

// Spec is the notify service as the platform runs it.
var Spec = service.Spec{
	Name:       Name,
	Summary:    "notify delivers escalations (chat webhook, signed webhook, e-mail) with retries until a deadline, and serves NotificationService over gRPC.",
	GRPCAddr:   "127.0.0.1:9092",
	GRPCServes: "NotificationService, health, reflection",
	HTTPAddr:   "127.0.0.1:9192",
	AdminAddr:  "127.0.0.1:9292",
	Redis:      true,
	// Reading the delivery log shows what was sent about a tenant's tickets; a test send reaches
	// the tenant's people, so it is a scope of its own.
	Access: map[string]auth.Scope{
		tpv1.NotificationService_ListDeliveries_FullMethodName: auth.NotificationsRead,
		tpv1.NotificationService_GetDelivery_FullMethodName:    auth.NotificationsRead,
		tpv1.NotificationService_TestReceiver_FullMethodName:   auth.NotificationsTest,
	},
}

// timerPrefix keeps notify's timers apart from escalation's on a shared Redis.
const timerPrefix = "tp:notify:"

// Config is everything the service reads from flags and the environment.
type Config struct {
	service.Common
	RoutingFile    string
	RoutingReload  time.Duration
	Consume        consume.Settings
	Timers         timers.Settings
	LogMax         int
	DedupeWindow   time.Duration
	StreamReplicas int
	// EscalationsFrom is where a new ESCALATIONS durable starts: "new" or "all".
	EscalationsFrom string
	// WatermarkInterval is how often the ESCALATIONS consumer records its ack floor in Redis and
	// checks whether Redis lost acknowledged work (0: off).
	WatermarkInterval time.Duration
	// DeliveredTTL is how long the delivered record (outside Redis) remembers a delivered change.
	DeliveredTTL time.Duration
}

// Register declares the settings on s.
func (c *Config) Register(s *envflag.Set) {
	c.Common.Register(s, Spec)
	s.String(&c.RoutingFile, "routing-file", "", "YAML file of receivers, routes, grouping, silences and inhibition rules (see deploy/notify/routing.example.yaml). Empty: notify does not consume escalations.")
	s.Duration(&c.RoutingReload, "routing-reload", 10*time.Second, "How often the routing file is checked for changes; a changed file that fails validation is logged and the previous routing stays.")
	c.Consume.Register(s, consume.Settings{Durable: "notify", BatchMax: 100, Linger: 2 * time.Millisecond, AckWait: 30 * time.Second},
		"ESCALATIONS", "escalation changes")
	c.Timers.Register(s, timers.Settings{Poll: 50 * time.Millisecond, Lease: 30 * time.Second, Shards: 16},
		"group and retry timers")
	s.Int(&c.LogMax, "delivery-log-max", 10000, "Deliveries kept in each tenant's delivery log; the oldest go first.")
	s.Duration(&c.DedupeWindow, "dedupe-window", 7*24*time.Hour, "How long a change is remembered as routed to a receiver, so a redelivered change is not sent twice.")
	s.Duration(&c.DeliveredTTL, "delivered-ttl", 7*24*time.Hour, "How long notify remembers, outside Redis (JetStream key-value bucket "+delivered.Bucket+", file storage, -stream-replicas), that a change was delivered to a receiver, so the replay that repairs a Redis loss does not send it again. Must reach back further than any Redis state that may be restored (a replay goes back to it); each delivered change costs about 200 bytes per receiver for this long. At least 1m.")
	s.Int(&c.StreamReplicas, "stream-replicas", 1, "Replicas of the DEADLETTER stream and the "+delivered.Bucket+" key-value bucket (3 on a NATS cluster).")
	consume.RegisterWatermark(s, &c.WatermarkInterval)
	s.String(&c.EscalationsFrom, "escalations-from", "new", "Where the ESCALATIONS consumer starts when it does not exist yet: new (changes from now on) or all (every change still in the stream, up to 30 days: a flood of old news). An existing consumer always goes on from where it was.")
}

// Validate reports settings that cannot work, naming the flag.
func (c Config) Validate() error {
	var v envflag.Checks
	v.Positive("routing-reload", c.RoutingReload)
	c.Consume.Check(&v)
	c.Timers.Check(&v)
	v.Positive("dedupe-window", c.DedupeWindow)
	v.AtLeast("delivered-ttl", c.DeliveredTTL, time.Minute)
	consume.CheckWatermark(&v, c.WatermarkInterval)
	v.OneOf("escalations-from", c.EscalationsFrom, "all", "new")
	v.AtLeastN("delivery-log-max", c.LogMax, 1)
	return v.Err()
}

// Deps are what a test replaces or watches in a running notify; the zero value is production.
type Deps struct {
	service.Hooks
	// Now, when set, is the clock; time.Now otherwise.
	Now func() time.Time
	// Senders, when set, configures the senders (tests trust their own certificates).
	Senders receiver.Options
	// Backoff, when set, replaces the retry backoff.
	Backoff dispatch.Options
}

// Run is the notify process: it serves until ctx ends, then stops consuming and firing, waits
// for the sends in flight and shuts down.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error { return Deps{}.Run(ctx, cfg, log) }

// Run runs notify with deps' clock, senders, backoff and hooks.
func (deps Deps) Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	var rt *dispatch.Routing
	var lastFile []byte
	if cfg.RoutingFile != "" {
		var err error
		if rt, lastFile, err = loadRouting(cfg.RoutingFile, deps.Senders); err != nil {
			return err
		}
		log.Info("routing loaded", "file", cfg.RoutingFile, "receivers", len(rt.Config.Receivers))
	} else {
		log.Warn("no routing file (-routing-file): escalations are not consumed, nothing is sent")
	}

	svc, err := service.New(ctx, Spec, cfg.Common, deps.Hooks, log)
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
	// The senders trace their requests with the service's provider, known only now: the routing
	// checked above is built again with it.
	senders := deps.Senders
	senders.TracerProvider = svc.TracerProvider()
	if cfg.RoutingFile != "" {
		if rt, err = buildRouting(cfg.RoutingFile, lastFile, senders); err != nil {
			return err
		}
	}

	store := deliveries.New(rdb, cfg.DedupeWindow, int64(cfg.LogMax))
	queue := timers.New(rdb, cfg.Timers.Apply(timers.Options{Prefix: timerPrefix, Logger: log, Traces: svc.Tracing()}))
	if rt == nil {
		rt = &dispatch.Routing{}
	}
	opts := deps.Backoff
	opts.Tracer = svc.Tracer()
	if opts.Metrics, err = dispatch.NewMetrics(svc.Meter()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	once, err := delivered.Open(ctx, js, cfg.DeliveredTTL, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	d := dispatch.New(store, once, queue, js, rt, now, opts, log)

	grpcapi.NewServer(store, d, log).Register(svc.GRPC())
	workers := []func(context.Context) error{func(ctx context.Context) error {
		err := queue.Run(ctx, cfg.Timers.Poll, now, d.Fire)
		// Sends in flight finish (each within its receiver's timeout) before the process exits.
		d.Wait()
		return err
	}}
	if cfg.RoutingFile != "" {
		changes := consume.New(js, cfg.Consume.Apply(consume.Config{
			Service: Name, Stream: stream.EscalationsName, Filter: stream.EscalationsFilter,
			Description: "notify: route and deliver escalation changes", StartNew: cfg.EscalationsFrom == "new",
			// What Redis lost is routed again; the delivered record keeps what was sent from being
			// sent twice. A missing watermark (Redis emptied, or the first start of this version)
			// is adopted: replaying the whole stream would put weeks of old escalations in the
			// supervisors' inboxes.
			Watermark: &consume.Watermark{Redis: rdb, Meter: svc.Meter(), Interval: cfg.WatermarkInterval, Missing: watermark.Adopt},
			Tracer:    svc.Tracer(),
		}), decodeChange, func(ctx context.Context, batch []consume.Decoded[*tpv1.EscalationChange]) error {
			cs := make([]*tpv1.EscalationChange, len(batch))
			traces := make([]trace.SpanContext, len(batch))
			for i, b := range batch {
				cs[i], traces[i] = b.Value, b.Trace
			}
			return d.HandleTraced(ctx, cs, traces)
		}, healthy, log)
		if err := consumerlag.Observe(svc.Meter(), js, log, changes.Lag()); err != nil {
			return err
		}
		workers = append(workers, changes.Run, func(ctx context.Context) error {
			return watchRouting(ctx, cfg.RoutingFile, cfg.RoutingReload, senders, lastFile, d, log)
		})
	}
	return svc.Serve(ctx, workers...)
}

func decodeChange(m jetstream.Msg) (string, *tpv1.EscalationChange, error) {
	c := &tpv1.EscalationChange{}
	if err := proto.Unmarshal(m.Data(), c); err != nil {
		return "", nil, fmt.Errorf("invalid escalation change: %w", err)
	}
	tenant := c.GetEscalation().GetTenant()
	if !idtoken.ValidTenant(tenant) || c.GetEscalation().GetId() == "" || c.GetSequence() < 1 {
		return "", nil, fmt.Errorf("invalid escalation change: tenant %q, id %q, sequence %d", tenant, c.GetEscalation().GetId(), c.GetSequence())
	}
	return tenant, c, nil
}

func loadRouting(path string, opts receiver.Options) (*dispatch.Routing, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("routing file: %w", err)
	}
	rt, err := buildRouting(path, data, opts)
	return rt, data, err
}

func buildRouting(path string, data []byte, opts receiver.Options) (*dispatch.Routing, error) {
	cfg, err := routing.Parse(path, filepath.Dir(path), data, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("routing file %s:\n%w", path, err)
	}
	rt, err := dispatch.NewRouting(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("routing file %s: %w", path, err)
	}
	return rt, nil
}

// watchRouting reloads the routing file when its content changes; an invalid file is logged
// and the routing in force stays.
func watchRouting(ctx context.Context, path string, every time.Duration, opts receiver.Options, last []byte, d *dispatch.Dispatcher, log *slog.Logger) error {
	return filewatch.Poll(ctx, path, every, last, log, func(data []byte) error {
		rt, err := buildRouting(path, data, opts)
		if err != nil {
			return err
		}
		d.SetRouting(rt)
		return nil
	})
}
