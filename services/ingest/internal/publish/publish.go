// Package publish sends a batch of ticket events to the TICKETS stream with asynchronous JetStream
// publishes and waits for every acknowledgement, so a batch costs about one round trip, not one
// per event.
package publish

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
)

// ErrUnavailable means JetStream did not acknowledge every event of a batch: NATS is
// disconnected, the stream is missing, an acknowledgement was an error, or the deadline passed.
// Some events may have been stored; publishing the batch again is safe because the stream
// drops messages whose Nats-Msg-Id it already holds.
var ErrUnavailable = errors.New("jetstream did not acknowledge")

// Publisher publishes batches over one NATS connection.
type Publisher struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// Options tune the asynchronous publisher.
type Options struct {
	// MaxPending caps acknowledgements outstanding across all batches; a batch that would exceed
	// it waits (until its deadline) for others to be acknowledged.
	MaxPending int
	// AckTimeout forgets an acknowledgement that never came, so lost ones do not pile up.
	AckTimeout time.Duration
}

// New returns a Publisher on nc.
func New(nc *nats.Conn, o Options) (*Publisher, error) {
	opts := []jetstream.JetStreamOpt{}
	if o.MaxPending > 0 {
		opts = append(opts, jetstream.WithPublishAsyncMaxPending(o.MaxPending))
	}
	if o.AckTimeout > 0 {
		opts = append(opts, jetstream.WithPublishAsyncTimeout(o.AckTimeout))
	}
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		return nil, fmt.Errorf("jetstream publisher: %w", err)
	}
	return &Publisher{nc: nc, js: js}, nil
}

// Result describes an acknowledged batch.
type Result struct {
	// Duplicates counts events the stream already held (acknowledged with Duplicate set).
	Duplicates int
}

// Publish sends every event and waits for all acknowledgements until ctx ends. The trace context
// of ctx travels in each message's headers. Any failure to be acknowledged wraps ErrUnavailable.
func (p *Publisher) Publish(ctx context.Context, events []*ticketpulsev1.TicketEvent) (Result, error) {
	msgs := make([]*nats.Msg, len(events))
	for i, ev := range events {
		m, err := eventcodec.Encode(ctx, ev)
		if err != nil {
			return Result{}, err
		}
		msgs[i] = m
	}
	if st := p.nc.Status(); st != nats.CONNECTED {
		return Result{}, fmt.Errorf("%w: nats connection %s", ErrUnavailable, st)
	}
	// The stall wait bounds how long a batch waits for room under MaxPending: never past its deadline.
	stall := 200 * time.Millisecond
	if dl, ok := ctx.Deadline(); ok {
		stall = time.Until(dl)
		if stall <= 0 {
			return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, context.DeadlineExceeded)
		}
	}
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(stall))
		if err != nil {
			return Result{}, fmt.Errorf("%w: publish %s (event %d of %d): %w", ErrUnavailable, m.Subject, i+1, len(msgs), err)
		}
		futures[i] = f
	}
	var res Result
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				res.Duplicates++
			}
		case err := <-f.Err():
			return Result{}, fmt.Errorf("%w: event %q on %s: %w", ErrUnavailable, events[i].GetId(), msgs[i].Subject, err)
		case <-ctx.Done():
			return Result{}, fmt.Errorf("%w: %d of %d events unacknowledged: %w", ErrUnavailable, len(futures)-i, len(futures), ctx.Err())
		}
	}
	return res, nil
}
