package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/publish"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/tenants"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/verify"
)

// WebhookRoute is the helpdesk webhooks' pattern, also their metrics label.
const WebhookRoute = "/v1/tenants/{tenant}/webhooks/{source}"

// Tenants finds a tenant's settings.
type Tenants interface {
	Tenant(id string) (*tenants.Tenant, bool)
}

// Deliveries remembers the deliveries already published (see package dedupe).
type Deliveries interface {
	Seen(ctx context.Context, tenant, source, delivery string) (bool, error)
	Mark(ctx context.Context, tenant, source, delivery string) error
}

// Configurable is an adapter whose mapping reads the tenant's settings for its source (the
// CRMs' statuses:): each delivery is mapped by the adapter For returns.
type Configurable interface {
	For(sc *tenants.SourceConfig) adapter.Adapter
}

// Acknowledger is an adapter whose source reads an answer of its own rather than the JSON one
// (Salesforce retries an Outbound Message until it reads a SOAP acknowledgement), and which
// takes bodies other than JSON.
type Acknowledger interface {
	// CheckContentType replaces the application/json rule: it returns the reason to refuse a
	// Content-Type with, or "".
	CheckContentType(contentType string) string
	// Acknowledge returns the 200 answer to a delivery with the headers h, sent only once
	// JetStream stored every event of it (or it held none); ok false keeps the JSON answer.
	Acknowledge(h http.Header) (contentType string, body []byte, ok bool)
}

// ContextMapper is an adapter that must look things up at the source before it can map a
// delivery (HubSpot's conversation messages name only their thread, SurveyMonkey's and
// Qualtrics' webhooks only their response): it maps with the request's context, so a lookup ends
// when the request does. An error with a RetryAfter method (the source's API is unavailable now)
// is answered 503 with Retry-After, storing nothing.
type ContextMapper interface {
	MapContext(ctx context.Context, d adapter.Delivery) (adapter.Result, error)
}

// Handshaker is an adapter whose source proves a webhook URL before it uses it, with a request
// whose 200 answer must carry one of its headers back (RingCentral's Validation-Token).
type Handshaker interface {
	// Handshake returns the header to echo when h is such a request; ok false otherwise.
	Handshake(h http.Header) (name, value string, ok bool)
}

// WebhookConfig holds what the webhook handler needs besides the publisher.
type WebhookConfig struct {
	Tenants Tenants
	// Adapters by source; the generic source needs none (its body is canonical JSON).
	Adapters map[string]adapter.Adapter
	// Deliveries may be nil: then a repeated delivery is published again (and its events are
	// acknowledged as duplicates, which kpi never counts twice).
	Deliveries     Deliveries
	MaxBodyBytes   int64
	MaxEvents      int
	PublishTimeout time.Duration
	MaxFutureSkew  time.Duration
	// Limits are the tenants' rate limits, shared with the events API; nil limits nothing.
	Limits *RateLimits
	// Now is the clock of timestamps and rate limits; nil means time.Now.
	Now func() time.Time
	// TracerProvider, when set, makes Register serve the route in a server span of the
	// contrib HTTP instrumentation; without it the handler starts its own.
	TracerProvider trace.TracerProvider
}

// Webhook serves WebhookRoute: verify, map, publish, answer 2xx only after JetStream stored
// every event.
type Webhook struct {
	cfg      WebhookConfig
	log      *slog.Logger
	tracer   trace.Tracer
	verifier verify.Verifier
	accept   pipeline

	deliveries metric.Int64Counter
	rejections metric.Int64Counter
	skipped    metric.Int64Counter
	accepted   metric.Int64Counter
	duplicates metric.Int64Counter
	perTenant  eventCounter
	latency    metric.Float64Histogram
}

// NewWebhook returns the handler; its instruments are created on meter.
func NewWebhook(cfg WebhookConfig, pub Publisher, log *slog.Logger, tracer trace.Tracer, meter metric.Meter) (*Webhook, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Webhook{cfg: cfg, log: log, tracer: tracer, verifier: verify.Verifier{Now: cfg.Now},
		accept: pipeline{pub: pub, log: log, now: cfg.Now,
			publishTimeout: cfg.PublishTimeout, maxFutureSkew: cfg.MaxFutureSkew, maxEvents: cfg.MaxEvents}}
	var errs [7]error
	h.perTenant, errs[5] = newEventCounter(meter)
	h.latency, errs[6] = newPublishLatency(meter)
	h.deliveries, errs[0] = meter.Int64Counter("ingest.webhook.deliveries",
		metric.WithDescription("Webhook deliveries by tenant (unknown for one not in the tenants file), source and status code."))
	h.rejections, errs[1] = meter.Int64Counter("ingest.webhook.rejections",
		metric.WithDescription("Webhook deliveries that failed verification, by source and reason."))
	h.skipped, errs[2] = meter.Int64Counter("ingest.webhook.skipped",
		metric.WithDescription("Parts of webhook deliveries left out on purpose (bots' activity, spam, unsupported events), by source and reason."))
	h.accepted, errs[3] = meter.Int64Counter("ingest.webhook.events",
		metric.WithDescription("Events from webhooks acknowledged by JetStream, by source, duplicates included."))
	h.duplicates, errs[4] = meter.Int64Counter("ingest.webhook.duplicate_deliveries",
		metric.WithDescription("Deliveries answered 200 without publishing because their delivery id was seen before."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("webhook instruments: %w", err)
	}
	// Every rejection series exists from the start, so an alert on its rate sees the first one.
	ctx := context.Background()
	for _, src := range verify.Sources {
		for _, r := range verify.Reasons {
			h.rejections.Add(ctx, 0, metric.WithAttributes(attribute.String("source", src), attribute.String("reason", string(r))))
		}
	}
	return h, nil
}

// Register adds the route to mux.
func (h *Webhook) Register(mux *http.ServeMux) {
	mux.Handle(WebhookRoute, instrument(h, WebhookRoute, h.cfg.TracerProvider))
}

// WebhookAccepted is the 2xx body of a webhook.
type WebhookAccepted struct {
	Accepted []string `json:"accepted"`
	// Duplicates counts events the stream already held.
	Duplicates int `json:"duplicates"`
	// DuplicateDelivery is true when the delivery id was seen before and nothing was published.
	DuplicateDelivery bool           `json:"duplicate_delivery,omitempty"`
	Skipped           []adapter.Skip `json:"skipped,omitempty"`
}

func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tenant, source := r.PathValue("tenant"), r.PathValue("source")
	ctx, status := traced(h.tracer, r, WebhookRoute, []attribute.KeyValue{attribute.String("tenant", tenant), attribute.String("source", source)},
		func(ctx context.Context) int { return h.serve(ctx, w, r, tenant, source) })
	label := source
	if _, ok := h.cfg.Adapters[source]; !ok && source != verify.Generic {
		label = "unknown" // the path is outside input: never a label of its own
	}
	tenantLabel := "unknown" // likewise: only tenants of the file are labels
	if _, ok := h.cfg.Tenants.Tenant(tenant); ok {
		tenantLabel = tenant
	}
	h.deliveries.Add(ctx, 1, metric.WithAttributes(attribute.String("tenant", tenantLabel), attribute.String("source", label), attribute.Int("status", status)))
}

func (h *Webhook) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, tenantID, source string) int {
	var (
		ad       adapter.Adapter
		tenant   *tenants.Tenant
		sc       *tenants.SourceConfig
		delivery string
	)
	in := &intake{
		tenant:  tenantID,
		attrs:   []any{"tenant", tenantID, "source", source},
		maxBody: h.cfg.MaxBodyBytes,
		route: func() *answer {
			var known bool
			if ad, known = h.cfg.Adapters[source]; !known && source != verify.Generic {
				return rejected(http.StatusNotFound, Rejected{Error: "unknown source",
					Reason: fmt.Sprintf("no webhook for source %q; the sources are %v", source, verify.Sources)})
			}
			// Unknown tenant and unconfigured source answer alike, so the answer tells a stranger
			// nothing about which tenants exist.
			var ok bool
			if tenant, ok = h.cfg.Tenants.Tenant(tenantID); ok {
				sc, ok = tenant.Sources[source]
			}
			if !ok {
				h.log.InfoContext(ctx, "webhook for an unconfigured tenant or source", "tenant", tenantID, "source", source)
				return rejected(http.StatusNotFound, Rejected{Error: "not configured",
					Reason: "this tenant has no webhook configured for this source"})
			}
			if c, ok := ad.(Configurable); ok {
				ad = c.For(sc)
			}
			return nil
		},
		verify: func(body []byte) *answer {
			var a *answer
			delivery, a = h.verify(ctx, r, body, tenantID, source, sc)
			return a
		},
		mapBody: func(body []byte, opts canonical.Options) ([]canonical.Event, []adapter.Skip, error) {
			events, skipped, err := h.events(ctx, ad, body, r.Header, delivery, sc.Settings, opts)
			if err != nil {
				if probs, ok := errors.AsType[canonical.Problems](err); ok {
					h.log.InfoContext(ctx, "webhook payload rejected", "tenant", tenantID, "source", source, "problem", probs.Error())
				} else if _, ok := errors.AsType[retryLater](err); ok {
					h.log.WarnContext(ctx, "webhook lookup unavailable; asking the source to retry", "tenant", tenantID, "source", source, "err", err)
				}
				return nil, nil, err
			}
			for _, s := range skipped {
				h.skipped.Add(ctx, 1, metric.WithAttributes(attribute.String("source", source), attribute.String("reason", s.Reason)))
				h.log.DebugContext(ctx, "webhook content skipped", "tenant", tenantID, "source", source, "reason", s.Reason, "detail", s.Detail)
			}
			return events, skipped, nil
		},
		admit: func(ctx context.Context, n int, now time.Time) (*answer, func()) {
			return h.cfg.Limits.admit(ctx, tenantID, n, now)
		},
		retrySafe: "the same delivery again is safe",
		stored: func(ctx context.Context, ids []string, res publish.Result, skipped []adapter.Skip, took time.Duration) *answer {
			h.latency.Record(ctx, took.Seconds())
			h.accepted.Add(ctx, int64(len(ids)), metric.WithAttributes(attribute.String("source", source)))
			h.perTenant.stored(ctx, tenantID, source, len(ids), res.Duplicates)
			if delivery != "" && h.cfg.Deliveries != nil {
				if err := h.cfg.Deliveries.Mark(ctx, tenantID, source, delivery); err != nil {
					// Stored already: the worst a lost mark costs is a second publish of a retry.
					h.log.WarnContext(ctx, "record delivery", "tenant", tenantID, "source", source, "err", err)
				}
			}
			return &answer{status: http.StatusAccepted, body: WebhookAccepted{Accepted: ids, Duplicates: res.Duplicates, Skipped: skipped}}
		},
	}
	if _, form := h.cfg.Adapters[source].(adapter.FormSource); form {
		in.contentType = checkFormType
	}
	if ack, ok := h.cfg.Adapters[source].(Acknowledger); ok {
		in.contentType = ack.CheckContentType
		in.acknowledge = func(a *answer) *answer {
			if ct, body, ok := ack.Acknowledge(r.Header); ok {
				return &answer{status: http.StatusOK, raw: body, rawType: ct}
			}
			return a
		}
	}
	if hs, ok := h.cfg.Adapters[source].(Handshaker); ok {
		if name, value, ok := hs.Handshake(r.Header); ok {
			// The validation request may come without a body or a Content-Type; its answer,
			// once verified and mapped like any delivery, is a 200 echoing the header.
			check := in.contentType
			in.contentType = func(ct string) string {
				if ct == "" {
					return ""
				}
				if check != nil {
					return check(ct)
				}
				return checkContentType(ct)
			}
			in.acknowledge = func(a *answer) *answer {
				return &answer{status: http.StatusOK, body: a.body, header: http.Header{name: {value}}}
			}
		}
	}
	return h.accept.accept(ctx, w, r, in)
}

// verify checks the delivery's signature and answers a delivery already published; it returns
// the delivery id.
func (h *Webhook) verify(ctx context.Context, r *http.Request, body []byte, tenantID, source string, sc *tenants.SourceConfig) (string, *answer) {
	verified, err := h.verifier.Verify(&sc.Config, verify.Delivery{Header: r.Header, Query: r.URL.Query(), Body: body})
	if err != nil {
		var rej *verify.Rejection
		if !errors.As(err, &rej) {
			// The tenants file was validated at start, so this is a bug, not the sender's fault.
			h.log.ErrorContext(ctx, "webhook verification config", "tenant", tenantID, "source", source, "err", err)
			return "", internalError()
		}
		h.rejections.Add(ctx, 1, metric.WithAttributes(attribute.String("source", source), attribute.String("reason", string(rej.Reason))))
		h.log.InfoContext(ctx, "webhook rejected", "tenant", tenantID, "source", source, "reason", rej.Reason, "detail", rej.Message)
		if rej.Forbidden() {
			return "", rejected(http.StatusForbidden, Rejected{Error: "forbidden", Code: string(rej.Reason), Reason: rej.Message})
		}
		return "", rejected(http.StatusUnauthorized, Rejected{Error: "unauthorized", Code: string(rej.Reason), Reason: rej.Message})
	}
	id := verified.DeliveryID
	if id != "" && h.cfg.Deliveries != nil {
		seen, err := h.cfg.Deliveries.Seen(ctx, tenantID, source, id)
		if err != nil {
			// Publishing again is safe (events are deduplicated downstream); refusing is not.
			h.log.WarnContext(ctx, "delivery lookup failed; publishing", "tenant", tenantID, "source", source, "err", err)
		} else if seen {
			h.duplicates.Add(ctx, 1, metric.WithAttributes(attribute.String("source", source)))
			return id, &answer{status: http.StatusOK, body: WebhookAccepted{Accepted: []string{}, DuplicateDelivery: true}}
		}
	}
	return id, nil
}

// events maps a verified body to valid events: the generic source sends canonical JSON, the
// others go through their adapter and then the same rules.
func (h *Webhook) events(ctx context.Context, ad adapter.Adapter, body []byte, header http.Header, delivery string, settings adapter.Settings, opts canonical.Options) ([]canonical.Event, []adapter.Skip, error) {
	if ad == nil {
		events, err := canonical.Decode(body, opts)
		return events, nil, err
	}
	d := adapter.Delivery{Header: header, Body: body, DeliveryID: delivery, Received: opts.Now, Settings: settings}
	var res adapter.Result
	var err error
	if cm, ok := ad.(ContextMapper); ok {
		res, err = cm.MapContext(ctx, d)
	} else {
		res, err = ad.Map(d)
	}
	if err != nil || len(res.Events) == 0 {
		return nil, res.Skipped, err
	}
	if err := canonical.Validate(res.Events, opts); err != nil {
		return nil, res.Skipped, err
	}
	return res.Events, res.Skipped, nil
}
