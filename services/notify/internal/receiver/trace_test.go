package receiver

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A chat request is a client span of the attempt's trace, its traceparent sent along; the span
// shows the URL's host only, never the secret path and query the request itself goes to.
func TestHTTPRequestIsTracedWithoutItsSecretURL(t *testing.T) {
	rec := newRecorder(t, nil)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	s, err := New(Config{Name: "ops", Kind: KindSlack, Slack: &ChatConfig{URL: rec.url("/services/T/B/secret-token?k=secret-q")}},
		Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, attempt := tp.Tracer("test").Start(context.Background(), "attempt")
	if res := s.Send(ctx, notification(1)); res.Err != nil {
		t.Fatal(res.Err)
	}
	attempt.End()
	reqs := rec.requests()
	if len(reqs) != 1 || reqs[0].Path != "/services/T/B/secret-token" {
		t.Fatalf("receiver got %+v, want one request to the real path", reqs)
	}
	ended := spans.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans, want the request's and the attempt's", len(ended))
	}
	client := ended[0]
	if client.SpanKind() != trace.SpanKindClient || client.Parent().SpanID() != attempt.SpanContext().SpanID() {
		t.Fatalf("span %q kind %v parent %v, want a client span below the attempt", client.Name(), client.SpanKind(), client.Parent())
	}
	want := "00-" + attempt.SpanContext().TraceID().String() + "-" + client.SpanContext().SpanID().String() + "-01"
	if got := reqs[0].Header.Get("Traceparent"); got != want {
		t.Errorf("traceparent %q, want the client span's %q", got, want)
	}
	shown := client.Name()
	for _, kv := range client.Attributes() {
		shown += " " + kv.Value.Emit()
	}
	if strings.Contains(shown, "secret") || !strings.Contains(shown, rec.srv.Listener.Addr().String()) {
		t.Errorf("span shows %q: want the host, never the secret path or query", shown)
	}
}
