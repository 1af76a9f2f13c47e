// Package httpapi serves POST /v1/tenants/{tenant}/events: canonical JSON in from a caller whose
// credential may write the tenant's events, 202 only after JetStream acknowledged every event;
// and the helpdesk webhooks, which prove themselves by their signatures instead.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/publish"
	"github.com/ticketpulse/ticketpulse/services/platform/auth"
)

// Route is the events endpoint's pattern, also its metrics label.
const Route = "/v1/tenants/{tenant}/events"

// RetryAfter is what a 503 tells the sender to wait, in seconds.
const RetryAfter = 2

// Publisher sends an accepted batch and waits for every acknowledgement.
type Publisher interface {
	Publish(ctx context.Context, events []*ticketpulsev1.TicketEvent) (publish.Result, error)
}

// Authorizer lets a request through to next only with a credential that may act on the path's
// {tenant} with need, and answers every other request itself (package auth's Gate).
type Authorizer interface {
	HTTP(need auth.Scope, next http.Handler) http.Handler
}

// Config holds the request limits.
type Config struct {
	// Auth decides who may post events; required.
	Auth           Authorizer
	MaxEvents      int
	MaxBodyBytes   int64
	PublishTimeout time.Duration
	MaxFutureSkew  time.Duration
	// Limits are the tenants' rate limits, shared with the webhooks; nil limits nothing.
	Limits *RateLimits
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TracerProvider, when set, makes Register serve the route in a server span of the
	// contrib HTTP instrumentation; without it the handler starts its own.
	TracerProvider trace.TracerProvider
}

// Handler serves the events route.
type Handler struct {
	cfg    Config
	tracer trace.Tracer
	accept pipeline

	requests   metric.Int64Counter
	accepted   metric.Int64Counter
	duplicates metric.Int64Counter
	latency    metric.Float64Histogram
	perTenant  eventCounter
}

// New returns the handler; its instruments are created on meter.
func New(cfg Config, pub Publisher, log *slog.Logger, tracer trace.Tracer, meter metric.Meter) (*Handler, error) {
	if cfg.Auth == nil {
		return nil, errors.New("events API: no authorizer")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, tracer: tracer, accept: pipeline{pub: pub, log: log, now: cfg.Now,
		publishTimeout: cfg.PublishTimeout, maxFutureSkew: cfg.MaxFutureSkew, maxEvents: cfg.MaxEvents}}
	var errs [5]error
	h.perTenant, errs[4] = newEventCounter(meter)
	h.requests, errs[0] = meter.Int64Counter("ingest.http.requests",
		metric.WithDescription("Event API requests by route, status code and tenant (unknown unless the credential was checked against it)."))
	h.accepted, errs[1] = meter.Int64Counter("ingest.events.accepted",
		metric.WithDescription("Events acknowledged by JetStream, duplicates included."))
	h.duplicates, errs[2] = meter.Int64Counter("ingest.events.duplicates",
		metric.WithDescription("Events JetStream already held (acknowledged as duplicates)."))
	h.latency, errs[3] = newPublishLatency(meter)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("ingest instruments: %w", err)
	}
	return h, nil
}

// Register adds the route to mux. The pattern has no method, so other methods get this
// handler's JSON 405 rather than the mux's plain-text one.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle(Route, instrument(h, Route, h.cfg.TracerProvider))
}

// instrument serves h in a server span named after the route, continuing the caller's trace
// (traceparent); nil tp leaves h as it is.
func instrument(h http.Handler, route string, tp trace.TracerProvider) http.Handler {
	if tp == nil {
		return h
	}
	// The request metrics are this package's own (by route and status); the contrib's are left out.
	return otelhttp.NewHandler(h, "POST "+route, otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()))
}

// Accepted is the 202 body.
type Accepted struct {
	Accepted   []string `json:"accepted"`
	Duplicates int      `json:"duplicates"`
}

// Rejected is the body of every 4xx and 5xx: Problems for 400, Reason otherwise, and for a
// webhook that failed verification the machine-readable Code (see verify.Reason). Problems
// lists at most canonical.MaxProblems; MoreProblems counts the ones left out.
type Rejected struct {
	Error        string              `json:"error"`
	Code         string              `json:"code,omitempty"`
	Reason       string              `json:"reason,omitempty"`
	Problems     []canonical.Problem `json:"problems,omitempty"`
	MoreProblems int                 `json:"more_problems,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	var authorized bool
	ctx, status := traced(h.tracer, r, Route, []attribute.KeyValue{attribute.String("tenant", tenant)},
		func(ctx context.Context) int {
			var st int
			st, authorized = h.authorize(ctx, w, r, tenant)
			return st
		})
	// The path is outside input: only a tenant the credential was checked against is a label.
	label := "unknown"
	if authorized {
		label = tenant
	}
	h.requests.Add(ctx, 1, metric.WithAttributes(attribute.String("route", Route), attribute.Int("status", status), attribute.String("tenant", label)))
}

// authorize puts the credential check before everything that costs: the body is read, and the
// tenant's rate limit and the admission control are asked, only for a caller that may post to
// tenant, so a flood without credential is answered from its headers alone.
func (h *Handler) authorize(ctx context.Context, w http.ResponseWriter, r *http.Request, tenant string) (status int, authorized bool) {
	if a := precheck(r, tenant); a != nil {
		return h.accept.respond(ctx, w, &intake{tenant: tenant, logRejections: true}, a), false
	}
	serve := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		// w itself, not the recorder: http.MaxBytesReader needs the server's own writer to
		// close the connection behind a body that is too large.
		authorized = true
		status = h.serve(r.Context(), w, r, tenant)
	})
	refusal := &statusRecorder{ResponseWriter: w}
	h.cfg.Auth.HTTP(auth.EventsWrite, serve).ServeHTTP(refusal, r.WithContext(ctx))
	if !authorized {
		// Refused: the authorizer answered.
		status = refusal.status
	}
	return status, authorized
}

// statusRecorder learns the status an authorizer answered a refusal with, for the metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the server's writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// traced runs serve in a server span for route that continues the caller's trace (traceparent),
// and records the status code on it; 5xx marks the span as failed. Served through instrument,
// the span is the contrib instrumentation's, given attrs here.
func traced(tracer trace.Tracer, r *http.Request, route string, attrs []attribute.KeyValue, serve func(ctx context.Context) int) (context.Context, int) {
	if span := trace.SpanFromContext(r.Context()); span.SpanContext().IsValid() {
		span.SetAttributes(attrs...)
		return r.Context(), serve(r.Context())
	}
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := tracer.Start(ctx, "POST "+route, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	defer span.End()
	status := serve(ctx)
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	return ctx, status
}

func (h *Handler) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, tenant string) int {
	return h.accept.accept(ctx, w, r, &intake{
		tenant:        tenant,
		attrs:         []any{"tenant", tenant},
		maxBody:       h.cfg.MaxBodyBytes,
		logRejections: true,
		mapBody: func(body []byte, opts canonical.Options) ([]canonical.Event, []adapter.Skip, error) {
			events, err := canonical.Decode(body, opts)
			return events, nil, err
		},
		admit: func(ctx context.Context, n int, now time.Time) (*answer, func()) {
			return h.cfg.Limits.admit(ctx, tenant, n, now)
		},
		retrySafe: "sending the same request again is safe",
		stored: func(ctx context.Context, ids []string, res publish.Result, _ []adapter.Skip, took time.Duration) *answer {
			h.latency.Record(ctx, took.Seconds())
			h.accepted.Add(ctx, int64(len(ids)))
			h.duplicates.Add(ctx, int64(res.Duplicates)) // also when 0, so the series exists from the start
			h.perTenant.stored(ctx, tenant, SourceAPI, len(ids), res.Duplicates)
			return &answer{status: http.StatusAccepted, body: Accepted{Accepted: ids, Duplicates: res.Duplicates}}
		},
	})
}

// checkContentType accepts application/json with, at most, a UTF-8 charset (JSON is UTF-8).
func checkContentType(v string) string {
	const want = "Content-Type must be application/json"
	if v == "" {
		return want
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/json" {
		return want
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "charset must be utf-8"
	}
	return ""
}

// checkFormType accepts application/x-www-form-urlencoded, the body of a source that posts forms.
func checkFormType(v string) string {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "Content-Type must be application/x-www-form-urlencoded"
	}
	return ""
}

func writeJSON(log *slog.Logger, w http.ResponseWriter, status int, body any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(body); err != nil {
		log.Debug("write response", "status", status, "err", err)
	}
	return status
}
