package measure

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LagSample is the kpi consumer's backlog at one moment: messages stored in the stream that it
// has not yet acknowledged (pending delivery plus delivered but unacknowledged).
type LagSample struct {
	At  float64 `json:"at_s"`
	Lag int64   `json:"lag"`
}

// lagWatch reads the backlog of the durable consumer whose acknowledgements mean "KPI written".
type lagWatch struct {
	js       jetstream.JetStream
	stream   string
	consumer string
}

func (w lagWatch) info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	c, err := w.js.Consumer(ctx, w.stream, w.consumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", w.consumer, w.stream, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer %s info: %w", w.consumer, err)
	}
	return info, nil
}

func (w lagWatch) lag(ctx context.Context) (int64, error) {
	info, err := w.info(ctx)
	if err != nil {
		return 0, err
	}
	return int64(info.NumPending) + int64(info.NumAckPending), nil
}

// lastSeq is the stream's newest sequence: once the consumer has delivered and acknowledged up
// to it, everything posted so far is KPI-visible.
func (w lagWatch) lastSeq(ctx context.Context) (uint64, error) {
	s, err := w.js.Stream(ctx, w.stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", w.stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s info: %w", w.stream, err)
	}
	return info.State.LastSeq, nil
}

// waitConsumer waits until the kpi service has created its durable consumer.
func (w lagWatch) waitConsumer(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := w.info(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("durable consumer %q on stream %s not there after %s (is kpi running against this NATS?): %w", w.consumer, w.stream, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// errNotDrained means the backlog did not reach zero in time.
var errNotDrained = errors.New("kpi consumer did not catch up in time")

// waitDrained polls until the consumer has acknowledged everything up to seq, returning when it
// saw that and the backlog left at the deadline otherwise.
func (w lagWatch) waitDrained(ctx context.Context, seq uint64, timeout time.Duration) (time.Time, int64, error) {
	deadline := time.Now().Add(timeout)
	var left int64
	for {
		info, err := w.info(ctx)
		if err != nil {
			return time.Time{}, 0, err
		}
		left = int64(info.NumPending) + int64(info.NumAckPending)
		if left == 0 && info.Delivered.Stream >= seq {
			return time.Now(), 0, nil
		}
		if time.Now().After(deadline) {
			return time.Now(), left, fmt.Errorf("%w: %d messages left after %s", errNotDrained, left, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, left, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sampler records the backlog every interval from start until stop is called.
type sampler struct {
	mu      sync.Mutex
	samples []LagSample
	errs    int
	cancel  context.CancelFunc
	done    chan struct{}
}

func startSampler(ctx context.Context, w lagWatch, start time.Time, every time.Duration) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			qctx, qcancel := context.WithTimeout(ctx, every)
			lag, err := w.lag(qctx)
			qcancel()
			s.mu.Lock()
			if err != nil {
				s.errs++
			} else {
				s.samples = append(s.samples, LagSample{At: time.Since(start).Seconds(), Lag: lag})
			}
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends sampling and returns the samples.
func (s *sampler) stop() []LagSample {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// LagSummary says whether a backlog stayed bounded: its largest value, and its trend (messages
// per second, least squares) over a phase. Under constant load a trend near zero means kpi keeps
// up; a trend near the input rate minus kpi's rate means it falls behind at that pace.
type LagSummary struct {
	Max int64 `json:"max"`
	// Trend is nil when the phase held fewer than three samples: too short to call a trend.
	Trend   *float64    `json:"trend_per_s,omitempty"`
	Samples []LagSample `json:"samples"`
}

func summariseLag(samples []LagSample, from, to float64) LagSummary {
	out := LagSummary{Samples: samples}
	var xs, ys []float64
	for _, s := range samples {
		out.Max = max(out.Max, s.Lag)
		if s.At >= from && s.At <= to {
			xs = append(xs, s.At)
			ys = append(ys, float64(s.Lag))
		}
	}
	if len(xs) >= 3 {
		t := Slope(xs, ys)
		out.Trend = &t
	}
	return out
}

// TrendString reads "+1,234/s", or "n/a" without a trend.
func (l LagSummary) TrendString() string {
	if l.Trend == nil {
		return "n/a (phase too short)"
	}
	if *l.Trend >= 0 {
		return "+" + Count(*l.Trend) + "/s"
	}
	return Count(*l.Trend) + "/s"
}

// KeptUp judges a fixed-rate phase: the backlog never held more than two seconds of input and did
// not grow by more than 5 % of the input rate.
func (l LagSummary) KeptUp(rate float64) (bool, string) {
	if l.Max > int64(2*rate) {
		return false, fmt.Sprintf("fell behind: backlog reached %s msgs, more than 2 s of input", Count(float64(l.Max)))
	}
	if l.Trend != nil && *l.Trend > 0.05*rate {
		return false, fmt.Sprintf("fell behind: backlog grew %s msgs/s, more than 5%% of the input rate", Count(*l.Trend))
	}
	return true, "kept up: backlog bounded"
}

// String shows every sample, compactly, so the shape is visible in the log.
func (l LagSummary) String() string {
	s := ""
	for i, v := range l.Samples {
		if i > 0 {
			s += " "
		}
		s += Count(float64(v.Lag))
	}
	return s
}
