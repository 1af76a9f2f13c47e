package receiver

import (
	"context"
	"net/http"
	"net/url"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracedTransport records each request base sends as an HTTP client span (the contrib
// instrumentation) and sends the W3C traceparent with it, so the receiver can put its own work
// in the same trace. Chat webhook URLs hold their secret in the path and query, so the span sees
// the URL with only its scheme and host; the request itself goes to the real URL.
func tracedTransport(base http.RoundTripper, tp trace.TracerProvider) http.RoundTripper {
	// Metrics of the attempts are dispatch's (per receiver); the transport's own are left out.
	inner := otelhttp.NewTransport(restoreURL{base}, otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Host }))
	return redactURL{inner}
}

type realURLKey struct{}

// redactURL hands the instrumentation a request whose URL has no path, query or user.
type redactURL struct{ next http.RoundTripper }

func (t redactURL) RoundTrip(r *http.Request) (*http.Response, error) {
	shown := &url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host, Path: "/"}
	r2 := r.Clone(context.WithValue(r.Context(), realURLKey{}, r.URL))
	r2.URL = shown
	return t.next.RoundTrip(r2)
}

// restoreURL puts the real URL back before the request leaves.
type restoreURL struct{ base http.RoundTripper }

func (t restoreURL) RoundTrip(r *http.Request) (*http.Response, error) {
	if u, ok := r.Context().Value(realURLKey{}).(*url.URL); ok {
		r2 := r.Clone(r.Context())
		r2.URL = u
		r = r2
	}
	return t.base.RoundTrip(r)
}

// tracerOf is the tracer of the SMTP sessions; a no-op one without a provider.
func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return noop.NewTracerProvider().Tracer("")
	}
	return tp.Tracer("github.com/ticketpulse/ticketpulse/services/notify/receiver")
}

// smtpSpan starts the client span of an SMTP session with the relay (never its credentials or
// the message).
func smtpSpan(ctx context.Context, t trace.Tracer, smarthost string) (context.Context, trace.Span) {
	return t.Start(ctx, "SMTP "+smarthost, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("network.protocol.name", "smtp"), attribute.String("server.address", smarthost)))
}

// endSMTP ends the span with the attempt's result.
func endSMTP(span trace.Span, r Result) {
	if r.Status != 0 {
		span.SetAttributes(attribute.Int("smtp.reply_code", r.Status))
	}
	if r.Err != nil {
		span.SetStatus(codes.Error, r.Err.Error())
	}
	span.End()
}
