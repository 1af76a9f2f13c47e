package measure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/platform/traffic"
)

// Overload is the admission control figure: posters send flat out against an ingest whose
// -max-backlog is Bound, and the kpi consumer's backlog is sampled throughout. A batch refused as
// overloaded (429, or 503 with code "overloaded") is sent again after a short pause, as an
// impatient sender would; one not stored for another reason is retried with backoff.
type Overload struct {
	Bound   int64   `json:"bound"`
	Seconds float64 `json:"post_seconds"`
	Posters int     `json:"posters"`
	Batch   int     `json:"batch"`
	// Requests by answer: 2xx, 429, 503 overloaded, other (retried: not stored, or a transport error).
	Requests    int `json:"requests"`
	Accepted    int `json:"accepted_requests"`
	TooMany     int `json:"answered_429"`
	Unavailable int `json:"answered_503"`
	Other       int `json:"answered_other"`
	// NoRetryAfter counts 429 and 503 answers without a Retry-After of at least 1 s.
	NoRetryAfter int `json:"no_retry_after"`
	// AcceptedEvents were answered 2xx; StoredEvents are the overload tenant's messages the stream
	// gained during the step.
	AcceptedEvents int     `json:"accepted_events"`
	StoredEvents   int     `json:"stored_events"`
	AcceptedRate   float64 `json:"accepted_rate"`
	// Drained is true when kpi acknowledged every stored message before the drain timeout.
	Drained bool `json:"drained"`
	// Lag is the backlog sampled while posting and draining; MaxRatio is its max over Bound.
	Lag      LagSummary    `json:"lag"`
	MaxRatio float64       `json:"max_ratio"`
	Sample   time.Duration `json:"sample_ns"`
}

// RefusedShare is the share of requests answered 429 or 503.
func (o *Overload) RefusedShare() float64 {
	return Ratio(float64(o.TooMany+o.Unavailable), float64(o.Requests))
}

// CountedOnce reports whether every accepted event is in the stream once and kpi processed all.
func (o *Overload) CountedOnce() bool { return o.Drained && o.StoredEvents == o.AcceptedEvents }

// runOverload posts for cfg.OverloadDuration (at most cfg.OverloadEvents events) under a tenant
// of its own, so the stream's new messages of that tenant are exactly this step's.
func runOverload(ctx context.Context, e *env) (*Overload, error) {
	cfg := e.cfg
	g, err := traffic.New(e.traffic("o", cfg.OverloadEvents))
	if err != nil {
		return nil, err
	}
	batches, _, err := encodeAll(g, cfg.Batch)
	if err != nil {
		return nil, err
	}
	// The tenant must be in ingest's tenants file, so it cannot be made up per run: what it has in
	// the stream before the step is subtracted instead.
	tenant := cfg.OverloadTenant
	before, err := e.storedOf(ctx, tenant)
	if err != nil {
		return nil, err
	}
	res := &Overload{Bound: cfg.OverloadBound, Posters: cfg.Posters, Batch: cfg.Batch, Sample: cfg.OverloadSample}
	p := newPoster(cfg.IngestURL, tenant, cfg.APIKey, cfg.Headers, cfg.Posters)
	defer p.close()

	start := time.Now()
	smp := startSampler(ctx, e.lag, start, cfg.OverloadSample)
	stopAt := start.Add(cfg.OverloadDuration)
	pctx, cancel := context.WithDeadline(ctx, stopAt.Add(inFlightGrace))
	defer cancel()
	var (
		next                                           atomic.Int64
		requests, ok, tooMany, unavailable, other, bad atomic.Int64
		events                                         atomic.Int64
		errs                                           = make([]error, cfg.Posters)
		wg                                             sync.WaitGroup
	)
	for w := range cfg.Posters {
		wg.Go(func() {
			backoff := 20 * time.Millisecond
			for i := int(next.Add(1)) - 1; i < len(batches); {
				// Past the time limit a batch already refused is dropped: nothing of it is stored.
				if pctx.Err() != nil || !time.Now().Before(stopAt) {
					return
				}
				code, msg, retryAfter, err := p.try(pctx, batches[i].body)
				requests.Add(1)
				pause := backoff
				switch {
				case err == nil && code >= 200 && code < 300:
					ok.Add(1)
					events.Add(int64(batches[i].events))
					i = int(next.Add(1)) - 1
					backoff = 20 * time.Millisecond
					continue
				case err == nil && (code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable && strings.Contains(msg, `"code":"overloaded"`)):
					if code == http.StatusTooManyRequests {
						tooMany.Add(1)
					} else {
						unavailable.Add(1)
					}
					if retryAfter < 1 {
						bad.Add(1)
					}
					pause = cfg.OverloadPause
				case err == nil && code < 500:
					errs[w] = &StatusError{Code: code, Body: msg}
					cancel()
					return
				default:
					other.Add(1)
					backoff = min(backoff*2, time.Second)
				}
				select {
				case <-pctx.Done():
					return
				case <-time.After(pause):
				}
			}
		})
	}
	wg.Wait()
	postEnd := time.Now()
	if err := errors.Join(errs...); err != nil {
		smp.stop()
		return nil, fmt.Errorf("post events: %w", err)
	}
	res.Seconds = postEnd.Sub(start).Seconds()
	res.Requests, res.Accepted = int(requests.Load()), int(ok.Load())
	res.TooMany, res.Unavailable, res.Other = int(tooMany.Load()), int(unavailable.Load()), int(other.Load())
	res.NoRetryAfter = int(bad.Load())
	res.AcceptedEvents = int(events.Load())
	res.AcceptedRate = float64(res.AcceptedEvents) / res.Seconds

	seq, err := e.lag.lastSeq(ctx)
	if err != nil {
		smp.stop()
		return nil, err
	}
	_, _, err = e.lag.waitDrained(ctx, seq, cfg.DrainTimeout)
	samples := smp.stop()
	if err != nil && !errors.Is(err, errNotDrained) {
		return nil, err
	}
	res.Drained = err == nil
	res.Lag = summariseLag(samples, 0, res.Seconds)
	res.MaxRatio = Ratio(float64(res.Lag.Max), float64(res.Bound))
	after, err := e.storedOf(ctx, tenant)
	if err != nil {
		return nil, err
	}
	res.StoredEvents = after - before
	return res, nil
}

// storedOf counts the stream's messages of a tenant (subjects tickets.<tenant>.<type>).
func (e *env) storedOf(ctx context.Context, tenant string) (int, error) {
	s, err := e.js.Stream(ctx, e.cfg.Stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", e.cfg.Stream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("tickets."+tenant+".>"))
	if err != nil {
		return 0, fmt.Errorf("stream %s subjects of %s: %w", e.cfg.Stream, tenant, err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n, nil
}

func printOverload(out io.Writer, res *Result) {
	o := res.Overload
	fmt.Fprintf(out, "%-14s kpi backlog max %s msgs = %s × the bound of %s (sampled every %s; trend %s while posting)\n",
		"overload", Count(float64(o.Lag.Max)), fmtRatio(o.MaxRatio), Count(float64(o.Bound)), o.Sample, o.Lag.TrendString())
	fmt.Fprintf(out, "%-14s %d requests in %.1f s: %d accepted, %d answered 429, %d answered 503 (%s refused), %d other; %d refusals without Retry-After\n",
		"overload", o.Requests, o.Seconds, o.Accepted, o.TooMany, o.Unavailable, fmtRatio(o.RefusedShare()), o.Other, o.NoRetryAfter)
	counted := "every accepted event stored once and processed by kpi"
	if !o.CountedOnce() {
		counted = fmt.Sprintf("MISMATCH: %s accepted, %s stored, drained %v", Count(float64(o.AcceptedEvents)), Count(float64(o.StoredEvents)), o.Drained)
	}
	fmt.Fprintf(out, "%-14s accepted %s events/s (= %s × raw JetStream); %s\n", "overload",
		Count(o.AcceptedRate), fmtRatio(Ratio(o.AcceptedRate, rateOf(res.JetStream))), counted)
}
