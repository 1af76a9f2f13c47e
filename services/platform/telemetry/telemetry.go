// Package telemetry sets up structured logs, OpenTelemetry tracing and metrics (exposed for
// Prometheus), and carries trace context through NATS message headers.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// NewLogger builds a slog logger. format is "text" or "json"; level is debug, info, warn or error.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}

// Telemetry owns the service's tracer and meter providers.
type Telemetry struct {
	Tracer  trace.Tracer
	Meter   metric.Meter
	Metrics http.Handler
	// TracerProvider is what instrumentation (gRPC, HTTP, Redis) of this service records with.
	TracerProvider trace.TracerProvider
	// Traces is where spans go, as the environment said.
	Traces TraceConfig
	// Recording is whether spans are recorded (exported, or handed to a test): work that costs
	// something only to enrich traces (storing a timer's planning trace) is done only then.
	Recording bool

	shutdown []func(context.Context) error
}

// Option adjusts Setup.
type Option func(*options)

type options struct {
	lookup Lookup
	spans  []sdktrace.SpanProcessor
}

// WithEnv reads the OTEL_* variables through lookup instead of the process's environment.
func WithEnv(lookup Lookup) Option { return func(o *options) { o.lookup = lookup } }

// WithSpanProcessor hands every span to p as well (a test's in-memory exporter).
func WithSpanProcessor(p sdktrace.SpanProcessor) Option {
	return func(o *options) { o.spans = append(o.spans, p) }
}

// Setup builds the providers. Spans are exported as the OTEL_* variables say (TracesFromEnv),
// to otlpEndpoint when they name no endpoint; with neither, spans are still created so trace
// context propagates between services, and nothing is sent anywhere. Metrics are served for
// Prometheus, and pushed over OTLP as newMeterProvider says.
func Setup(ctx context.Context, service, otlpEndpoint string, opts ...Option) (*Telemetry, error) {
	o := options{lookup: os.LookupEnv}
	for _, opt := range opts {
		opt(&o)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	t := &Telemetry{}
	tc, err := TracesFromEnv(o.lookup, otlpEndpoint)
	if err != nil {
		return nil, err
	}
	tp, shutdown, err := newTracerProvider(ctx, res, tc, o.spans)
	if err != nil {
		return nil, err
	}
	t.TracerProvider = tp
	t.Traces = tc
	t.Recording = tc.OTLP.Enabled || len(o.spans) > 0
	t.shutdown = append(t.shutdown, shutdown)

	mp, metricsHandler, err := newMeterProvider(ctx, res, o.lookup, otlpEndpoint)
	if err != nil {
		return nil, err
	}
	t.shutdown = append(t.shutdown, mp.Shutdown)

	// Global providers let instrumentation libraries (otelgrpc) find them.
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	t.Tracer = tp.Tracer("github.com/ticketpulse/ticketpulse/" + service)
	t.Meter = mp.Meter("github.com/ticketpulse/ticketpulse/" + service)
	t.Metrics = metricsHandler
	return t, nil
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// HeaderCarrier adapts NATS message headers to OpenTelemetry propagation.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set replaces key.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// MaxTraceStateBytes bounds the W3C tracestate a message carries (the size the W3C
// recommendation says a vendor may truncate to); a longer one is dropped, the traceparent kept.
const MaxTraceStateBytes = 512

// messages carry only the W3C trace context. Baggage is left out: it comes from whoever called
// ingest, and copied onto messages it would be stored with every event of a request (8 KiB
// each, for a thousand events).
var messages = propagation.TraceContext{}

// Inject writes the span context of ctx (W3C traceparent, and tracestate up to
// MaxTraceStateBytes) into h.
func Inject(ctx context.Context, h nats.Header) {
	if sc := trace.SpanContextFromContext(ctx); len(sc.TraceState().String()) > MaxTraceStateBytes {
		ctx = trace.ContextWithSpanContext(ctx, sc.WithTraceState(trace.TraceState{}))
	}
	messages.Inject(ctx, HeaderCarrier(h))
}

// Extract returns ctx carrying the remote span context found in h.
func Extract(ctx context.Context, h nats.Header) context.Context {
	return messages.Extract(ctx, HeaderCarrier(h))
}
