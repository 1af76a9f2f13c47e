package app

import (
	"context"
	"errors"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
)

// publishFunc is a Publisher.
type publishFunc func(ctx context.Context, tenant string, agents, teams, queues []string) error

func (f publishFunc) Publish(ctx context.Context, tenant string, agents, teams, queues []string) error {
	return f(ctx, tenant, agents, teams, queues)
}

// A round of snapshots is a trace of its own per tenant, linked to the batches that changed the
// tenant's figures, at most maxSnapshotLinks of them; a failed publish marks the span failed.
func TestSnapshotRoundLinksTheChangingBatches(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	d := newDirtySet()
	changed := func(tenant string) store.Result {
		return store.Result{Changed: map[string]map[bucket.Scope]struct{}{tenant: {{Kind: bucket.Agent, ID: "ana"}: {}}}}
	}
	var batches []trace.SpanContext
	for range maxSnapshotLinks + 4 {
		ctx, span := tracer.Start(context.Background(), "batch")
		d.add(ctx, changed("acme"))
		batches = append(batches, span.SpanContext())
		span.End()
	}
	d.add(context.Background(), changed("globex"))

	ctx, cancel := context.WithCancel(context.Background())
	rounds := make(chan trace.SpanContext, 4)
	done := make(chan error, 1)
	go func() {
		done <- d.publishEvery(ctx, 10*time.Millisecond, publishFunc(func(ctx context.Context, tenant string, _, _, _ []string) error {
			rounds <- trace.SpanContextFromContext(ctx)
			if tenant == "globex" {
				return errors.New("nats: timeout")
			}
			return nil
		}), tracer, quiet)
	}()
	<-rounds
	<-rounds
	cancel()
	<-done

	byTenant := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.Name() == "kpi snapshot" {
			for _, kv := range s.Attributes() {
				if kv.Key == "tenant" {
					byTenant[kv.Value.AsString()] = s
				}
			}
		}
	}
	acme, globex := byTenant["acme"], byTenant["globex"]
	if acme == nil || globex == nil {
		t.Fatalf("snapshot spans by tenant %v, want acme's and globex's", byTenant)
	}
	if acme.Parent().IsValid() || len(acme.Links()) != maxSnapshotLinks {
		t.Fatalf("acme's round: parent %v, %d links; want a new trace linked to the first %d batches", acme.Parent(), len(acme.Links()), maxSnapshotLinks)
	}
	for i, l := range acme.Links() {
		if !l.SpanContext.Equal(batches[i]) {
			t.Errorf("link %d to %v, want batch %v", i, l.SpanContext, batches[i])
		}
	}
	if len(globex.Links()) != 0 || globex.Status().Code.String() != "Error" {
		t.Errorf("globex's round: %d links, status %v; want none and failed", len(globex.Links()), globex.Status())
	}
}
