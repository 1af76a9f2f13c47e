// Package consumer feeds the TICKETS stream into the KPI write path: a durable pull consumer, batches
// that never wait for a full batch when traffic is light, explicit acks only after the write
// succeeded, and a dead letter for messages that cannot be processed.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/protobuf/proto"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/natsconn"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
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
}

// Consumer runs the workers.
type Consumer struct {
	js      jetstream.JetStream
	cfg     Config
	w       Writer
	healthy func(context.Context) error
	changed func(store.Result)
	log     *slog.Logger

	events, duplicates, deadLettered metric.Int64Counter
	batchSize                        metric.Int64Histogram
	writeSeconds                     metric.Float64Histogram
}

// New returns a consumer. healthy tells whether the store is reachable (a failing batch is only
// suspected of poison while it is); changed receives what each batch changed.
func New(js jetstream.JetStream, cfg Config, w Writer, healthy func(context.Context) error, changed func(store.Result), meter metric.Meter, log *slog.Logger) (*Consumer, error) {
	c := &Consumer{js: js, cfg: cfg, w: w, healthy: healthy, changed: changed, log: log}
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
	if c.batchSize, err = meter.Int64Histogram("kpi_batch_size", metric.WithDescription("Messages per processed batch.")); err != nil {
		return nil, err
	}
	if c.writeSeconds, err = meter.Float64Histogram("kpi_batch_write_seconds", metric.WithDescription("Time to write one batch to Redis."), metric.WithUnit("s")); err != nil {
		return nil, err
	}
	return c, nil
}

// Run consumes until ctx ends. Batches in hand when it ends are finished and acked; nothing
// unfinished is acked.
func (c *Consumer) Run(ctx context.Context) error {
	stream, err := natsconn.WaitStream(ctx, c.js, natsconn.TicketsStream, c.log)
	if err != nil {
		return err
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       c.cfg.Durable,
		Description:   "KPI write path",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    -1, // a store outage must never drop events; poison is dead-lettered by us
		MaxAckPending: max(c.cfg.BatchMax*(c.cfg.Workers+1)*4, 1000),
		FilterSubject: "tickets.>",
	})
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", c.cfg.Durable, err)
	}
	// Prefetch enough that every worker finds a full batch waiting while the next pull is under way.
	it, err := cons.Messages(jetstream.PullMaxMessages(c.cfg.BatchMax * (c.cfg.Workers + 1) * 2))
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.cfg.Durable, err)
	}
	c.log.Info("consuming", "stream", natsconn.TicketsStream, "durable", c.cfg.Durable, "workers", c.cfg.Workers, "batch_max", c.cfg.BatchMax)

	// Workers process with a context that outlives ctx, so a batch in hand is finished on shutdown.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var wg sync.WaitGroup
	errc := make(chan error, c.cfg.Workers)
	for i := 0; i < c.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				batch, err := c.collect(ctx, it)
				if len(batch) > 0 {
					c.process(work, batch)
				}
				if err != nil {
					if !errors.Is(err, context.Canceled) && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						errc <- err
					}
					return
				}
			}
		}()
	}
	<-ctx.Done()
	it.Stop()
	wg.Wait()
	close(errc)
	return <-errc
}

// collect blocks for one message, then takes whatever else arrives within Linger, up to BatchMax.
func (c *Consumer) collect(ctx context.Context, it jetstream.MessagesContext) ([]jetstream.Msg, error) {
	first, err := it.Next(jetstream.NextContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Canceled
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil, err
		}
		c.log.Warn("fetch", "err", err)
		return nil, nil
	}
	batch := []jetstream.Msg{first}
	for len(batch) < c.cfg.BatchMax {
		m, err := it.Next(jetstream.NextMaxWait(c.cfg.Linger))
		if err != nil {
			break
		}
		batch = append(batch, m)
	}
	return batch, nil
}

type decoded struct {
	msg    jetstream.Msg
	tenant string
	ticket string
	event  contrib.Event
}

func (c *Consumer) process(ctx context.Context, batch []jetstream.Msg) {
	c.batchSize.Record(ctx, int64(len(batch)))
	var good []decoded
	for _, m := range batch {
		d, err := decode(m)
		if err != nil {
			c.deadLetter(ctx, m, "undecodable", err)
			continue
		}
		good = append(good, d)
	}
	if len(good) == 0 {
		return
	}
	if err := c.write(ctx, good); err == nil {
		return
	} else if !c.suspect(ctx, good) {
		c.log.Warn("write batch; will be redelivered", "events", len(good), "err", err)
		c.nak(good)
		return
	}
	// Delivered several times while the store is healthy: isolate the message that fails.
	for _, d := range good {
		if err := c.write(ctx, []decoded{d}); err != nil {
			if c.healthy(ctx) == nil {
				c.deadLetter(ctx, d.msg, "write failed", err)
			} else {
				c.nak([]decoded{d})
			}
		}
	}
}

func (c *Consumer) suspect(ctx context.Context, ds []decoded) bool {
	for _, d := range ds {
		if md, err := d.msg.Metadata(); err == nil && int(md.NumDelivered) >= c.cfg.SuspectAfter {
			return c.healthy(ctx) == nil
		}
	}
	return false
}

func (c *Consumer) nak(ds []decoded) {
	for _, d := range ds {
		_ = d.msg.NakWithDelay(time.Second)
	}
}

func (c *Consumer) write(ctx context.Context, ds []decoded) error {
	type tk struct{ tenant, id string }
	index := map[tk]int{}
	var tickets []store.Ticket
	for _, d := range ds {
		k := tk{d.tenant, d.ticket}
		i, ok := index[k]
		if !ok {
			i = len(tickets)
			index[k] = i
			tickets = append(tickets, store.Ticket{Tenant: d.tenant, ID: d.ticket})
		}
		tickets[i].Events = append(tickets[i].Events, d.event)
	}
	start := time.Now()
	res, err := c.w.Write(ctx, tickets)
	c.writeSeconds.Record(ctx, time.Since(start).Seconds())
	if err != nil {
		return err
	}
	// The write is durable in Redis; an ack that gets lost only causes a harmless redelivery.
	for _, d := range ds {
		_ = d.msg.Ack()
	}
	c.events.Add(ctx, int64(res.NewEvents))
	c.duplicates.Add(ctx, int64(res.Duplicates))
	if c.changed != nil {
		c.changed(res)
	}
	return nil
}

var errInvalid = errors.New("invalid event")

func decode(m jetstream.Msg) (decoded, error) {
	var ev tpv1.TicketEvent
	if err := proto.Unmarshal(m.Data(), &ev); err != nil {
		return decoded{}, fmt.Errorf("%w: %w", errInvalid, err)
	}
	switch {
	case !idtoken.ValidTenant(ev.GetTenant()):
		return decoded{}, fmt.Errorf("%w: tenant %q", errInvalid, ev.GetTenant())
	case ev.GetTicketId() == "":
		return decoded{}, fmt.Errorf("%w: empty ticket_id", errInvalid)
	case ev.GetId() == "":
		return decoded{}, fmt.Errorf("%w: empty id", errInvalid)
	case ev.GetOccurredAt() == nil:
		return decoded{}, fmt.Errorf("%w: no occurred_at", errInvalid)
	}
	return decoded{msg: m, tenant: ev.GetTenant(), ticket: ev.GetTicketId(), event: contrib.FromProto(&ev)}, nil
}

// deadLetter stores the message with the reason in DEADLETTER, then terminates its delivery. If the
// dead letter cannot be stored, the message is left to be redelivered rather than dropped.
func (c *Consumer) deadLetter(ctx context.Context, m jetstream.Msg, reason string, cause error) {
	tenant := "unknown"
	if d, err := decode(m); err == nil {
		tenant = d.tenant
	}
	out := nats.NewMsg("deadletter.kpi." + tenant)
	out.Data = m.Data()
	out.Header.Set("Ticketpulse-Reason", reason)
	out.Header.Set("Ticketpulse-Error", cause.Error())
	out.Header.Set("Ticketpulse-Subject", m.Subject())
	if md, err := m.Metadata(); err == nil {
		out.Header.Set("Ticketpulse-Stream-Seq", strconv.FormatUint(md.Sequence.Stream, 10))
		out.Header.Set(jetstream.MsgIDHeader, "kpi-"+strconv.FormatUint(md.Sequence.Stream, 10))
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.js.PublishMsg(pctx, out); err != nil {
		c.log.Error("dead letter not stored; message kept for redelivery", "subject", m.Subject(), "err", err)
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	c.deadLettered.Add(ctx, 1)
	c.log.Warn("dead-lettered", "subject", m.Subject(), "reason", reason, "err", cause)
	_ = m.Term()
}
