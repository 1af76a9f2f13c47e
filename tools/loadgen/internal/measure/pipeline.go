package measure

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ticketpulse/ticketpulse/services/platform/traffic"
)

// Pipeline is the full-speed figure: events posted through ingest as fast as the posters can,
// counted until kpi has acknowledged (written) all of them.
type Pipeline struct {
	Target   int `json:"target_events"`
	Accepted int `json:"accepted_events"`
	Posters  int `json:"posters"`
	Batch    int `json:"batch"`
	// CutShort is true when the time limit ended posting before every event was sent.
	CutShort bool `json:"cut_short"`
	Retries  int  `json:"retries"`
	// PostSeconds is the first POST to the last 202; VisibleSeconds the first POST to the backlog
	// reaching zero.
	PostSeconds    float64 `json:"post_seconds"`
	VisibleSeconds float64 `json:"visible_seconds"`
	Drained        bool    `json:"drained"`
	// IngestRate is accepted events per second of posting; VisibleRate accepted events per second
	// until KPI-visible; DrainRate how fast kpi worked off the backlog left when posting ended
	// (0 when that backlog was too small to time).
	IngestRate  float64    `json:"ingest_rate"`
	VisibleRate float64    `json:"visible_rate"`
	DrainRate   float64    `json:"drain_rate"`
	Post        Quantiles  `json:"post_latency"`
	Lag         LagSummary `json:"lag"`
}

// inFlightGrace bounds how long POSTs in flight at the time limit may take to finish.
const inFlightGrace = 30 * time.Second

// runPipeline posts cfg.Events events with cfg.Posters concurrent posters until all are sent or
// cfg.Duration passes, then waits (at most cfg.DrainTimeout) for kpi to acknowledge them.
func runPipeline(ctx context.Context, e *env) (*Pipeline, error) {
	cfg := e.cfg
	g, err := traffic.New(e.traffic("c", cfg.Events))
	if err != nil {
		return nil, err
	}
	batches, total, err := encodeAll(g, cfg.Batch)
	if err != nil {
		return nil, err
	}
	res := &Pipeline{Target: total, Posters: cfg.Posters, Batch: cfg.Batch}
	p := newPoster(cfg.IngestURL, cfg.Tenant, cfg.APIKey, cfg.Headers, cfg.Posters)
	defer p.close()

	start := time.Now()
	smp := startSampler(ctx, e.lag, start, cfg.LagInterval)
	// At the time limit posters stop taking batches but finish the ones in flight: a POST cut off
	// mid-way may still have been stored, and would then be work kpi does that no figure counts.
	stopAt := start.Add(cfg.Duration)
	pctx, cancel := context.WithDeadline(ctx, stopAt.Add(inFlightGrace))
	defer cancel()
	var (
		next     atomic.Int64
		accepted atomic.Int64
		retries  atomic.Int64
		mu       sync.Mutex
		lats     []time.Duration
		errs     = make([]error, cfg.Posters)
		wg       sync.WaitGroup
	)
	for w := range cfg.Posters {
		wg.Go(func() {
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lats = append(lats, mine...)
				mu.Unlock()
			}()
			for {
				if pctx.Err() != nil || !time.Now().Before(stopAt) {
					return
				}
				i := int(next.Add(1)) - 1
				if i >= len(batches) {
					return
				}
				t := time.Now()
				r, err := p.post(pctx, batches[i].body)
				retries.Add(int64(r))
				if err != nil {
					// Canceled means another poster failed first and its error is the one to report.
					if !errors.Is(err, context.Canceled) {
						errs[w] = err
					}
					cancel()
					return
				}
				mine = append(mine, time.Since(t))
				accepted.Add(int64(batches[i].events))
			}
		})
	}
	wg.Wait()
	postEnd := time.Now()
	if err := errors.Join(errs...); err != nil {
		smp.stop()
		return nil, fmt.Errorf("post events: %w", err)
	}
	res.Accepted = int(accepted.Load())
	res.CutShort = res.Accepted < total
	res.Retries = int(retries.Load())
	res.PostSeconds = postEnd.Sub(start).Seconds()
	res.Post = Summarise(lats)

	seq, err := e.lag.lastSeq(ctx)
	if err != nil {
		smp.stop()
		return nil, err
	}
	leftAtPostEnd, _ := e.lag.lag(ctx)
	visible, left, err := e.lag.waitDrained(ctx, seq, cfg.DrainTimeout)
	samples := smp.stop()
	if err != nil && !errors.Is(err, errNotDrained) {
		return nil, err
	}
	res.Drained = err == nil
	res.VisibleSeconds = visible.Sub(start).Seconds()
	res.IngestRate = float64(res.Accepted) / res.PostSeconds
	// Undrained, only what kpi did acknowledge counts, so the figure stays an honest lower bound.
	res.VisibleRate = float64(int64(res.Accepted)-left) / res.VisibleSeconds
	// A backlog of a few batches is gone within the polling granularity; only a real one gives a rate.
	if d := visible.Sub(postEnd).Seconds(); d >= 0.25 && leftAtPostEnd >= int64(10*cfg.Batch) {
		res.DrainRate = float64(leftAtPostEnd-left) / d
	}
	res.Lag = summariseLag(samples, 0, res.PostSeconds)
	return res, nil
}
