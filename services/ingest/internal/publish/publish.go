// Package publish sends the ticket events of one request to the TICKETS stream and waits until
// JetStream stored them. A request of several events is stored in one JetStream atomic batch,
// so with sync "always" it costs one fsync, not one per event; requests that wait while a batch
// commits share the next one (group commit). A single event is one plain publish.
package publish

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
)

// ErrUnavailable means JetStream did not acknowledge every event of a request: NATS is
// disconnected, the stream is missing or full, an acknowledgement was an error, or the deadline
// passed. Some events may have been stored (whole atomic parts, or single events); publishing
// the request again is safe because the stream keeps one message per Nats-Msg-Id.
var ErrUnavailable = errors.New("jetstream did not acknowledge")

// Atomic batch headers (ADR-50), set by the publisher and removed by the server.
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"
)

// DefaultMaxBatch is nats-server's default max_batch_size: the most messages one atomic batch
// may hold. A request with more events is split into atomic parts of at most this many.
const DefaultMaxBatch = 1000

// DefaultMaxBatches is how many atomic batches one publisher has open at once. The server
// stores a stream's batches one after the other, so more would only make each smaller: two
// keep one batch on the wire while the other commits, and requests that arrive meanwhile wait
// to share the next. nats-server lets a stream have 50 open (max_batch_inflight_per_stream).
const DefaultMaxBatches = 2

// JetStream error codes the batch path acts on.
const (
	codeAtomicDisabled    jetstream.ErrorCode = 10174 // the stream does not allow atomic publish
	codeBatchIncomplete   jetstream.ErrorCode = 10176 // the batch was dropped before its commit
	codeBatchTooLarge     jetstream.ErrorCode = 10199 // more messages than max_batch_size
	codeBatchDuplicate    jetstream.ErrorCode = 10201 // a message id the stream already holds
	codeDuplicateConflict jetstream.ErrorCode = 10158 // a message id in process (clustered)
	codeTooManyInflight   jetstream.ErrorCode = 10210 // max_batch_inflight reached
)

// Publisher publishes requests' events over one NATS connection.
type Publisher struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	tracer  trace.Tracer
	maxPart atomic.Int64 // events per atomic part; lowered when the server's limit is smaller
	// ackWait bounds the wait for a commit's acknowledgement when the caller set no deadline.
	ackWait time.Duration

	// Requests of several events wait in pending for one of at most maxCommitters goroutines,
	// started when work arrives and ended when none is left. pending holds only requests whose
	// callers wait for them, so it is bounded by the requests in flight (HTTP and admission).
	mu            sync.Mutex
	pending       []*job
	committers    int
	maxCommitters int

	disabledOnce sync.Once

	// lost ends, and is replaced, when a reply already on its way may never come: the TICKETS
	// stream elected a leader (a commit sent to the old one goes unanswered) or the connection
	// dropped (replies sent meanwhile are gone). Waits pick it up before they send.
	lostMu     sync.Mutex
	lost       *lostEvent
	advisories *nats.Subscription
	status     chan nats.Status
	watchDone  chan struct{}
}

// job is one request waiting to be committed.
type job struct {
	ctx  context.Context
	msgs []*nats.Msg
	done chan jobResult // buffered: a committer never waits for a caller that gave up
}

type jobResult struct {
	res Result
	err error
}

// Options tune the publisher.
type Options struct {
	// MaxPending caps single-event acknowledgements outstanding across all requests; a request
	// that would exceed it waits (until its deadline) for others to be acknowledged.
	MaxPending int
	// AckTimeout forgets an acknowledgement that never came, so lost ones do not pile up.
	AckTimeout time.Duration
	// MaxBatch is the most events in one atomic batch; 0 means DefaultMaxBatch. A server
	// configured lower says so when refusing a batch, and the publisher follows it from then on.
	MaxBatch int
	// MaxBatches is the most atomic batches open at once; 0 means DefaultMaxBatches. A request
	// beyond it waits (until its deadline) to share the next batch.
	MaxBatches int
	// Log receives the fall-backs to one message per event; nil discards them.
	Log *slog.Logger
	// Tracer starts the producer span of each request's events; nil traces nothing.
	Tracer trace.Tracer
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
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxBatches <= 0 {
		o.MaxBatches = DefaultMaxBatches
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider().Tracer("")
	}
	p := &Publisher{nc: nc, js: js, log: o.Log, tracer: o.Tracer, maxCommitters: o.MaxBatches, ackWait: o.AckTimeout,
		lost: &lostEvent{done: make(chan struct{})}, watchDone: make(chan struct{})}
	if p.ackWait <= 0 {
		p.ackWait = 10 * time.Second
	}
	p.maxPart.Store(int64(o.MaxBatch))
	// Without these a commit sent to a leader that went away is answered by nobody, and its
	// request (with every request queued behind the open batches) waits out its deadline.
	p.advisories, err = nc.Subscribe(LeaderElectedSubject, func(*nats.Msg) {
		p.markLost("the " + stream.TicketsName + " stream elected a new leader")
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", LeaderElectedSubject, err)
	}
	p.status = nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	go p.watchStatus()
	return p, nil
}

// LeaderElectedSubject is the JetStream advisory sent when the TICKETS stream has a new leader.
// The publisher's NATS user must be allowed to subscribe to it.
const LeaderElectedSubject = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED." + stream.TicketsName

// watchStatus ends the waits for replies when the connection drops, until it is closed.
func (p *Publisher) watchStatus() {
	defer close(p.watchDone)
	for st := range p.status {
		p.markLost("the nats connection dropped (" + strings.ToLower(st.String()) + ")")
		if st == nats.CLOSED {
			return
		}
	}
}

// Close stops listening for leader elections and connection drops; Publish still works after
// it, each wait then bounded by its deadline alone.
func (p *Publisher) Close() {
	_ = p.advisories.Unsubscribe()
	p.nc.RemoveStatusListener(p.status)
	<-p.watchDone
}

// lostEvent is one leader change or disconnect; reason is set before done is closed.
type lostEvent struct {
	done   chan struct{}
	reason string
}

// lostSignal ends once a reply to anything sent from now on may be lost.
func (p *Publisher) lostSignal() *lostEvent {
	p.lostMu.Lock()
	defer p.lostMu.Unlock()
	return p.lost
}

// markLost ends every wait for a reply that began before it.
func (p *Publisher) markLost(reason string) {
	p.lostMu.Lock()
	defer p.lostMu.Unlock()
	p.lost.reason = reason
	close(p.lost.done)
	p.lost = &lostEvent{done: make(chan struct{})}
}

// err is the error of a wait that l ended; call it only once l.done is closed.
func (l *lostEvent) err(what string) error {
	return fmt.Errorf("%w: %s: %s (the reply may never come; it may have been stored)", ErrUnavailable, what, l.reason)
}

// Result describes an acknowledged request.
type Result struct {
	// Duplicates counts events the stream already held, and repeats of an event id within the
	// request: each is stored once.
	Duplicates int
	// Unbatched counts events published one message each because their atomic batch could not
	// be used (see Publish).
	Unbatched int
}

// Publish stores every event and returns once JetStream acknowledged them all, or ctx ended.
// The trace context of ctx travels in each message's headers. Any failure to be acknowledged
// wraps ErrUnavailable.
//
// Several events go as atomic batches of at most MaxBatch: all of a batch is stored or none,
// with one fsync under sync "always". Requests waiting for a batch together share one if their
// events fit, so a request within MaxBatch is always inside a single batch; if a shared batch is
// refused, each of its requests is sent again on its own. Repeats of an event id within the
// request are sent once. The server refuses a whole batch holding an id it already has (a
// retried or overlapping request); such a batch, and one the stream does not allow or the server
// dropped, is sent again one message per event, each deduplicated by its Nats-Msg-Id as before:
// nothing of the refused batch was stored, so each event is still stored once. A request split
// in several batches that fails has its earlier batches stored; sending it again stores the rest
// once.
func (p *Publisher) Publish(ctx context.Context, events []*ticketpulsev1.TicketEvent) (res Result, err error) {
	// One producer span per request: its context is what every message of the request carries,
	// so the consumers' spans hang below the request that sent the event.
	ctx, span := p.tracer.Start(ctx, "send "+stream.TicketsName, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(publishAttrs(events)...))
	defer func() {
		span.SetAttributes(attribute.Int("ticketpulse.duplicates", res.Duplicates))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "not acknowledged")
		}
		span.End()
	}()
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
	if len(msgs) == 1 {
		return p.publishEach(ctx, msgs)
	}
	msgs, repeats := uniqueIDs(msgs)
	j := &job{ctx: ctx, msgs: msgs, done: make(chan jobResult, 1)}
	p.submit(j)
	select {
	case r := <-j.done:
		r.res.Duplicates += repeats
		return r.res, r.err
	case <-ctx.Done():
		// A committer that takes the request later skips it; one that has it already may still
		// store it, which a retry then finds as duplicates.
		return Result{}, fmt.Errorf("%w: waiting for an atomic batch: %w", ErrUnavailable, ctx.Err())
	}
}

// publishAttrs describe a request's events: the tenant and source they share, and the ticket
// and type when there is one event.
func publishAttrs(events []*ticketpulsev1.TicketEvent) []attribute.KeyValue {
	attrs := []attribute.KeyValue{telemetry.MessagingNATS, telemetry.MessagingOperation.String("send"),
		telemetry.MessagingDestination.String(stream.TicketsName), telemetry.MessagingBatchCount.Int(len(events))}
	if len(events) == 0 {
		return attrs
	}
	attrs = append(attrs, telemetry.AttrTenant.String(events[0].GetTenant()), telemetry.AttrSource.String(events[0].GetSource()))
	if len(events) == 1 {
		ev := events[0]
		attrs = append(attrs, telemetry.AttrTicket.String(ev.GetTicketId()), telemetry.AttrEventType.String(eventcodec.TypeWord(ev.GetType())),
			telemetry.AttrEventID.String(ev.GetId()))
	}
	return attrs
}

// submit queues j and starts a committer if fewer than maxCommitters run.
func (p *Publisher) submit(j *job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, j)
	if p.committers < p.maxCommitters {
		p.committers++
		go p.commitLoop()
	}
}

// commitLoop commits waiting requests until none is left.
func (p *Publisher) commitLoop() {
	for {
		jobs := p.take()
		if jobs == nil {
			return
		}
		p.commit(jobs)
	}
}

// take removes the next requests to commit from pending: the first, and those after it while
// their events fit in one batch with it. Requests whose callers gave up are dropped. It returns
// nil, and ends the calling committer, when nothing waits.
func (p *Publisher) take() []*job {
	p.mu.Lock()
	defer p.mu.Unlock()
	limit := int(p.maxPart.Load())
	var jobs []*job
	n, k := 0, 0
	for ; k < len(p.pending); k++ {
		j := p.pending[k]
		if j.ctx.Err() != nil {
			continue
		}
		if len(jobs) > 0 && n+len(j.msgs) > limit {
			break
		}
		jobs = append(jobs, j)
		n += len(j.msgs)
	}
	p.pending = append(p.pending[:0:0], p.pending[k:]...)
	if jobs == nil && len(p.pending) == 0 {
		p.committers--
	}
	return jobs
}

// commit stores the requests' events: several requests in one atomic batch, sent again one
// request at a time if that batch is refused; a single request as publishBatches does.
func (p *Publisher) commit(jobs []*job) {
	if len(jobs) > 1 {
		var all []*nats.Msg
		for _, j := range jobs {
			all = append(all, j.msgs...)
		}
		ctx, cancel := latest(jobs)
		err := p.publishAtomic(ctx, all)
		cancel()
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			for _, j := range jobs {
				j.done <- jobResult{}
			}
			return
		case !errors.As(err, &apiErr):
			for _, j := range jobs {
				j.done <- jobResult{err: err}
			}
			return
		}
		// Refused whole (a duplicate, a limit): nothing was stored. Each request on its own
		// gets the answer it would have had alone.
		p.log.Debug("shared atomic batch refused; committing its requests one by one", "requests", len(jobs), "err", apiErr.Description)
	}
	for _, j := range jobs {
		if j.ctx.Err() != nil {
			j.done <- jobResult{err: fmt.Errorf("%w: %w", ErrUnavailable, j.ctx.Err())}
			continue
		}
		res, err := p.publishBatches(j.ctx, j.msgs)
		j.done <- jobResult{res: res, err: err}
	}
}

// latest is a context for a batch shared by jobs: it ends at the latest of their deadlines (the
// others' callers stop waiting on their own), and carries none of their cancellations.
func latest(jobs []*job) (context.Context, context.CancelFunc) {
	var last time.Time
	for _, j := range jobs {
		dl, ok := j.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.WithoutCancel(j.ctx))
		}
		if dl.After(last) {
			last = dl
		}
	}
	return context.WithDeadline(context.WithoutCancel(jobs[0].ctx), last)
}

// uniqueIDs keeps the first message of each Nats-Msg-Id (a batch holding one twice is refused
// whole) and counts the others.
func uniqueIDs(msgs []*nats.Msg) ([]*nats.Msg, int) {
	seen := make(map[string]struct{}, len(msgs))
	out := msgs[:0:0]
	for _, m := range msgs {
		id := m.Header.Get(jetstream.MsgIDHeader)
		if _, ok := seen[id]; ok {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, m)
	}
	return out, len(msgs) - len(out)
}

// publishBatches sends msgs as consecutive atomic parts and returns what was acknowledged.
func (p *Publisher) publishBatches(ctx context.Context, msgs []*nats.Msg) (Result, error) {
	var res Result
	for start := 0; start < len(msgs); {
		end := min(start+int(p.maxPart.Load()), len(msgs))
		part := msgs[start:end]
		if len(part) == 1 {
			r, err := p.publishEach(ctx, part)
			res.Duplicates += r.Duplicates
			if err != nil {
				return res, stored(err, start, len(msgs))
			}
			start = end
			continue
		}
		err := p.publishAtomic(ctx, part)
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			start = end
			continue
		case !errors.As(err, &apiErr):
			return res, stored(err, start, len(msgs))
		case apiErr.ErrorCode == codeBatchTooLarge:
			// Nothing was stored. Follow the server's limit from now on and send the part again.
			limit := tooLargeLimit(apiErr.Description, len(part))
			p.maxPart.Store(int64(limit))
			p.log.WarnContext(ctx, "atomic batch larger than the server allows; splitting at its limit", "limit", limit)
			continue
		case apiErr.ErrorCode == codeBatchDuplicate || apiErr.ErrorCode == codeDuplicateConflict ||
			apiErr.ErrorCode == codeBatchIncomplete || apiErr.ErrorCode == codeTooManyInflight:
			p.log.DebugContext(ctx, "atomic batch refused; one message per event", "events", len(part), "err", apiErr.Description)
		case apiErr.ErrorCode == codeAtomicDisabled:
			p.disabledOnce.Do(func() {
				p.log.WarnContext(ctx, "the stream does not allow atomic publish; publishing one message per event (one fsync each under sync always)")
			})
		default:
			return res, stored(fmt.Errorf("%w: atomic batch of %d events: %w", ErrUnavailable, len(part), err), start, len(msgs))
		}
		r, err := p.publishEach(ctx, part)
		res.Duplicates += r.Duplicates
		res.Unbatched += len(part)
		if err != nil {
			return res, stored(err, start, len(msgs))
		}
		start = end
	}
	return res, nil
}

// stored adds to err how many events of the request earlier parts stored.
func stored(err error, done, total int) error {
	if done == 0 {
		return err
	}
	return fmt.Errorf("%w (the first %d of %d events were stored)", err, done, total)
}

// tooLargeLimit reads the server's limit from "atomic publish batch is too large: 500", or
// halves the refused size if the description has no number.
func tooLargeLimit(desc string, refused int) int {
	if i := strings.LastIndexByte(desc, ':'); i >= 0 {
		if n, err := strconv.Atoi(strings.TrimSpace(desc[i+1:])); err == nil && n > 0 && n < refused {
			return n
		}
	}
	return max(1, refused/2)
}

// batchAck is the commit's acknowledgement: a PubAck with the batch's id and size, or an error.
type batchAck struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	Batch  string `json:"batch"`
	Count  int    `json:"count"`
	Error  *struct {
		Code        int                 `json:"code"`
		ErrorCode   jetstream.ErrorCode `json:"err_code"`
		Description string              `json:"description"`
	} `json:"error"`
}

// publishAtomic sends msgs (two or more) as one atomic batch and waits for the commit's
// acknowledgement. A refusal from the server is a *jetstream.APIError (nothing was stored);
// anything else wraps ErrUnavailable. The messages themselves are not changed.
func (p *Publisher) publishAtomic(ctx context.Context, msgs []*nats.Msg) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.ackWait)
		defer cancel()
	}
	// Taken before the first message: a leader elected after it may not have the batch, and
	// the old one may never answer the commit.
	lost := p.lostSignal()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errLost := errors.New("leader change or disconnect")
	go func() {
		select {
		case <-lost.done:
			cancel(errLost)
		case <-ctx.Done():
		}
	}()
	id := rand.Text() // 26 characters; the server takes up to 64
	last := len(msgs) - 1
	for i, m := range msgs {
		bm := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: make(nats.Header, len(m.Header)+3)}
		for k, v := range m.Header {
			bm.Header[k] = v
		}
		bm.Header.Set(batchIDHeader, id)
		bm.Header.Set(batchSeqHeader, strconv.Itoa(i+1))
		if i < last {
			// Only the commit is answered: an earlier message the server refuses makes it
			// drop the batch, and the commit reports that.
			if err := p.nc.PublishMsg(bm); err != nil {
				return fmt.Errorf("%w: publish %s (event %d of %d of an atomic batch): %w", ErrUnavailable, m.Subject, i+1, len(msgs), err)
			}
			continue
		}
		bm.Header.Set(batchCommitHeader, "1")
		reply, err := p.nc.RequestMsgWithContext(ctx, bm)
		if err != nil && context.Cause(ctx) == errLost {
			return lost.err(fmt.Sprintf("commit atomic batch of %d events on %s", len(msgs), m.Subject))
		}
		if err != nil {
			return fmt.Errorf("%w: commit atomic batch of %d events on %s: %w", ErrUnavailable, len(msgs), m.Subject, err)
		}
		var ack batchAck
		if err := json.Unmarshal(reply.Data, &ack); err != nil {
			return fmt.Errorf("%w: commit atomic batch of %d events: unreadable acknowledgement: %w", ErrUnavailable, len(msgs), err)
		}
		if ack.Error != nil {
			return &jetstream.APIError{Code: ack.Error.Code, ErrorCode: ack.Error.ErrorCode, Description: ack.Error.Description}
		}
		if ack.Batch != id || ack.Count != len(msgs) {
			// A server without atomic batches stored each message on its own, and only the last
			// was acknowledged: report it as incomplete, so the events are sent again one by
			// one and the stored ones are acknowledged as duplicates.
			return &jetstream.APIError{Code: 400, ErrorCode: codeBatchIncomplete,
				Description: fmt.Sprintf("commit acknowledged batch %q of %d, want %q of %d", ack.Batch, ack.Count, id, len(msgs))}
		}
	}
	return nil
}

// publishEach sends every message on its own, asynchronously, and waits for every
// acknowledgement: the path of a single event, and of a batch the server would not take.
func (p *Publisher) publishEach(ctx context.Context, msgs []*nats.Msg) (Result, error) {
	// The stall wait bounds how long a request waits for room under MaxPending: never past its deadline.
	stall := 200 * time.Millisecond
	if dl, ok := ctx.Deadline(); ok {
		stall = time.Until(dl)
		if stall <= 0 {
			return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, context.DeadlineExceeded)
		}
	}
	lost := p.lostSignal()
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
			return Result{}, fmt.Errorf("%w: event %q on %s: %w", ErrUnavailable, msgs[i].Header.Get(jetstream.MsgIDHeader), msgs[i].Subject, err)
		case <-lost.done:
			return Result{}, lost.err(fmt.Sprintf("%d of %d events unacknowledged", len(futures)-i, len(futures)))
		case <-ctx.Done():
			return Result{}, fmt.Errorf("%w: %d of %d events unacknowledged: %w", ErrUnavailable, len(futures)-i, len(futures), ctx.Err())
		}
	}
	return res, nil
}
