// Package admission decides whether ingest takes more events (DESIGN.md §8): it keeps the backlog
// of the consumers that drain TICKETS and the stream's fill under their bounds. One background
// refresher reads both from JetStream and caches them; a request only reads the cache.
//
// The cache is up to one refresh old and requests in flight add events it has not seen, so a
// request is measured against the last reading plus every event admitted since the reading began
// and not yet stored before it (see Admit). That keeps the backlog under the bound without
// guessing a margin, as long as this is the only ingest replica; with several, each one's own
// in-flight events are the margin the others do not see.
package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Reason says why events were refused; it is the rejected metric's label.
type Reason string

// The reasons: the first two are global (503), the last per tenant (429).
const (
	Backlog     Reason = "backlog"
	StreamFull  Reason = "stream_full"
	TenantShare Reason = "tenant_share"
)

// Reasons lists every reason, for metric series that exist from the start.
var Reasons = []Reason{Backlog, StreamFull, TenantShare}

// Config bounds what ingest takes on.
type Config struct {
	// Stream is the stream events are stored in (TICKETS).
	Stream string
	// Consumers are the durable consumers whose backlog is bounded; one that does not exist
	// (yet) has none.
	Consumers []string
	// MaxBacklog refuses events that would bring a consumer's backlog (pending plus
	// unacknowledged) to it; 0 bounds nothing.
	MaxBacklog int64
	// SoftBacklog is where tenants' rates start to shrink, linearly to nothing at MaxBacklog.
	SoftBacklog int64
	// MaxStreamFill refuses events that would fill this fraction of the stream's MaxBytes; 0
	// bounds nothing, as does a stream without MaxBytes.
	MaxStreamFill float64
	// Refresh is how often JetStream is read.
	Refresh time.Duration
}

// MaxRetryAfter is the longest Retry-After a refusal asks for, in seconds.
const MaxRetryAfter = 60

// Decision is what Admit decided.
type Decision struct {
	// Refused is set when the events are refused for everyone (503).
	Refused Reason
	// RetryAfter is how long to wait before sending again, in seconds, with Refused.
	RetryAfter int
	// Factor scales every tenant's rate: 1 without pressure, down to 0 at the bound.
	Factor float64
}

// reading is one refresh's view of JetStream.
type reading struct {
	at time.Time
	// stored is the count of admitted events stored (or failed) before the reading began: every
	// later one may be missing from it.
	stored   int64
	backlog  int64
	drain    float64 // events/s the most backlogged consumer acknowledges
	bytes    uint64
	msgs     uint64
	maxBytes int64
	factor   float64
}

// Controller is the admission state one ingest process shares across its routes.
type Controller struct {
	cfg        Config
	js         jetstream.JetStream
	log        *slog.Logger
	now        func() time.Time
	staleAfter time.Duration

	last atomic.Pointer[reading]
	// admitted and stored count events since start: admitted when let in, stored when their
	// publish ended (acknowledged or not).
	admitted, stored atomic.Int64

	// Refresher state; only its goroutine touches it.
	acked map[string]ackMark
	drain map[string]float64
	stale bool

	rejected    metric.Int64Counter
	backlogG    metric.Int64Gauge
	fillG       metric.Float64Gauge
	factorG     metric.Float64Gauge
	staleG      metric.Int64Gauge
	readFailure metric.Int64Counter
}

type ackMark struct {
	seq uint64
	at  time.Time
}

// New returns a controller reading from js; its instruments are created on meter. Call Refresh
// once and Run to keep it current: until its first reading it admits everything.
func New(js jetstream.JetStream, cfg Config, log *slog.Logger, meter metric.Meter) (*Controller, error) {
	if cfg.Refresh <= 0 {
		return nil, fmt.Errorf("admission refresh %s: want a positive period", cfg.Refresh)
	}
	c := &Controller{cfg: cfg, js: js, log: log, now: time.Now,
		// A few missed refreshes are a slow JetStream; more is one that does not answer.
		staleAfter: max(4*cfg.Refresh, time.Second),
		acked:      map[string]ackMark{}, drain: map[string]float64{}}
	var errs [6]error
	c.rejected, errs[0] = meter.Int64Counter("ingest.admission.rejected",
		metric.WithDescription("Requests refused by admission control, by reason: backlog and stream_full (503), tenant_share (429)."))
	c.backlogG, errs[1] = meter.Int64Gauge("ingest.admission.backlog",
		metric.WithDescription("Largest backlog (pending plus unacknowledged) of the bounded TICKETS consumers at the last reading."))
	c.fillG, errs[2] = meter.Float64Gauge("ingest.admission.stream_fill",
		metric.WithDescription("TICKETS stream bytes as a fraction of its MaxBytes at the last reading (0 without a limit)."))
	c.factorG, errs[3] = meter.Float64Gauge("ingest.admission.tenant_rate_factor",
		metric.WithDescription("Factor every tenant's rate is scaled by: 1 below the soft backlog mark, down to 0 at the bound."))
	c.staleG, errs[4] = meter.Int64Gauge("ingest.admission.stale",
		metric.WithDescription("1 while JetStream state could not be read for several refresh periods and the backlog is not checked (fail open)."))
	c.readFailure, errs[5] = meter.Int64Counter("ingest.admission.read_failures",
		metric.WithDescription("Refreshes of the admission state that could not read JetStream."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("admission instruments: %w", err)
	}
	ctx := context.Background()
	for _, r := range Reasons {
		c.rejected.Add(ctx, 0, metric.WithAttributes(attribute.String("reason", string(r))))
	}
	c.readFailure.Add(ctx, 0)
	c.staleG.Record(ctx, 0)
	return c, nil
}

// Run refreshes the state every Config.Refresh until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Refresh(ctx)
		}
	}
}

// Refresh takes one reading, or notes that it could not (the error is logged, not returned: the
// controller goes on with the last reading until it is too old).
func (c *Controller) Refresh(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, c.staleAfter/2)
	defer cancel()
	r, err := c.read(rctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.readFailure.Add(ctx, 1)
		last := c.last.Load()
		if !c.stale && (last == nil || c.now().Sub(last.at) > c.staleAfter) {
			c.stale = true
			c.staleG.Record(ctx, 1)
			c.log.Warn("admission state unreadable: admitting without backlog and stream checks until JetStream answers", "err", err)
		} else {
			c.log.Debug("admission state not refreshed", "err", err)
		}
		return
	}
	if c.stale {
		c.stale = false
		c.staleG.Record(ctx, 0)
		c.log.Info("admission state readable again")
	}
	c.last.Store(r)
	c.backlogG.Record(ctx, r.backlog)
	c.fillG.Record(ctx, r.fill(0))
	c.factorG.Record(ctx, r.factor)
}

// read asks JetStream for the stream's state and each consumer's backlog.
func (c *Controller) read(ctx context.Context) (*reading, error) {
	r := &reading{at: c.now(), stored: c.stored.Load(), factor: 1}
	s, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", c.cfg.Stream, err)
	}
	info := s.CachedInfo()
	r.bytes, r.msgs, r.maxBytes = info.State.Bytes, info.State.Msgs, info.Config.MaxBytes
	for _, name := range c.cfg.Consumers {
		cons, err := c.js.Consumer(ctx, c.cfg.Stream, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue // not created yet: nothing waits for it
		}
		if err != nil {
			return nil, fmt.Errorf("consumer %s on %s: %w", name, c.cfg.Stream, err)
		}
		ci := cons.CachedInfo()
		backlog := int64(ci.NumPending) + int64(ci.NumAckPending)
		drain := c.drainRate(name, ci.AckFloor.Stream, r.at)
		if backlog >= r.backlog {
			r.backlog, r.drain = backlog, drain
		}
	}
	if c.cfg.MaxBacklog > 0 && r.backlog > c.cfg.SoftBacklog {
		span := float64(c.cfg.MaxBacklog - c.cfg.SoftBacklog)
		r.factor = math.Max(0, float64(c.cfg.MaxBacklog-r.backlog)/span)
	}
	return r, nil
}

// drainRate is how fast the consumer acknowledges, from its ack floor's progress, smoothed over
// a few readings so one slow batch does not swing it.
func (c *Controller) drainRate(name string, floor uint64, at time.Time) float64 {
	prev, ok := c.acked[name]
	c.acked[name] = ackMark{seq: floor, at: at}
	dt := at.Sub(prev.at).Seconds()
	if !ok || floor < prev.seq || dt <= 0 {
		return c.drain[name] // first reading, or the consumer was recreated
	}
	rate := float64(floor-prev.seq) / dt
	if old, ok := c.drain[name]; ok {
		rate = 0.5*old + 0.5*rate
	}
	c.drain[name] = rate
	return rate
}

// fill is the stream's fill with extra events of the mean stored size added.
func (r *reading) fill(extra int64) float64 {
	if r.maxBytes <= 0 {
		return 0
	}
	bytes := float64(r.bytes)
	if r.msgs > 0 {
		bytes += float64(extra) * float64(r.bytes) / float64(r.msgs)
	}
	return bytes / float64(r.maxBytes)
}

// Admit decides on n events and, when it lets them in, counts them until Done(n). Their sender
// is refused when the last reading's backlog, plus the events admitted and not yet stored when
// that reading began, plus n, would reach the bound; likewise for the stream's fill. Without a
// reading younger than a few refresh periods it admits (publishing still needs JetStream).
func (c *Controller) Admit(n int) Decision {
	r := c.last.Load()
	if r == nil || c.now().Sub(r.at) > c.staleAfter {
		c.admitted.Add(int64(n))
		return Decision{Factor: 1}
	}
	// Counted before deciding, so concurrent requests see each other: a race can only refuse
	// more, never let more through.
	unseen := c.admitted.Add(int64(n)) - r.stored
	if c.cfg.MaxBacklog > 0 && r.backlog+unseen >= c.cfg.MaxBacklog {
		c.admitted.Add(-int64(n))
		return Decision{Refused: Backlog, RetryAfter: c.backlogRetry(r, r.backlog+unseen), Factor: 0}
	}
	if c.cfg.MaxStreamFill > 0 && r.maxBytes > 0 && r.fill(unseen) >= c.cfg.MaxStreamFill {
		c.admitted.Add(-int64(n))
		// Space comes back only as events age out (MaxAge) or the limit is raised: not soon.
		return Decision{Refused: StreamFull, RetryAfter: MaxRetryAfter, Factor: 0}
	}
	return Decision{Factor: r.factor}
}

// backlogRetry is how long the consumers need, at their recent pace, to work the backlog down
// to the soft mark, in [1, MaxRetryAfter] seconds; a consumer that does not move gets the most.
func (c *Controller) backlogRetry(r *reading, backlog int64) int {
	if r.drain <= 0 {
		return MaxRetryAfter
	}
	secs := math.Ceil(float64(backlog-c.cfg.SoftBacklog) / r.drain)
	return int(math.Min(math.Max(secs, 1), MaxRetryAfter))
}

// Done ends the count of n admitted events: their publish is over, stored or not.
func (c *Controller) Done(n int) { c.stored.Add(int64(n)) }

// Rejected counts a refused request.
func (c *Controller) Rejected(ctx context.Context, r Reason) {
	c.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", string(r))))
}
