// Package consume runs a durable JetStream pull consumer in batches: a batch is acked only after
// its handler succeeded, a failing batch is retried message by message so one poison message is
// dead-lettered instead of blocking the others, and on shutdown the batch in hand is finished.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ticketpulse/ticketpulse/services/platform/deadletter"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
	"github.com/ticketpulse/ticketpulse/services/platform/watermark"
)

// Config names and tunes one consumer.
type Config struct {
	// Service names the dead-letter subject: deadletter.<service>.<tenant>.
	Service     string
	Stream      string
	Durable     string
	Filter      string
	Description string
	BatchMax    int
	// Linger is how long to wait for more messages once one arrived.
	Linger  time.Duration
	AckWait time.Duration
	// SuspectAfter is the delivery count from which a message that fails alone while the
	// store is healthy is dead-lettered.
	SuspectAfter int
	// DeliverLastPerSubject starts a new durable at the latest message of each subject (the KPI
	// stream keeps one snapshot per subject; older ones are not worth judging).
	DeliverLastPerSubject bool
	// Workers handle batches concurrently (default 1), each taking its own batch from the
	// shared prefetch.
	Workers int
	// StartNew makes a durable that does not exist yet start with the messages stored from now
	// on, not the whole stream. An existing durable always goes on from where it was.
	StartNew bool
	// Tracer starts a span per handled batch, linked to each message's trace context; nil
	// traces nothing.
	Tracer trace.Tracer
	// Watermark, when set with a positive Interval, records the durable's ack floor in Redis and
	// replays from the stream, through decode and the handler, what Redis lost of acknowledged
	// work (package watermark), concurrently with live consumption. Nil: nothing is recorded.
	Watermark *Watermark
}

// Watermark turns on watermark replay for a consumer; the watermark's Service, Stream, Durable
// and Filter are the consumer's. A replay runs decode and the handler on messages of an ordered
// consumer without acks, beside the live workers: the handler must be idempotent and safe to
// run concurrently, and must not ack, nak or extend the messages it is given (consume does that
// for live ones; replayed ones need nothing).
type Watermark struct {
	Redis watermark.Client
	Meter metric.Meter
	// Interval between watermark ticks; 0 turns the watermark off.
	Interval time.Duration
	// Missing is what a missing watermark means (watermark.ReplayAll or watermark.Adopt).
	Missing watermark.Policy
}

// Decoded is a message the handler understood, with the tenant it belongs to.
type Decoded[T any] struct {
	Msg    jetstream.Msg
	Tenant string
	Value  T
	// Trace is the trace context the message was published with (invalid when it has none):
	// a handler that works message by message starts its span as a child of it, so the work
	// joins the publisher's trace.
	Trace trace.SpanContext
}

// Handler processes a batch; an error means none of it is done.
type Handler[T any] func(ctx context.Context, batch []Decoded[T]) error

// Consumer consumes one stream.
type Consumer[T any] struct {
	js      jetstream.JetStream
	cfg     Config
	decode  func(jetstream.Msg) (string, T, error)
	handle  Handler[T]
	healthy func(context.Context) error
	log     *slog.Logger
	// OnDeadLetter, when set, is called for each dead-lettered message (metrics).
	OnDeadLetter func()
}

// New returns a consumer; decode turns a message into its tenant and value (an error
// dead-letters it at once), healthy tells whether the handler's store is reachable.
func New[T any](js jetstream.JetStream, cfg Config, decode func(jetstream.Msg) (string, T, error), handle Handler[T],
	healthy func(context.Context) error, log *slog.Logger) *Consumer[T] {
	if cfg.BatchMax < 1 {
		cfg.BatchMax = 100
	}
	if cfg.SuspectAfter < 2 {
		cfg.SuspectAfter = 5
	}
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("")
	}
	return &Consumer[T]{js: js, cfg: cfg, decode: decode, handle: handle, healthy: healthy, log: log}
}

// create creates (or updates) the durable, asking again while JetStream does not answer in time
// or answers 503: a cluster that is electing leaders, lacks a quorum or is busy placing replicas
// (a node just restarted, a loaded machine) can refuse or let a request time out, and a service
// that gave up then would need a restart to consume at all. Any other refusal is returned.
func (c *Consumer[T]) create(ctx context.Context, st jetstream.Stream, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	_, err := stream.AskAgain(ctx, createAttemptTimeout, func(err error) bool { return Transient(err) || unavailable(err) },
		func(attempt int, err error) {
			if attempt == 1 || attempt%10 == 0 {
				c.log.Warn("creating the consumer: JetStream did not answer or cannot serve it now; asking again", "stream", c.cfg.Stream,
					"durable", c.cfg.Durable, "attempt", attempt, "err", err)
			}
		},
		func(actx context.Context) (err error) {
			cons, err = c.createOnce(actx, st, cc)
			return err
		})
	return cons, err
}

// createAttemptTimeout bounds one attempt at creating the durable (a lookup and a create).
const createAttemptTimeout = 10 * time.Second

// unavailable reports whether JetStream answered that it cannot serve the request now (503: a
// cluster without a quorum or leader answers "insufficient resources").
func unavailable(err error) bool {
	apiErr, ok := errors.AsType[*jetstream.APIError](err)
	return ok && apiErr.Code == http.StatusServiceUnavailable
}

// createOnce makes one attempt at creating the durable from cc and the settings.
func (c *Consumer[T]) createOnce(ctx context.Context, st jetstream.Stream, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	switch {
	case c.cfg.DeliverLastPerSubject:
		cc.DeliverPolicy = jetstream.DeliverLastPerSubjectPolicy
	case c.cfg.StartNew:
		// "New" is pinned to a sequence here rather than left to DeliverNew: a clustered
		// consumer resolves DeliverNew when a leader takes it over before it has delivered
		// anything, so a leader change then would skip what was stored since its creation.
		info, err := st.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("read %s before creating consumer %s: %w", c.cfg.Stream, c.cfg.Durable, err)
		}
		cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cc.OptStartSeq = info.State.LastSeq + 1
	}
	switch existing, err := st.Consumer(ctx, c.cfg.Durable); {
	case err == nil:
		// A durable's start cannot change once it exists (JetStream refuses the update); it goes
		// on from where it was whatever this replica was told.
		cc.DeliverPolicy = existing.CachedInfo().Config.DeliverPolicy
		cc.OptStartSeq = existing.CachedInfo().Config.OptStartSeq
		cc.OptStartTime = existing.CachedInfo().Config.OptStartTime
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		// Unanswered is not absent: creating it anew could ask to move an existing durable's start.
		return nil, fmt.Errorf("look up consumer %s on %s: %w", c.cfg.Durable, c.cfg.Stream, err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", c.cfg.Durable, c.cfg.Stream, err)
	}
	return cons, nil
}

// Run consumes until ctx ends.
func (c *Consumer[T]) Run(ctx context.Context) error {
	st, err := stream.Wait(ctx, c.js, c.cfg.Stream, c.log)
	if ctx.Err() != nil {
		return nil // stopped before it started: not a failure
	}
	if err != nil {
		return err
	}
	cc := jetstream.ConsumerConfig{
		Durable:       c.cfg.Durable,
		Description:   c.cfg.Description,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    -1, // an outage must never drop a message; poison is dead-lettered here
		MaxAckPending: max(c.cfg.BatchMax*(c.cfg.Workers+1)*4, 1000),
		FilterSubject: c.cfg.Filter,
	}
	cons, err := c.create(ctx, st, cc)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return err
	}
	// Prefetch enough that every worker finds a full batch waiting while the next pull is under way.
	it, err := cons.Messages(jetstream.PullMaxMessages(c.cfg.BatchMax * (c.cfg.Workers + 1) * 2))
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.cfg.Durable, err)
	}
	c.log.Info("consuming", "stream", c.cfg.Stream, "durable", c.cfg.Durable, "filter", c.cfg.Filter, "workers", c.cfg.Workers)
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	// The watermark stops with the consumer, also when the consumer stops on an error.
	var wm sync.WaitGroup
	wmCtx, stopWatermark := context.WithCancel(ctx)
	defer wm.Wait()
	defer stopWatermark()
	if w := c.cfg.Watermark; w != nil && w.Interval > 0 {
		// One watermark per Redis Cluster master: a failover loses writes of its shard only.
		shards, err := watermark.ShardTags(ctx, w.Redis)
		if err != nil {
			it.Stop()
			return fmt.Errorf("consume %s: %w", c.cfg.Durable, err)
		}
		for _, shard := range shards {
			watcher, err := watermark.New(c.js, w.Redis, watermark.Config{
				Service: c.cfg.Service, Stream: c.cfg.Stream, Durable: c.cfg.Durable, Filter: c.cfg.Filter, Shard: shard,
				Interval: w.Interval, Missing: w.Missing, BatchMax: c.cfg.BatchMax,
			}, c.replay(), w.Meter, c.log)
			if err != nil {
				it.Stop()
				return err
			}
			wm.Add(1)
			go func() {
				defer wm.Done()
				_ = watcher.Run(wmCtx)
			}()
		}
	}
	// Batches in hand are finished with a context that outlives ctx.
	work := context.WithoutCancel(ctx)
	errc := make(chan error, c.cfg.Workers)
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				batch, err := c.collect(ctx, it)
				if len(batch) > 0 {
					c.process(work, batch)
				}
				if err != nil {
					if !errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() == nil {
						errc <- err
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func (c *Consumer[T]) collect(ctx context.Context, it jetstream.MessagesContext) ([]jetstream.Msg, error) {
	first, err := it.Next()
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil, jetstream.ErrMsgIteratorClosed
		}
		c.log.Warn("fetch", "durable", c.cfg.Durable, "err", err)
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

func (c *Consumer[T]) process(ctx context.Context, msgs []jetstream.Msg) {
	var good []Decoded[T]
	for _, m := range msgs {
		tenant, v, err := c.decode(m)
		if err != nil {
			c.deadLetter(ctx, m, tenant, "undecodable", err)
			continue
		}
		good = append(good, decoded(m, tenant, v))
	}
	if len(good) == 0 {
		return
	}
	err := c.traced(ctx, good, false)
	if err == nil {
		ackAll(good)
		return
	}
	// A dependency that is down fails every message alike: only redelivery can help, so the
	// batch is not split and nothing is dead-lettered for it. A message that keeps failing on
	// its own, even alone in its batch, is tried once more by itself and then dead-lettered.
	if Transient(err) || !c.suspect(ctx, good) {
		c.log.Warn("batch failed; will be redelivered", "durable", c.cfg.Durable, "messages", len(good), "err", err)
		c.nak(ctx, good)
		return
	}
	for _, d := range good {
		one := []Decoded[T]{d}
		err := c.traced(ctx, one, false)
		switch {
		case err == nil:
			ackAll(one)
		case !Transient(err) && c.suspect(ctx, one):
			c.deadLetter(ctx, d.Msg, d.Tenant, "handling failed", err)
		default:
			c.nak(ctx, one)
		}
	}
}

// replay handles a watermark gap's messages as live ones are handled, without acks: an
// undecodable message was dead-lettered when first delivered and is passed over. A batch that
// fails for a reason of its own is tried message by message, and a message that keeps failing
// alone while the store is healthy (the poison the live consumer dead-letters after SuspectAfter
// deliveries) is passed over with an error log after SuspectAfter tries; any other failure is
// returned, and the watermark retries the batch.
func (c *Consumer[T]) replay() watermark.Replay {
	fails := map[uint64]int{}
	return func(ctx context.Context, msgs []jetstream.Msg) error {
		var good []Decoded[T]
		for _, m := range msgs {
			tenant, v, err := c.decode(m)
			if err != nil {
				continue
			}
			good = append(good, decoded(m, tenant, v))
		}
		if len(good) == 0 {
			return nil
		}
		err := c.traced(ctx, good, true)
		if err == nil || Transient(err) {
			clear(fails)
			return err
		}
		for _, d := range good {
			err := c.traced(ctx, []Decoded[T]{d}, true)
			if err == nil {
				continue
			}
			md, merr := d.Msg.Metadata()
			if Transient(err) || merr != nil {
				return err
			}
			fails[md.Sequence.Stream]++
			if fails[md.Sequence.Stream] < c.cfg.SuspectAfter || c.healthy(ctx) != nil {
				return err
			}
			c.log.Error("watermark replay: message fails alone while the store is healthy; passed over", "durable", c.cfg.Durable,
				"subject", d.Msg.Subject(), "stream_seq", md.Sequence.Stream, "err", err)
		}
		clear(fails)
		return nil
	}
}

func decoded[T any](m jetstream.Msg, tenant string, v T) Decoded[T] {
	d := Decoded[T]{Msg: m, Tenant: tenant, Value: v}
	if h := m.Headers(); len(h) > 0 {
		d.Trace = trace.SpanContextFromContext(telemetry.Extract(context.Background(), h))
	}
	return d
}

// traced runs the handler on batch in a consumer span of the messaging conventions: "process
// <stream>", linked to each message's trace context. When every message of the batch carries
// the same trace (always so for a batch of one), that trace is also the span's parent, so a
// chain of one event is one trace from the webhook on.
func (c *Consumer[T]) traced(ctx context.Context, batch []Decoded[T], replay bool) error {
	links := make([]trace.Link, 0, len(batch))
	var parent trace.SpanContext
	oneTrace := true
	for _, d := range batch {
		if !d.Trace.IsValid() {
			oneTrace = false
			continue
		}
		links = append(links, trace.Link{SpanContext: d.Trace})
		switch {
		case !parent.IsValid():
			parent = d.Trace
		case parent.TraceID() != d.Trace.TraceID():
			oneTrace = false
		}
	}
	if oneTrace && parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	} else {
		ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	}
	ctx, span := c.cfg.Tracer.Start(ctx, "process "+c.cfg.Stream, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(links...),
		trace.WithAttributes(
			telemetry.MessagingNATS,
			telemetry.MessagingOperation.String("process"),
			telemetry.MessagingDestination.String(c.cfg.Stream),
			telemetry.MessagingConsumer.String(c.cfg.Durable),
			telemetry.MessagingBatchCount.Int(len(batch)),
			attribute.Bool("ticketpulse.replay", replay),
		))
	defer span.End()
	err := c.handle(ctx, batch)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "batch failed")
	}
	return err
}

func ackAll[T any](ds []Decoded[T]) {
	for _, d := range ds {
		// Handled and stored: a lost ack only causes a harmless redelivery.
		_ = d.Msg.Ack()
	}
}

// suspect: some message was delivered SuspectAfter times while the store is healthy, so the
// failure is the message's own (the caller has ruled out a Transient error).
func (c *Consumer[T]) suspect(ctx context.Context, ds []Decoded[T]) bool {
	for _, d := range ds {
		if md, err := d.Msg.Metadata(); err == nil && int(md.NumDelivered) >= c.cfg.SuspectAfter {
			return c.healthy(ctx) == nil
		}
	}
	return false
}

func (c *Consumer[T]) nak(_ context.Context, ds []Decoded[T]) {
	for _, d := range ds {
		delay := time.Second
		if md, err := d.Msg.Metadata(); err == nil {
			delay = min(time.Duration(md.NumDelivered)*time.Second, 30*time.Second)
		}
		_ = d.Msg.NakWithDelay(delay)
	}
}

// deadLetter stores the message with the reason in DEADLETTER, then ends its delivery; if that
// store fails the message is kept for redelivery rather than dropped.
func (c *Consumer[T]) deadLetter(ctx context.Context, m jetstream.Msg, tenant, reason string, cause error) {
	l := deadletter.Letter{Service: c.cfg.Service, Tenant: tenant, Data: m.Data(), Reason: reason, Err: cause, Subject: m.Subject()}
	if md, err := m.Metadata(); err == nil {
		l.StreamSeq = md.Sequence.Stream
		l.MsgID = c.cfg.Service + "-" + c.cfg.Durable + "-" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// The letter carries the trace of the message it gives up on.
	if h := m.Headers(); len(h) > 0 {
		pctx = telemetry.Extract(pctx, h)
	}
	if err := deadletter.Publish(pctx, c.js, l); err != nil {
		c.log.Error("dead letter not stored; message kept for redelivery", "subject", m.Subject(), "err", err)
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	if c.OnDeadLetter != nil {
		c.OnDeadLetter()
	}
	c.log.Warn("dead-lettered", "subject", m.Subject(), "reason", reason, "err", cause)
	_ = m.Term()
}
