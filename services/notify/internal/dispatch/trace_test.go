package dispatch

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// A change is routed in its message's trace; the group's send fires later in a span that
// continues the routing's trace and links to it, each attempt is a span of its own, and a retry
// continues the trace of the send that failed.
func TestRoutingSendAndRetryContinueTheChangesTrace(t *testing.T) {
	f := newFixture(t, "1h")
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	f.queue = timers.New(f.rdb, timers.Options{Prefix: "tp:notify:", Traces: true})
	f.d = New(f.store, f.once, f.queue, f.js, f.d.Routing(), f.now, Options{Tracer: tracer}, quiet)
	ctx := context.Background()
	msgCtx, published := tracer.Start(ctx, "send ESCALATIONS")
	published.End()
	c := &tpv1.EscalationChange{Kind: tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, Sequence: 1, At: timestamppb.New(f.now()),
		Escalation: &tpv1.Escalation{Id: "r.t.T-1.1", Tenant: "acme", Rule: "r", SubjectKind: "ticket", State: tpv1.EscalationState_ESCALATION_STATE_OPEN,
			Labels: map[string]string{"tenant": "acme", "rule": "r"}}}
	if err := f.d.HandleTraced(ctx, []*tpv1.EscalationChange{c}, []trace.SpanContext{trace.SpanContextFromContext(msgCtx)}); err != nil {
		t.Fatal(err)
	}
	f.advance(30 * time.Second)
	f.fire(t)
	list, _, err := f.store.List(ctx, "acme", deliveries.Filter{}, 10, "")
	if err != nil || len(list) != 1 {
		t.Fatal(err, list)
	}
	f.advance(f.due(t, deliveryTimer("acme", list[0].ID)))
	f.fire(t)

	spans := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = append(spans[s.Name()], s)
	}
	one := func(name string) sdktrace.ReadOnlySpan {
		t.Helper()
		if len(spans[name]) != 1 {
			t.Fatalf("%d spans %q, want 1 (spans: %v)", len(spans[name]), name, spans)
		}
		return spans[name][0]
	}
	routed, group, retry := one("route change"), one("send group"), one("retry delivery")
	if routed.Parent().SpanID() != published.SpanContext().SpanID() {
		t.Errorf("route change: parent %v, want the change's message span", routed.Parent())
	}
	if group.Parent().SpanID() != routed.SpanContext().SpanID() || len(group.Links()) != 1 || group.Links()[0].SpanContext.SpanID() != routed.SpanContext().SpanID() {
		t.Errorf("send group: parent %v links %v, want the routing as parent and link", group.Parent(), group.Links())
	}
	if retry.Parent().SpanID() != group.SpanContext().SpanID() || retry.SpanContext().TraceID() != published.SpanContext().TraceID() {
		t.Errorf("retry delivery: parent %v, want the failed send's span, in the change's trace", retry.Parent())
	}
	attempts := spans["deliver hook"]
	if len(attempts) != 2 || attempts[0].Parent().SpanID() != group.SpanContext().SpanID() || attempts[1].Parent().SpanID() != retry.SpanContext().SpanID() {
		t.Fatalf("attempt spans %v, want one below the group send and one below the retry", attempts)
	}
	for _, kv := range attempts[1].Attributes() {
		if kv.Key == "notify.attempt" && kv.Value.AsInt64() != 2 {
			t.Errorf("second attempt numbered %d", kv.Value.AsInt64())
		}
	}
}
