package redisconn

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// Commands sent inside a trace are spans of it, without their arguments; commands sent outside
// any trace (probes, background loops) make no span.
func TestInstrumentTracesOnlyWithinATrace(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real redis-server; skipped in -short mode")
	}
	rs, err := testenv.StartRedis(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Kill)
	ctx := context.Background()
	c, err := Open(ctx, "redis://"+rs.Addr+"/0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	if err := Instrument(c, tp); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "tp:outside", "body-outside", 0).Err(); err != nil {
		t.Fatal(err)
	}
	tctx, span := tp.Tracer("test").Start(ctx, "work")
	if err := c.Set(tctx, "tp:inside", "body-inside", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pipe := c.Pipeline()
	pipe.Get(tctx, "tp:inside")
	pipe.Get(tctx, "tp:outside")
	if _, err := pipe.Exec(tctx); err != nil {
		t.Fatal(err)
	}
	span.End()

	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
		if s.SpanContext().TraceID() != span.SpanContext().TraceID() {
			t.Errorf("span %s is not in the caller's trace", s.Name())
		}
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), "body-") {
				t.Errorf("span %s attribute %s shows a value sent: %s", s.Name(), kv.Key, kv.Value.Emit())
			}
		}
	}
	// A connection the pipeline opened says hello in the trace too.
	if got := strings.Join(names, ","); strings.ReplaceAll(got, "hello,", "") != "set,redis.pipeline get,work" {
		t.Errorf("spans %s, want set,redis.pipeline get,work", got)
	}
}
