// Package app wires the ingest service: NATS, the TICKETS and DEADLETTER streams, the events API
// and the operational endpoints, with a graceful stop.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/chatwoot"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/freshdesk"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/helpscout"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/intercom"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/zammad"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/zendesk"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/dedupe"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/httpapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/publish"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/natsconn"
	"github.com/ticketpulse/ticketpulse/services/platform/serve"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
)

// Config is everything ingest needs to run.
type Config struct {
	NATSURL      string
	OTLPEndpoint string

	HTTPAddr        string
	StreamRetention time.Duration
	StreamReplicas  int
	MaxEvents       int
	MaxBodyBytes    int64
	PublishTimeout  time.Duration
	MaxFutureSkew   time.Duration

	// TenantsFile configures the helpdesk webhooks; empty leaves them all unconfigured (404).
	TenantsFile         string
	WebhookMaxBodyBytes int64
	DeliveryTTL         time.Duration
	// Getenv resolves the secrets the tenants file names; nil means os.Getenv.
	Getenv func(string) string
}

// Defaults returns the documented defaults (the same as the flags').
func Defaults() Config {
	return Config{
		NATSURL:         "nats://127.0.0.1:4222",
		HTTPAddr:        "127.0.0.1:8080",
		StreamRetention: 720 * time.Hour,
		StreamReplicas:  1,
		MaxEvents:       1000,
		MaxBodyBytes:    4 << 20,
		PublishTimeout:  5 * time.Second,
		MaxFutureSkew:   5 * time.Minute,

		WebhookMaxBodyBytes: 1 << 20,
		DeliveryTTL:         72 * time.Hour,
	}
}

// Register adds ingest's own flags; NATSURL and OTLPEndpoint come from service.Common.
func (c *Config) Register(s *envflag.Set) {
	d := Defaults()
	s.String(&c.HTTPAddr, "http-addr", d.HTTPAddr,
		"Address to serve the events API, /healthz, /readyz and /metrics on.")
	s.Duration(&c.StreamRetention, "stream-retention", d.StreamRetention,
		"How long the TICKETS stream keeps events; 0 keeps them forever.")
	s.Int(&c.StreamReplicas, "stream-replicas", d.StreamReplicas,
		"Number of replicas of the TICKETS and DEADLETTER streams (3 on a NATS cluster).")
	s.Int(&c.MaxEvents, "max-events", d.MaxEvents,
		"Largest number of events one request may carry; larger arrays are answered 413.")
	s.Int64(&c.MaxBodyBytes, "max-body-bytes", d.MaxBodyBytes,
		"Largest request body in bytes; larger bodies are answered 413 without being read whole.")
	s.Duration(&c.PublishTimeout, "publish-timeout", d.PublishTimeout,
		"How long a request waits for JetStream to acknowledge all its events before it is answered 503.")
	s.Duration(&c.MaxFutureSkew, "max-future-skew", d.MaxFutureSkew,
		"How far in the future an event's occurred_at may be, to allow for clock skew at the source.")
	s.String(&c.TenantsFile, "tenants-file", d.TenantsFile,
		"YAML file of the tenants and their helpdesk webhooks (sources, secrets, rate limits); see docs/helpdesks.md. Empty: no webhook is configured.")
	s.Int64(&c.WebhookMaxBodyBytes, "webhook-max-body-bytes", d.WebhookMaxBodyBytes,
		"Largest webhook body in bytes; larger deliveries are answered 413 without being read whole.")
	s.Duration(&c.DeliveryTTL, "delivery-ttl", d.DeliveryTTL,
		"How long a webhook delivery id is remembered, so a retry of it is answered 200 without publishing again.")
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.NATSURL == "" {
		errs = append(errs, errors.New("nats-url is empty"))
	}
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("http-addr is empty"))
	}
	if c.StreamRetention < 0 {
		errs = append(errs, errors.New("stream-retention must be 0 (forever) or positive"))
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, errors.New("stream-replicas must be between 1 and 5"))
	}
	if c.MaxEvents < 1 {
		errs = append(errs, errors.New("max-events must be at least 1"))
	}
	if c.MaxBodyBytes < 1 {
		errs = append(errs, errors.New("max-body-bytes must be at least 1"))
	}
	if c.PublishTimeout <= 0 {
		errs = append(errs, errors.New("publish-timeout must be positive"))
	}
	if c.MaxFutureSkew < 0 {
		errs = append(errs, errors.New("max-future-skew must not be negative"))
	}
	if c.WebhookMaxBodyBytes < 1 {
		errs = append(errs, errors.New("webhook-max-body-bytes must be at least 1"))
	}
	if c.DeliveryTTL <= 0 {
		errs = append(errs, errors.New("delivery-ttl must be positive"))
	}
	return errors.Join(errs...)
}

// App is a started ingest: connected, streams ensured, listening. Call Run exactly once; it
// releases everything New acquired.
type App struct {
	log     *slog.Logger
	tel     *telemetry.Telemetry
	nc      *nats.Conn
	ln      net.Listener
	addr    string
	handler http.Handler
}

// Run starts ingest and serves until ctx ends; it is what main calls.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	a, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// New connects to NATS, creates or updates the TICKETS and DEADLETTER streams, and opens the
// HTTP listener (HTTPAddr "127.0.0.1:0" picks a free port; Addr tells which).
func New(ctx context.Context, cfg Config, log *slog.Logger) (a *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	// The tenants file first: a mistake in it stops the service before it touches anything.
	tenantCfg := &tenants.Config{}
	if cfg.TenantsFile != "" {
		if tenantCfg, err = tenants.Load(cfg.TenantsFile, getenv); err != nil {
			return nil, err
		}
		log.Info("tenants file loaded", "file", cfg.TenantsFile, "tenants", len(tenantCfg.Tenants))
	}
	a = &App{log: log}
	defer func() {
		if err != nil {
			a.release(context.Background())
		}
	}()
	if a.tel, err = telemetry.Setup(ctx, "ingest", cfg.OTLPEndpoint); err != nil {
		return nil, err
	}
	if a.nc, err = natsconn.Connect(cfg.NATSURL, "ingest", log); err != nil {
		return nil, err
	}
	js, err := jetstream.New(a.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, sc := range []jetstream.StreamConfig{
		natsconn.TicketsConfig(cfg.StreamRetention, cfg.StreamReplicas),
		natsconn.DeadletterConfig(cfg.StreamReplicas),
	} {
		if _, err := natsconn.EnsureStream(sctx, js, sc); err != nil {
			return nil, err
		}
	}
	pub, err := publish.New(a.nc, publish.Options{
		// Room for several full batches at once; beyond that, batches queue for their deadline.
		MaxPending: max(4096, 4*cfg.MaxEvents),
		AckTimeout: cfg.PublishTimeout,
	})
	if err != nil {
		return nil, err
	}
	api, err := httpapi.New(httpapi.Config{
		MaxEvents:      cfg.MaxEvents,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		PublishTimeout: cfg.PublishTimeout,
		MaxFutureSkew:  cfg.MaxFutureSkew,
	}, pub, log, a.tel.Tracer, a.tel.Meter)
	if err != nil {
		return nil, err
	}
	deliveries, err := dedupe.Open(sctx, js, cfg.DeliveryTTL, cfg.StreamReplicas)
	if err != nil {
		return nil, err
	}
	hooks, err := httpapi.NewWebhook(httpapi.WebhookConfig{
		Tenants:        tenantCfg,
		Adapters:       Adapters(),
		Deliveries:     deliveries,
		MaxBodyBytes:   cfg.WebhookMaxBodyBytes,
		MaxEvents:      cfg.MaxEvents,
		PublishTimeout: cfg.PublishTimeout,
		MaxFutureSkew:  cfg.MaxFutureSkew,
	}, pub, log, a.tel.Tracer, a.tel.Meter)
	if err != nil {
		return nil, err
	}
	mux := serve.Mux(ready(a.nc, js), a.tel.Metrics)
	api.Register(mux)
	hooks.Register(mux)
	a.handler = mux
	if a.ln, err = serve.Listen(cfg.HTTPAddr); err != nil {
		return nil, err
	}
	a.addr = a.ln.Addr().String()
	return a, nil
}

// Adapters are the helpdesk sources ingest maps, by source name; generic needs none.
func Adapters() map[string]adapter.Adapter {
	all := []adapter.Adapter{zendesk.New(), chatwoot.New(), freshdesk.New(), helpscout.New(), zammad.New(), intercom.New()}
	m := make(map[string]adapter.Adapter, len(all))
	for _, a := range all {
		m[a.Source()] = a
	}
	return m
}

// ready reports whether events can be stored now: connected, and the stream answers.
func ready(nc *nats.Conn, js jetstream.JetStream) serve.ReadyFunc {
	return func(ctx context.Context) error {
		if st := nc.Status(); st != nats.CONNECTED {
			return fmt.Errorf("nats connection %s", st)
		}
		if _, err := js.Stream(ctx, natsconn.TicketsStream); err != nil {
			return fmt.Errorf("stream %s: %w", natsconn.TicketsStream, err)
		}
		return nil
	}
}

// Addr is the HTTP listener's address.
func (a *App) Addr() string { return a.addr }

// Run serves until ctx ends, then stops accepting connections, lets in-flight requests finish
// (each is bounded by the publish timeout), drains NATS and flushes telemetry.
func (a *App) Run(ctx context.Context) error {
	err := serve.HTTP(ctx, a.ln, a.handler, a.log)
	a.ln = nil // closed by the server
	return errors.Join(err, a.release(context.Background()))
}

func (a *App) release(ctx context.Context) error {
	var errs []error
	if a.ln != nil {
		errs = append(errs, a.ln.Close())
	}
	if a.nc != nil {
		closed := a.nc.StatusChanged(nats.CLOSED)
		if err := a.nc.Drain(); err != nil {
			a.nc.Close()
		} else {
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				a.nc.Close()
				errs = append(errs, errors.New("nats drain did not finish in 10s"))
			}
		}
	}
	if a.tel != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := a.tel.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry shutdown: %w", err))
		}
	}
	return errors.Join(errs...)
}
