// Package consumer feeds the TICKETS stream into the KPI write path, on the shared batch consumer
// (platform/consume): a durable pull consumer, batches that never wait for a full batch when
// traffic is light, explicit acks only after the write succeeded, and a dead letter for messages
// that cannot be processed.
package consumer

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/consume"
	"github.com/ticketpulse/ticketpulse/services/platform/consumerlag"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
)

// Writer is the write path the consumer feeds.
type Writer interface {
	Write(ctx context.Context, tickets []store.Ticket) (store.Result, error)
}

// Config tunes the consumer.
type Config struct {
	Durable string
	// BatchMax bounds a batch; Linger is how long to wait for more messages once one arrived.
	BatchMax int
	Linger   time.Duration
	Workers  int
	AckWait  time.Duration
	// SuspectAfter is the delivery count from which a failing batch is retried message by message,
	// so that one bad message is dead-lettered instead of blocking the others.
	SuspectAfter int
	// Watermark, when set, replays what Redis lost of acknowledged events (consume.Watermark).
	Watermark *consume.Watermark
	// Tracer traces each batch and its write; nil traces nothing.
	Tracer trace.Tracer
}

// Consumer runs the workers.
type Consumer struct {
	inner   *consume.Consumer[decoded]
	w       Writer
	changed func(context.Context, store.Result)
	tracer  trace.Tracer

	events, duplicates, deadLettered metric.Int64Counter
	batchSize                        metric.Int64Histogram
	writeSeconds                     metric.Float64Histogram
}

// New returns a consumer. healthy tells whether the store is reachable (a failing batch is only
// suspected of poison while it is); changed receives what each batch changed, with the
// context of the batch's span.
func New(js jetstream.JetStream, cfg Config, w Writer, healthy func(context.Context) error, changed func(context.Context, store.Result), meter metric.Meter, log *slog.Logger) (*Consumer, error) {
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("")
	}
	c := &Consumer{w: w, changed: changed, tracer: cfg.Tracer}
	var err error
	if c.events, err = meter.Int64Counter("kpi_events_total", metric.WithDescription("Ticket events written to the KPI store.")); err != nil {
		return nil, err
	}
	if c.duplicates, err = meter.Int64Counter("kpi_duplicate_events_total", metric.WithDescription("Redelivered or duplicated events that changed nothing.")); err != nil {
		return nil, err
	}
	if c.deadLettered, err = meter.Int64Counter("kpi_dead_lettered_total", metric.WithDescription("Messages sent to the DEADLETTER stream.")); err != nil {
		return nil, err
	}
	if c.batchSize, err = meter.Int64Histogram("kpi_batch_size", metric.WithUnit(telemetry.UnitMessages), metric.WithDescription("Messages per processed batch.")); err != nil {
		return nil, err
	}
	if c.writeSeconds, err = meter.Float64Histogram("kpi_batch_write_seconds", metric.WithDescription("Time to write one batch to Redis."), metric.WithUnit("s")); err != nil {
		return nil, err
	}
	c.inner = consume.New(js, consume.Config{
		Service: "kpi", Stream: stream.TicketsName, Durable: cfg.Durable, Filter: stream.TicketsFilter, Description: "KPI write path",
		BatchMax: cfg.BatchMax, Linger: cfg.Linger, AckWait: cfg.AckWait, SuspectAfter: cfg.SuspectAfter, Workers: cfg.Workers,
		Watermark: cfg.Watermark, Tracer: cfg.Tracer,
	}, decode, c.write, healthy, log)
	c.inner.OnDeadLetter = func() { c.deadLettered.Add(context.Background(), 1) }
	if err := consumerlag.Observe(meter, js, log, c.inner.Lag()); err != nil {
		return nil, err
	}
	return c, nil
}

// Run consumes until ctx ends. Batches in hand when it ends are finished and acked; nothing
// unfinished is acked.
func (c *Consumer) Run(ctx context.Context) error { return c.inner.Run(ctx) }

type decoded struct {
	ticket, id string
	typ        string
	event      contrib.Event
}

// write stores a batch's events, grouped by ticket, in the KPI store.
func (c *Consumer) write(ctx context.Context, batch []consume.Decoded[decoded]) error {
	c.batchSize.Record(ctx, int64(len(batch)))
	type tk struct{ tenant, id string }
	index := map[tk]int{}
	var tickets []store.Ticket
	for _, d := range batch {
		k := tk{d.Tenant, d.Value.ticket}
		i, ok := index[k]
		if !ok {
			i = len(tickets)
			index[k] = i
			tickets = append(tickets, store.Ticket{Tenant: d.Tenant, ID: d.Value.ticket})
		}
		tickets[i].Events = append(tickets[i].Events, d.Value.event)
		tickets[i].IDs = append(tickets[i].IDs, d.Value.id)
	}
	wctx, span := c.tracer.Start(ctx, "kpi write", trace.WithAttributes(writeAttrs(batch, tickets)...))
	start := time.Now()
	res, err := c.w.Write(wctx, tickets)
	c.writeSeconds.Record(ctx, time.Since(start).Seconds())
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "write failed")
		span.End()
		return err
	}
	span.SetAttributes(attribute.Int("kpi.new_events", res.NewEvents), attribute.Int("kpi.duplicates", res.Duplicates))
	span.End()
	c.events.Add(ctx, int64(res.NewEvents))
	c.duplicates.Add(ctx, int64(res.Duplicates))
	if c.changed != nil {
		c.changed(ctx, res)
	}
	return nil
}

// writeAttrs describe a write: how many tickets and events, and the tenant, ticket and event
// when the batch holds one ticket.
func writeAttrs(batch []consume.Decoded[decoded], tickets []store.Ticket) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attribute.Int("kpi.tickets", len(tickets)), attribute.Int("kpi.events", len(batch))}
	if len(tickets) == 1 {
		attrs = append(attrs, telemetry.AttrTenant.String(tickets[0].Tenant), telemetry.AttrTicket.String(tickets[0].ID))
	}
	if len(batch) == 1 {
		attrs = append(attrs, telemetry.AttrEventID.String(batch[0].Value.id), telemetry.AttrEventType.String(batch[0].Value.typ))
	}
	return attrs
}

func decode(m jetstream.Msg) (string, decoded, error) {
	tenant, ev, err := eventcodec.Decode(m)
	if err != nil {
		return tenant, decoded{}, err
	}
	return tenant, decoded{ticket: contrib.StateID(ev), id: ev.GetId(), typ: eventcodec.TypeWord(ev.GetType()), event: contrib.FromProto(ev)}, nil
}
