package consume

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketpulse/ticketpulse/services/platform/stream"
)

// publishTraced publishes body with the W3C trace context of parent (none when empty).
func publishTraced(t *testing.T, js jetstream.JetStream, body, parent string) {
	t.Helper()
	m := &nats.Msg{Subject: "work.x", Data: []byte(body), Header: nats.Header{}}
	if parent != "" {
		m.Header.Set("traceparent", parent)
	}
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

const (
	traceA = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceB = "0af7651916cd43dd8448eb211c80319c"
)

// A batch is handled in one consumer span linked to every message's trace context, and each
// message hands the handler its own context. A batch of one trace continues that trace; a
// batch of several traces starts its own, linked to each.
func TestBatchSpanLinksEveryMessage(t *testing.T) {
	js := workStream(t)
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	var mu sync.Mutex
	var got []Decoded[string]
	var handlerSpans []trace.SpanContext
	handle := func(ctx context.Context, batch []Decoded[string]) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, batch...)
		handlerSpans = append(handlerSpans, trace.SpanContextFromContext(ctx))
		return nil
	}
	// Three messages stored before the consumer starts, so they come in one batch.
	publishTraced(t, js, "acme:a", "00-"+traceA+"-00f067aa0ba902b7-01")
	publishTraced(t, js, "acme:b", "00-"+traceB+"-b7ad6b7169203331-01")
	publishTraced(t, js, "acme:c", "")
	ctx, cancel := context.WithCancel(context.Background())
	c := New(js, Config{Service: "test", Stream: "WORK", Durable: "test", Filter: "work.>", BatchMax: 10,
		Linger: 50 * time.Millisecond, AckWait: time.Second, Tracer: tracer}, decode, handle, func(context.Context) error { return nil }, quiet)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, "three messages handled", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	// Then one alone: its batch continues its trace.
	publishTraced(t, js, "acme:d", "00-"+traceA+"-00f067aa0ba902b8-01")
	waitFor(t, "the fourth handled", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	wantTrace := map[string]string{"a": traceA, "b": traceB, "c": "00000000000000000000000000000000", "d": traceA}
	for _, d := range got {
		if d.Trace.TraceID().String() != wantTrace[d.Value] {
			t.Errorf("message %s: trace %s, want %s", d.Value, d.Trace.TraceID(), wantTrace[d.Value])
		}
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want one per batch (2)", len(spans))
	}
	first, second := spans[0], spans[1]
	if first.Name() != "process WORK" || first.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("span %q kind %v, want process WORK, consumer", first.Name(), first.SpanKind())
	}
	if first.Parent().IsValid() || len(first.Links()) != 2 ||
		first.Links()[0].SpanContext.TraceID().String() != traceA || first.Links()[1].SpanContext.TraceID().String() != traceB {
		t.Errorf("mixed batch: parent %v, links %v; want no parent and links to traces A and B", first.Parent(), first.Links())
	}
	attrs := map[string]string{}
	for _, kv := range first.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	for k, v := range map[string]string{"messaging.system": "nats", "messaging.operation.type": "process", "messaging.destination.name": "WORK",
		"messaging.consumer.group.name": "test", "messaging.batch.message_count": "3"} {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	if second.Parent().TraceID().String() != traceA || second.Parent().SpanID().String() != "00f067aa0ba902b8" || len(second.Links()) != 1 {
		t.Errorf("batch of one: parent %v, links %d; want the message's context as parent and one link", second.Parent(), len(second.Links()))
	}
	if !handlerSpans[0].Equal(first.SpanContext()) || !handlerSpans[1].Equal(second.SpanContext()) {
		t.Errorf("the handler did not run in its batch's span")
	}
}

// A dead letter carries the trace of the message it gives up on.
func TestDeadLetterKeepsTheMessagesTrace(t *testing.T) {
	js := workStream(t)
	r := start(t, js, func(context.Context, []Decoded[string]) error { return nil }, func(context.Context) error { return nil })
	parent := "00-" + traceA + "-00f067aa0ba902b7-01"
	publishTraced(t, js, "undecodable", parent)
	waitFor(t, "the message dead-lettered", func() bool { return r.dead.Load() == 1 })
	dl, err := js.Stream(context.Background(), stream.DeadletterName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dl.GetLastMsgForSubject(context.Background(), "deadletter.test.unknown")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("traceparent"); got != parent {
		t.Errorf("dead letter traceparent %q, want the message's %q", got, parent)
	}
}
