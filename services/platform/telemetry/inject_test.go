package telemetry

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// What a caller sends with a request (traceparent, tracestate, baggage) reaches the messages of
// its events only as trace context: baggage never, a tracestate only when it is small.
func TestInjectCarriesOnlyBoundedTraceContext(t *testing.T) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	longState := "vendor=" + strings.Repeat("x", 250) + ",other=" + strings.Repeat("y", 250)
	tests := []struct {
		name      string
		state     string
		wantState string
	}{
		{name: "small tracestate kept", state: "congo=t61rcWkgMzE", wantState: "congo=t61rcWkgMzE"},
		{name: "long tracestate dropped", state: longState, wantState: ""},
		{name: "no tracestate", state: "", wantState: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			incoming := propagation.HeaderCarrier{}
			incoming.Set("traceparent", parent)
			if tt.state != "" {
				incoming.Set("tracestate", tt.state)
			}
			incoming.Set("baggage", "user="+strings.Repeat("b", 4000))
			ctx := otel.GetTextMapPropagator().Extract(context.Background(), incoming)

			h := nats.Header{}
			Inject(ctx, h)
			if got := h.Get("traceparent"); got != parent {
				t.Errorf("traceparent %q; want %q", got, parent)
			}
			if got := h.Get("tracestate"); got != tt.wantState {
				t.Errorf("tracestate %q; want %q", got, tt.wantState)
			}
			if got := h.Get("baggage"); got != "" {
				t.Errorf("baggage reached the message: %d bytes", len(got))
			}
			back := trace.SpanContextFromContext(Extract(context.Background(), h))
			if back.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || back.TraceState().String() != tt.wantState {
				t.Errorf("extracted from the message: trace %s, tracestate %q", back.TraceID(), back.TraceState().String())
			}
		})
	}
}
