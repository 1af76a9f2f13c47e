package measure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/traffic"
)

// Latency is the fixed-rate figure: how long after its POST began a probe ticket's KPI could be
// read back over gRPC, while background traffic flows at the target rate.
type Latency struct {
	TargetRate   int     `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	Seconds      float64 `json:"seconds"`
	Events       int     `json:"events"`
	// Late counts batches sent more than one interval after their slot: the rate was not held.
	Late     int        `json:"late_batches"`
	Probes   int        `json:"probes"`
	TimedOut int        `json:"probes_timed_out"`
	KPI      string     `json:"kpi"`
	Visible  Quantiles  `json:"visible_latency"`
	Post     Quantiles  `json:"post_latency"`
	Lag      LagSummary `json:"lag"`
}

// RateHeld reports whether the achieved rate came within 5 % of the target: when it did not, the
// latency figure describes a saturated pipeline, not one at the target load.
func (l *Latency) RateHeld() bool { return l.AchievedRate >= 0.95*float64(l.TargetRate) }

// ProbeTeam is the team of the probe agents, kept apart from the generated ones.
const ProbeTeam = "loadgen-probes"

// ProbeAgent is the id of probe agent k.
func ProbeAgent(k int) string { return fmt.Sprintf("loadgen-probe-%02d", k) }

type probe struct {
	expected int64
	start    time.Time
}

// prober tracks probes in flight per agent and polls kpi until each one's count shows up. A
// single poller keeps the gRPC load proportional to what is in flight.
type prober struct {
	e        *env
	mu       sync.Mutex
	inflight map[string][]probe
	expected map[string]int64
	lats     []time.Duration
	pollErrs int
	lastErr  error
}

func (p *prober) count(ctx context.Context, agent string) (int64, error) {
	resp, err := p.e.kpi.GetAgentKpis(ctx, &ticketpulsev1.GetAgentKpisRequest{
		Tenant: p.e.cfg.Tenant, AgentId: agent,
		Window: &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Rolling{Rolling: "24h"}},
	})
	if err != nil {
		return 0, fmt.Errorf("GetAgentKpis %s: %w", agent, err)
	}
	k := resp.GetAgent().GetKpis()
	if p.e.cfg.ProbeKPI == "assigned" {
		return k.GetAssigned(), nil
	}
	return k.GetFirstResponse().GetCount(), nil
}

// add registers a probe for agent just before its POST starts.
func (p *prober) add(agent string, start time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expected[agent]++
	p.inflight[agent] = append(p.inflight[agent], probe{expected: p.expected[agent], start: start})
}

func (p *prober) pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, q := range p.inflight {
		n += len(q)
	}
	return n
}

// poll checks every agent with a probe in flight once.
func (p *prober) poll(ctx context.Context) {
	p.mu.Lock()
	agents := make([]string, 0, len(p.inflight))
	for a, q := range p.inflight {
		if len(q) > 0 {
			agents = append(agents, a)
		}
	}
	p.mu.Unlock()
	for _, a := range agents {
		n, err := p.count(ctx, a)
		seen := time.Now()
		p.mu.Lock()
		if err != nil {
			p.pollErrs++
			p.lastErr = err
			p.mu.Unlock()
			continue
		}
		q := p.inflight[a]
		for len(q) > 0 && q[0].expected <= n {
			p.lats = append(p.lats, seen.Sub(q[0].start))
			q = q[1:]
		}
		p.inflight[a] = q
		p.mu.Unlock()
	}
}

// runLatency sends background traffic at cfg.Rate events/s for cfg.RateDuration, one probe ticket
// every 1/cfg.ProbeRate seconds inside a regular batch, and measures POST → KPI readable per probe.
func runLatency(ctx context.Context, e *env) (*Latency, error) {
	cfg := e.cfg
	g, err := traffic.New(e.traffic("d", int(float64(cfg.Rate)*cfg.RateDuration.Seconds())+cfg.Batch))
	if err != nil {
		return nil, err
	}
	pr := &prober{e: e, inflight: map[string][]probe{}, expected: map[string]int64{}}
	for k := range cfg.ProbeAgents {
		n, err := pr.count(ctx, ProbeAgent(k))
		if err != nil {
			return nil, fmt.Errorf("read probe agent's KPI before starting: %w", err)
		}
		pr.expected[ProbeAgent(k)] = n
	}
	res := &Latency{TargetRate: cfg.Rate, KPI: cfg.ProbeKPI}
	p := newPoster(cfg.IngestURL, cfg.Tenant, cfg.APIKey, cfg.Headers, cfg.Posters)
	defer p.close()

	type job struct {
		body   []byte
		events int
		probe  string
	}
	start := time.Now()
	smp := startSampler(ctx, e.lag, start, cfg.LagInterval)
	pctx, cancel := context.WithDeadline(ctx, start.Add(cfg.RateDuration+inFlightGrace))
	defer cancel()

	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		t := time.NewTicker(cfg.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-pollCtx.Done():
				return
			case <-t.C:
				pr.poll(pollCtx)
			}
		}
	}()

	var (
		accepted atomic.Int64
		mu       sync.Mutex
		postLats []time.Duration
		errs     = make([]error, cfg.Posters)
		wg       sync.WaitGroup
		work     = make(chan job)
	)
	for w := range cfg.Posters {
		wg.Go(func() {
			for j := range work {
				t := time.Now()
				if j.probe != "" {
					pr.add(j.probe, t)
				}
				if _, err := p.post(pctx, j.body); err != nil {
					// Canceled means another poster failed first and its error is the one to report.
					if errs[w] == nil && !errors.Is(err, context.Canceled) {
						errs[w] = err
					}
					cancel()
					continue
				}
				d := time.Since(t)
				mu.Lock()
				postLats = append(postLats, d)
				mu.Unlock()
				accepted.Add(int64(j.events))
			}
		})
	}

	interval := time.Duration(float64(time.Second) * float64(cfg.Batch) / float64(cfg.Rate))
	probeEvery := time.Duration(float64(time.Second) / cfg.ProbeRate)
	end := start.Add(cfg.RateDuration)
	var buf []traffic.Event
	nextProbe := start
	probes := 0
	var sendErr error
send:
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		// A system that cannot hold the rate falls behind schedule; the phase still ends on time,
		// and the achieved rate says so.
		if !due.Before(end) || !time.Now().Before(end) {
			break
		}
		select {
		case <-pctx.Done():
			break send
		case <-time.After(time.Until(due)):
		}
		if time.Since(due) > interval {
			res.Late++
		}
		var probeAgent string
		var extra []traffic.Event
		if !time.Now().Before(nextProbe) {
			probeAgent = ProbeAgent(probes % cfg.ProbeAgents)
			extra = traffic.ProbeTicket(e.runID+"-p", probes, probeAgent, ProbeTeam, time.Now())
			probes++
			nextProbe = nextProbe.Add(probeEvery)
		}
		buf = g.Batch(buf, cfg.Batch-len(extra))
		buf = append(buf, extra...)
		body, err := json.Marshal(buf)
		if err != nil {
			sendErr = fmt.Errorf("encode batch: %w", err)
			break
		}
		select {
		case work <- job{body: body, events: len(buf), probe: probeAgent}:
		case <-pctx.Done():
			break send
		}
	}
	close(work)
	wg.Wait()
	postEnd := time.Now()
	res.Probes = probes
	res.Seconds = postEnd.Sub(start).Seconds()
	res.Events = int(accepted.Load())
	res.AchievedRate = float64(res.Events) / res.Seconds
	res.Post = Summarise(postLats)
	if err := errors.Join(append(errs, sendErr)...); err != nil {
		stopPoll()
		<-pollDone
		smp.stop()
		return nil, fmt.Errorf("post at fixed rate: %w", err)
	}

	deadline := time.Now().Add(cfg.ProbeTimeout)
	for pr.pending() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(cfg.PollInterval)
	}
	stopPoll()
	<-pollDone
	res.Lag = summariseLag(smp.stop(), 0, res.Seconds)
	pr.mu.Lock()
	defer pr.mu.Unlock()
	res.TimedOut = probes - len(pr.lats)
	res.Visible = Summarise(pr.lats)
	if len(pr.lats) == 0 && pr.lastErr != nil {
		return res, fmt.Errorf("no probe became visible; last poll error: %w", pr.lastErr)
	}
	return res, nil
}
