// Package app wires the ingest service: the TICKETS and DEADLETTER streams, the events API and
// the helpdesk webhooks, on the platform's service (NATS, health, metrics, graceful stop).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/chatwoot"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/five9"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/freshdesk"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/genesys"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/helpscout"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/hubspot"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/hubspot/hsapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/intercom"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/qualtrics"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/ringcentral"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/salesforce"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/surveymonkey"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/typeform"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/vendorapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/zammad"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/zendesk"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/admission"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/dedupe"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/httpapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/publish"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	ptenants "github.com/ticketpulse/ticketpulse/services/platform/tenants"
)

// Spec is the ingest service as the platform runs it: no gRPC, no Redis.
var Spec = service.Spec{
	Name:       "ingest",
	Summary:    "ingest accepts canonical ticket events on POST /v1/tenants/{tenant}/events (Authorization: Bearer\n<key with events:write>) and answers 202 only after JetStream stored every one of them in the\nTICKETS stream.",
	HTTPAddr:   "127.0.0.1:8080",
	HTTPServes: "events API, helpdesk webhooks, /healthz, /readyz",
	AdminAddr:  "127.0.0.1:9289",
}

// Config is everything ingest reads from flags and the environment.
type Config struct {
	service.Common
	StreamRetention time.Duration
	StreamReplicas  int
	MaxEvents       int
	MaxBodyBytes    int64
	PublishTimeout  time.Duration
	MaxFutureSkew   time.Duration

	// TicketsCompression is how TICKETS stores events: "s2" or "none".
	TicketsCompression string

	// The tenants file (Common.TenantsFile) also holds each tenant's webhook sources: without
	// one, every webhook is unconfigured (404) and every events request refused.
	WebhookMaxBodyBytes int64
	DeliveryTTL         time.Duration

	// Lookups at a vendor's API (tenants with an access_token on hubspot, surveymonkey or
	// qualtrics; package vendorapi), bounded per request and per tenant and vendor.
	VendorAPITimeout     time.Duration
	VendorAPIConcurrency int

	// Admission control (package admission).
	TicketsMaxBytes    int64
	MaxBacklog         int64
	MaxStreamFill      float64
	AdmissionConsumers []string
	AdmissionRefresh   time.Duration
}

// Defaults returns the documented defaults (the same as the flags').
func Defaults() Config {
	return Config{
		Common:          service.Defaults(Spec),
		StreamRetention: 0,
		StreamReplicas:  1,
		MaxEvents:       1000,
		MaxBodyBytes:    4 << 20,
		PublishTimeout:  5 * time.Second,
		MaxFutureSkew:   5 * time.Minute,

		TicketsCompression: "none",

		WebhookMaxBodyBytes: 1 << 20,
		DeliveryTTL:         72 * time.Hour,

		VendorAPITimeout:     vendorapi.DefaultTimeout,
		VendorAPIConcurrency: vendorapi.DefaultConcurrency,

		TicketsMaxBytes:    16 << 30,
		MaxBacklog:         500_000,
		MaxStreamFill:      0.9,
		AdmissionConsumers: []string{stream.KPIDurable},
		AdmissionRefresh:   250 * time.Millisecond,
	}
}

// Register declares the settings on s.
func (c *Config) Register(s *envflag.Set) {
	d := Defaults()
	c.Common.Register(s, Spec)
	s.Duration(&c.StreamRetention, "stream-retention", d.StreamRetention,
		"How long the TICKETS stream keeps events; 0 keeps them forever. KPIs and escalations can only be rebuilt from events the stream still holds.")
	s.String(&c.TicketsCompression, "tickets-compression", d.TicketsCompression,
		"How the TICKETS stream stores events: none, or s2 (compressed to about 0.28 of the disk; with NATS 2.15 a node whose disk filled up may be left with a compressed block it cannot read, see docs/chaos.md). Also applied to an existing stream, for the events it stores from then on.")
	s.Int(&c.StreamReplicas, "stream-replicas", d.StreamReplicas,
		"Number of replicas of the TICKETS and DEADLETTER streams (3 on a NATS cluster).")
	s.Int(&c.MaxEvents, "max-events", d.MaxEvents,
		"Largest number of events one request may carry; larger arrays are answered 413.")
	s.Int64(&c.MaxBodyBytes, "max-body-bytes", d.MaxBodyBytes,
		"Largest request body in bytes; larger bodies are answered 413 without being read whole.")
	s.Duration(&c.PublishTimeout, "publish-timeout", d.PublishTimeout,
		"How long a request waits for JetStream to acknowledge all its events before it is answered 503; sooner when the TICKETS stream elects a leader or the NATS connection drops while it waits.")
	s.Duration(&c.MaxFutureSkew, "max-future-skew", d.MaxFutureSkew,
		"How far in the future an event's occurred_at may be, to allow for clock skew at the source.")
	s.Int64(&c.WebhookMaxBodyBytes, "webhook-max-body-bytes", d.WebhookMaxBodyBytes,
		"Largest webhook body in bytes; larger deliveries are answered 413 without being read whole.")
	s.Duration(&c.DeliveryTTL, "delivery-ttl", d.DeliveryTTL,
		"How long a webhook delivery id is remembered, so a retry of it is answered 200 without publishing again.")
	s.Duration(&c.VendorAPITimeout, "vendor-api-timeout", d.VendorAPITimeout,
		"How long one request to a vendor's API may take when a webhook's object is looked up (a HubSpot conversation message, a SurveyMonkey or Qualtrics response; tenants with an access_token on that source); a slower answer makes the webhook answer 503 with Retry-After, so the vendor sends the delivery again.")
	s.Int(&c.VendorAPIConcurrency, "vendor-api-concurrency", d.VendorAPIConcurrency,
		"Most requests to one vendor's API in flight at once per tenant; a lookup that finds none free within -vendor-api-timeout makes the webhook answer 503 with Retry-After.")
	s.Int64(&c.TicketsMaxBytes, "tickets-max-bytes", d.TicketsMaxBytes,
		"Size limit of the TICKETS stream in bytes, also applied to an existing stream; when full, new events are refused (503) and old ones are never dropped. NATS reserves it from its max_file_store, so it must fit there. 0: no limit.")
	s.Int64(&c.MaxBacklog, "max-backlog", d.MaxBacklog,
		"Events the -admission-consumers may have waiting (pending plus unacknowledged) before new events are refused with 503; from half of it, every tenant's rate shrinks linearly to nothing at it (429 past the shrunk rate). 0: no bound.")
	c.MaxStreamFill = d.MaxStreamFill
	s.Var((*fractionFlag)(&c.MaxStreamFill), "max-stream-fill",
		"Fraction of -tickets-max-bytes (the stream's MaxBytes) the TICKETS stream may fill before new events are refused with 503, between 0 and 1. 0: no bound.")
	c.AdmissionConsumers = d.AdmissionConsumers
	s.Var((*listFlag)(&c.AdmissionConsumers), "admission-consumers",
		"Comma-separated durable consumers of TICKETS whose backlog -max-backlog bounds; one that does not exist yet has no backlog.")
	s.Duration(&c.AdmissionRefresh, "admission-refresh", d.AdmissionRefresh,
		"How often the consumers' backlog and the stream's size are read from JetStream for admission control; requests use the last reading. If none succeeds for 4 periods (at least 1s), events are admitted unchecked.")
}

// Validate reports settings that cannot work, naming the flag.
func (c Config) Validate() error {
	var v envflag.Checks
	v.NotEmpty("nats-url", c.NATSURL)
	v.NotEmpty("http-addr", c.HTTPAddr)
	v.NotNegative("stream-retention", c.StreamRetention)
	v.OneOf("tickets-compression", c.TicketsCompression, "none", "s2")
	v.Between("stream-replicas", c.StreamReplicas, 1, 5)
	v.AtLeastN("max-events", c.MaxEvents, 1)
	v.AtLeastN64("max-body-bytes", c.MaxBodyBytes, 1)
	v.Positive("publish-timeout", c.PublishTimeout)
	v.NotNegative("max-future-skew", c.MaxFutureSkew)
	v.AtLeastN64("webhook-max-body-bytes", c.WebhookMaxBodyBytes, 1)
	v.Positive("delivery-ttl", c.DeliveryTTL)
	v.Positive("vendor-api-timeout", c.VendorAPITimeout)
	v.Between("vendor-api-concurrency", c.VendorAPIConcurrency, 1, 64)
	v.AtLeastN64("tickets-max-bytes", c.TicketsMaxBytes, 0)
	v.AtLeastN64("max-backlog", c.MaxBacklog, 0)
	v.AtLeast("admission-refresh", c.AdmissionRefresh, 10*time.Millisecond)
	v.NotEmpty("admission-consumers", strings.Join(c.AdmissionConsumers, ","))
	return v.Err()
}

// Deps are what a test replaces or watches in a running ingest; the zero value is production.
type Deps struct {
	service.Hooks
	// Getenv resolves the secrets the tenants file names; nil means os.Getenv.
	Getenv func(string) string
	// TenantsPoll is how often the tenants file is checked for changes; 0 means every 2 s.
	TenantsPoll time.Duration
}

// Run is the ingest process: it serves until ctx ends, then stops accepting connections, lets
// in-flight requests finish (each is bounded by the publish timeout), drains NATS and flushes
// telemetry.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error { return Deps{}.Run(ctx, cfg, log) }

// Run runs ingest with d's environment and hooks.
func (d Deps) Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	getenv := d.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	// The tenants file first: a mistake in it stops the service before it touches anything.
	reg, err := tenants.Open(ctx, cfg.TenantsFile, ptenants.Options{Getenv: getenv, Log: log, Poll: d.TenantsPoll})
	if err != nil {
		return err
	}
	svc, err := service.New(ctx, Spec, cfg.Common, d.Hooks, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := reg.Instrument(svc.Meter()); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	js, err := svc.JetStream(sctx, stream.Owned("ingest", stream.Settings{Replicas: cfg.StreamReplicas,
		TicketsRetention: cfg.StreamRetention, TicketsMaxBytes: cfg.TicketsMaxBytes,
		TicketsCompressed: cfg.TicketsCompression == "s2"})...)
	if err != nil {
		if jsErr, ok := errors.AsType[jetstream.JetStreamError](err); ok && jsErr.APIError() != nil &&
			jsErr.APIError().ErrorCode == storageExceeded {
			return fmt.Errorf("%w (lower -tickets-max-bytes, or raise the NATS server's max_file_store)", err)
		}
		return err
	}
	gate, err := admission.New(js, admission.Config{
		Stream:        stream.TicketsName,
		Consumers:     cfg.AdmissionConsumers,
		MaxBacklog:    cfg.MaxBacklog,
		SoftBacklog:   cfg.MaxBacklog / 2,
		MaxStreamFill: cfg.MaxStreamFill,
		Refresh:       cfg.AdmissionRefresh,
	}, log, svc.Meter())
	if err != nil {
		return err
	}
	// The first reading before the first request, so a restart into a full pipeline refuses at once.
	gate.Refresh(sctx)
	gctx, stopGate := context.WithCancel(ctx)
	gateDone := make(chan struct{})
	go func() {
		defer close(gateDone)
		gate.Run(gctx)
	}()
	defer func() {
		stopGate()
		<-gateDone
	}()
	pub, err := publish.New(svc.NATS(), publish.Options{
		// Room for several full batches at once; beyond that, batches queue for their deadline.
		MaxPending: max(4096, 4*cfg.MaxEvents),
		AckTimeout: cfg.PublishTimeout,
		Log:        log,
		Tracer:     svc.Tracer(),
	})
	if err != nil {
		return err
	}
	defer pub.Close()
	// One budget per tenant, whichever way its events come in.
	limits := httpapi.NewRateLimits(reg).WithGate(gate)
	api, err := httpapi.New(httpapi.Config{
		// Webhooks prove themselves by their signatures; the events API by an API key or ID token.
		Auth:           auth.NewGate(reg, log),
		MaxEvents:      cfg.MaxEvents,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		PublishTimeout: cfg.PublishTimeout,
		MaxFutureSkew:  cfg.MaxFutureSkew,
		Limits:         limits,
		TracerProvider: svc.TracerProvider(),
	}, pub, log, svc.Tracer(), svc.Meter())
	if err != nil {
		return err
	}
	deliveries, err := dedupe.Open(sctx, js, cfg.DeliveryTTL, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	hooks, err := httpapi.NewWebhook(httpapi.WebhookConfig{
		Tenants:        reg,
		Adapters:       Adapters(cfg),
		Deliveries:     deliveries,
		MaxBodyBytes:   cfg.WebhookMaxBodyBytes,
		MaxEvents:      cfg.MaxEvents,
		PublishTimeout: cfg.PublishTimeout,
		MaxFutureSkew:  cfg.MaxFutureSkew,
		Limits:         limits,
		TracerProvider: svc.TracerProvider(),
	}, pub, log, svc.Tracer(), svc.Meter())
	if err != nil {
		return err
	}
	api.Register(svc.HTTP())
	hooks.Register(svc.HTTP())
	svc.AddReady(streamReady(js))
	return svc.Serve(ctx, reg.Watch)
}

// storageExceeded is JetStream's error code for a stream whose MaxBytes does not fit in what the
// server may still reserve of its max_file_store.
const storageExceeded jetstream.ErrorCode = 10047

// Adapters are the helpdesk and survey sources ingest maps, by source name; generic needs none.
// cfg bounds the lookups of the sources that ask their API (HubSpot, SurveyMonkey, Qualtrics);
// each vendor has its own client, so one vendor's slow API takes no slot of another's.
func Adapters(cfg Config) map[string]adapter.Adapter {
	o := vendorapi.Options{Timeout: cfg.VendorAPITimeout, Concurrency: cfg.VendorAPIConcurrency}
	hs := hubspot.NewWithAPI(hsapi.New(hsapi.Options{Timeout: o.Timeout, Concurrency: o.Concurrency}))
	sm := surveymonkey.NewWithAPI(surveymonkey.NewClient(o))
	qx := qualtrics.NewWithAPI(qualtrics.NewClient(o))
	all := []adapter.Adapter{zendesk.New(), chatwoot.New(), freshdesk.New(), helpscout.New(), zammad.New(), intercom.New(),
		salesforce.New(), hs, typeform.New(), sm, qx, five9.New(), genesys.New(), ringcentral.New()}
	m := make(map[string]adapter.Adapter, len(all))
	for _, a := range all {
		m[a.Source()] = a
	}
	return m
}

// streamReady reports whether events can be stored now: the stream answers.
func streamReady(js jetstream.JetStream) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := js.Stream(ctx, stream.TicketsName); err != nil {
			return fmt.Errorf("stream %s: %w", stream.TicketsName, err)
		}
		return nil
	}
}
