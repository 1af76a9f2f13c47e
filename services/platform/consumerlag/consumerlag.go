// Package consumerlag reports how far durable JetStream consumers are behind their stream: the
// messages not yet delivered, those delivered and not acknowledged, those redelivered, and the
// age of the oldest message not acknowledged. These are what an operator alerts on when a
// consumer stops keeping up; the figures are read from the server when metrics are collected.
package consumerlag

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Durable names one durable consumer of a stream.
type Durable struct {
	Stream, Name string
	// Filter is the consumer's filter subject; empty is the whole stream.
	Filter string
}

// Metric names (OpenTelemetry messaging naming; on /metrics the dots become underscores and the
// age gets the unit suffix _seconds).
const (
	PendingName     = "messaging.consumer.pending"
	AckPendingName  = "messaging.consumer.ack_pending"
	RedeliveredName = "messaging.consumer.redelivered"
	OldestAgeName   = "messaging.consumer.oldest_unacked.age"
)

// testNow replaces the clock in tests.
var testNow func() time.Time

func now() time.Time {
	if testNow != nil {
		return testNow()
	}
	return time.Now()
}

// ReadTimeout bounds one reading of every durable's state, so a slow server cannot hold a
// scrape.
const ReadTimeout = 2 * time.Second

// MinInterval is the least time between two readings of the server; collections in between
// (several readers, frequent scrapes) report the last one, so the server sees at most one
// request pair per durable per MinInterval. A reading that missed a durable (one not created
// yet) is not kept: the next collection reads again.
const MinInterval = 5 * time.Second

// JetStream is what consumerlag reads the state from.
type JetStream interface {
	Consumer(ctx context.Context, stream, durable string) (jetstream.Consumer, error)
	Stream(ctx context.Context, stream string) (jetstream.Stream, error)
}

type reading struct {
	pending, ackPending, redelivered int64
	// age is the oldest unacknowledged message's age in seconds; hasAge is false when it could
	// not be read.
	age    float64
	hasAge bool
}

type observer struct {
	js       JetStream
	durables []Durable
	attrs    []metric.ObserveOption
	log      *slog.Logger
	now      func() time.Time

	mu       sync.Mutex
	readAt   time.Time
	readings []*reading // nil where the durable could not be read
}

// Observe reports the state of durables on meter. A durable that cannot be read (not created
// yet, the server away) is left out of that collection and logged at debug level.
func Observe(meter metric.Meter, js JetStream, log *slog.Logger, durables ...Durable) error {
	o := &observer{js: js, durables: durables, log: log, now: now}
	for _, d := range durables {
		o.attrs = append(o.attrs, metric.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", d.Stream),
			attribute.String("messaging.consumer.group.name", d.Name)))
	}
	pending, err1 := meter.Int64ObservableGauge(PendingName, metric.WithUnit("{message}"),
		metric.WithDescription("Messages of the stream that the durable consumer has not delivered yet."))
	ackPending, err2 := meter.Int64ObservableGauge(AckPendingName, metric.WithUnit("{message}"),
		metric.WithDescription("Messages delivered by the durable consumer and not acknowledged yet."))
	redelivered, err3 := meter.Int64ObservableGauge(RedeliveredName, metric.WithUnit("{message}"),
		metric.WithDescription("Messages delivered more than once by the durable consumer and not acknowledged yet."))
	age, err4 := meter.Float64ObservableGauge(OldestAgeName, metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest message of the stream the durable consumer has not acknowledged (0 when it is caught up): how late its work is."))
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return fmt.Errorf("consumer lag metrics: %w", err)
		}
	}
	_, err := meter.RegisterCallback(func(ctx context.Context, obs metric.Observer) error {
		for i, r := range o.read(ctx) {
			if r == nil {
				continue
			}
			obs.ObserveInt64(pending, r.pending, o.attrs[i])
			obs.ObserveInt64(ackPending, r.ackPending, o.attrs[i])
			obs.ObserveInt64(redelivered, r.redelivered, o.attrs[i])
			if r.hasAge {
				obs.ObserveFloat64(age, r.age, o.attrs[i])
			}
		}
		return nil
	}, pending, ackPending, redelivered, age)
	if err != nil {
		return fmt.Errorf("consumer lag metrics: %w", err)
	}
	return nil
}

// read returns the readings of every durable, from the server unless the last reading is
// younger than MinInterval.
func (o *observer) read(ctx context.Context) []*reading {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	if o.readings != nil && now.Sub(o.readAt) < MinInterval && !slices.Contains(o.readings, nil) {
		return o.readings
	}
	// One bound for the whole reading: a server away costs a collection ReadTimeout at most.
	ctx, cancel := context.WithTimeout(ctx, ReadTimeout)
	defer cancel()
	out := make([]*reading, len(o.durables))
	for i, d := range o.durables {
		r, err := o.readOne(ctx, d, now)
		if err != nil {
			o.log.Debug("consumer lag not read", "stream", d.Stream, "durable", d.Name, "err", err)
			continue
		}
		out[i] = r
	}
	o.readAt, o.readings = now, out
	return out
}

func (o *observer) readOne(ctx context.Context, d Durable, now time.Time) (*reading, error) {
	// Consumer asks the server for the consumer's info; CachedInfo is that answer.
	c, err := o.js.Consumer(ctx, d.Stream, d.Name)
	if err != nil {
		return nil, fmt.Errorf("consumer %s/%s: %w", d.Stream, d.Name, err)
	}
	info := c.CachedInfo()
	r := &reading{pending: int64(info.NumPending), ackPending: int64(info.NumAckPending),
		redelivered: int64(info.NumRedelivered), hasAge: true}
	if info.NumPending == 0 && info.NumAckPending == 0 {
		return r, nil
	}
	// The oldest message not acknowledged is the first one of the consumer's subjects after the
	// ack floor (sequences in between may be deleted or of other subjects).
	st, err := o.js.Stream(ctx, d.Stream)
	if err == nil {
		filter := d.Filter
		if filter == "" {
			filter = ">"
		}
		var m *jetstream.RawStreamMsg
		if m, err = st.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(filter)); err == nil {
			r.age = max(now.Sub(m.Time).Seconds(), 0)
			return r, nil
		}
	}
	o.log.Debug("oldest unacknowledged message not read", "stream", d.Stream, "durable", d.Name, "err", err)
	r.hasAge = false
	return r, nil
}
