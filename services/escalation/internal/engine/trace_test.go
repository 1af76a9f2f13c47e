package engine

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// One chain is one trace: a ticket's judgement continues its event's trace and plans the SLA
// timer with it; the timer fires later in a span that continues and links to that trace, and
// the change it publishes to ESCALATIONS carries the context of its send span, in the same trace.
func TestJudgementAndTimerContinueTheEventsTrace(t *testing.T) {
	f := newFixture(t, testRules)
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	f.queue = timers.New(f.rdb, timers.Options{Lease: time.Second, Traces: true})
	f.engine = New(f.rdb, escalationstore.New(f.rdb, time.Hour), f.queue, f.pub, ruleset(t, testRules), func() time.Time { return f.now },
		Options{TicketRetention: time.Hour, Tracer: tracer}, quiet)
	ctx := context.Background()
	eventCtx, event := tracer.Start(ctx, "ingest")
	event.End()
	// Created 30 minutes ago: first response due in 30 minutes, nothing breached yet.
	if err := f.engine.TicketsTraced(ctx, []*tpv1.TicketEvent{created("e1", "T-1", f.now.Add(-30*time.Minute))},
		[]trace.SpanContext{trace.SpanContextFromContext(eventCtx)}); err != nil {
		t.Fatal(err)
	}
	byName := func(name string) sdktrace.ReadOnlySpan {
		t.Helper()
		var found sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.Name() == name {
				found = s
			}
		}
		if found == nil {
			t.Fatalf("no span %q", name)
		}
		return found
	}
	judged := byName("judge ticket")
	if judged.Parent().SpanID() != event.SpanContext().SpanID() || judged.SpanContext().TraceID() != event.SpanContext().TraceID() {
		t.Fatalf("judge ticket: parent %v, want the event's span %v", judged.Parent(), event.SpanContext())
	}

	f.now = f.now.Add(31 * time.Minute)
	cs, err := f.queue.Claim(ctx, f.now)
	if err != nil || len(cs) != 1 {
		t.Fatalf("claimed %+v (%v), want the ticket's timer", cs, err)
	}
	if errs := f.engine.Fire(ctx, cs); errs[0] != nil {
		t.Fatal(errs[0])
	}
	fired := byName("fire ticket timer")
	if fired.Parent().SpanID() != judged.SpanContext().SpanID() || fired.SpanContext().TraceID() != event.SpanContext().TraceID() ||
		len(fired.Links()) != 1 || fired.Links()[0].SpanContext.SpanID() != judged.SpanContext().SpanID() {
		t.Fatalf("fire ticket timer: parent %v, links %v; want the judgement that planned it as parent and link", fired.Parent(), fired.Links())
	}
	attrs := map[string]string{}
	for _, kv := range fired.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["tenant"] != "acme" || attrs["ticket_id"] != "T-1" || attrs["timer.lateness_seconds"] != "60" {
		t.Errorf("fire ticket timer attributes %v, want tenant acme, ticket T-1, 60 s late", attrs)
	}
	send := byName("send ESCALATIONS")
	if send.Parent().SpanID() != fired.SpanContext().SpanID() || send.SpanKind() != trace.SpanKindProducer {
		t.Fatalf("send ESCALATIONS: parent %v kind %v, want a producer child of the timer's span", send.Parent(), send.SpanKind())
	}
	s, err := f.js.Stream(ctx, stream.EscalationsName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := "00-" + event.SpanContext().TraceID().String() + "-" + send.SpanContext().SpanID().String() + "-01"
	if got := m.Header.Get("traceparent"); got != want {
		t.Errorf("ESCALATIONS message traceparent %q, want %q", got, want)
	}
}
