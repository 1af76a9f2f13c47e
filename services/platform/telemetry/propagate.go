package telemetry

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// propagatingProvider is the tracer provider of a service that exports nothing: its spans record
// nothing and cost two random numbers, yet each has a span context of its own in its parent's
// trace (a new sampled trace without one), so trace context still flows through the messages to
// services that do export.
type propagatingProvider struct{ embedded.TracerProvider }

func (propagatingProvider) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return propagatingTracer{}
}

type propagatingTracer struct{ embedded.Tracer }

func (propagatingTracer) Start(ctx context.Context, _ string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanContextFromContext(ctx)
	if sc := trace.NewSpanStartConfig(opts...); sc.NewRoot() {
		parent = trace.SpanContext{}
	}
	cfg := trace.SpanContextConfig{TraceFlags: trace.FlagsSampled}
	if parent.IsValid() {
		cfg.TraceID, cfg.TraceFlags, cfg.TraceState = parent.TraceID(), parent.TraceFlags(), parent.TraceState()
	} else {
		binary.BigEndian.PutUint64(cfg.TraceID[:8], rand.Uint64())
		binary.BigEndian.PutUint64(cfg.TraceID[8:], rand.Uint64())
	}
	binary.BigEndian.PutUint64(cfg.SpanID[:], rand.Uint64()|1) // never the invalid zero id
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(cfg))
	// A context holding only a span context yields a non-recording span of it.
	return ctx, trace.SpanFromContext(ctx)
}

// Traceparent is the W3C traceparent of ctx's span (ended or not), for storing with work done
// later (a timer); empty without a valid span context.
func Traceparent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// SpanContextOf parses a W3C traceparent (Traceparent's); invalid when s is not one.
func SpanContextOf(s string) trace.SpanContext {
	if s == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": s}))
}
