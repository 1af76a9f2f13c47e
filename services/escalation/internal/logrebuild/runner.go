package logrebuild

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
)

// Judge stores events in the ticket log and judges the tickets they touch (engine.Tickets).
type Judge func(ctx context.Context, evs []*tpv1.TicketEvent) error

// Config tunes the jobs.
type Config struct {
	Lease, Checkpoint, Check time.Duration
	Batch                    int
}

// Defaults.
var Defaults = Config{Lease: 30 * time.Second, Checkpoint: 3 * time.Second, Check: 10 * time.Second, Batch: 500}

// ErrRetention is returned when TICKETS no longer holds the events a rebuild needs.
var ErrRetention = errors.New("TICKETS no longer holds the events to rebuild from")

// Runner starts, resumes and runs ticket log rebuilds.
type Runner struct {
	states *States
	js     jetstream.JetStream
	judge  Judge
	cfg    Config
	owner  string
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	active map[string]bool
	wg     sync.WaitGroup
}

// NewRunner returns a runner whose jobs run until ctx ends or Loop returns.
func NewRunner(ctx context.Context, states *States, js jetstream.JetStream, judge Judge, cfg Config, log *slog.Logger) *Runner {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	ctx, cancel := context.WithCancel(ctx)
	return &Runner{states: states, js: js, judge: judge, cfg: cfg, owner: hex.EncodeToString(b), log: log,
		ctx: ctx, cancel: cancel, active: map[string]bool{}}
}

// State returns tenant's state.
func (r *Runner) State(ctx context.Context, tenant string) (State, error) {
	return r.states.Get(ctx, tenant)
}

// Start starts a rebuild of tenant's ticket log from from (zero: the first message), or attaches
// to the one running with the same from.
func (r *Runner) Start(ctx context.Context, tenant string, from time.Time) (State, bool, error) {
	s, err := r.js.Stream(ctx, stream.TicketsName)
	if err != nil {
		return State{}, false, fmt.Errorf("stream %s: %w", stream.TicketsName, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return State{}, false, fmt.Errorf("stream %s: %w", stream.TicketsName, err)
	}
	if st := info.State; st.FirstSeq > 1 && (from.IsZero() || from.Before(st.FirstTime)) {
		return State{}, false, fmt.Errorf("%w: its first message (sequence %d) was stored at %s, the earlier ones are gone (retention); rebuild from that time or later (--from %s)",
			ErrRetention, st.FirstSeq, st.FirstTime.UTC().Format(time.RFC3339), st.FirstTime.UTC().Add(time.Second).Truncate(time.Second).Format(time.RFC3339))
	}
	st, attached, err := r.states.Start(ctx, tenant, from, r.owner, r.cfg.Lease)
	if err != nil || attached {
		return st, attached, err
	}
	r.launch(tenant)
	return st, false, nil
}

func (r *Runner) launch(tenant string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active[tenant] {
		return
	}
	r.active[tenant] = true
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.active, tenant)
			r.mu.Unlock()
		}()
		// On an error the job stops; a check (this replica's, or another's once the lease
		// lapsed) resumes it from its checkpoint.
		if err := r.run(r.ctx, tenant); err != nil && r.ctx.Err() == nil {
			r.log.Warn("ticket log rebuild", "tenant", tenant, "err", err)
		}
	}()
}

// Loop resumes, at start and every Check, the jobs whose lease lapsed; it returns when ctx ends,
// once its jobs stopped.
func (r *Runner) Loop(ctx context.Context) error {
	defer func() {
		r.cancel()
		r.wg.Wait()
	}()
	for {
		tenants, err := r.states.Jobs(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("ticket log rebuild: list jobs", "err", err)
		}
		for _, tenant := range tenants {
			r.mu.Lock()
			mine := r.active[tenant]
			r.mu.Unlock()
			if mine {
				continue
			}
			ok, err := r.states.Claim(ctx, tenant, r.owner, r.cfg.Lease)
			switch {
			case err != nil:
				r.log.Warn("ticket log rebuild: claim job", "tenant", tenant, "err", err)
			case ok:
				r.log.Info("ticket log rebuild: resuming job", "tenant", tenant)
				r.launch(tenant)
			default:
				if err := r.states.Forget(ctx, tenant); err != nil {
					r.log.Warn("ticket log rebuild: forget finished job", "tenant", tenant, "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.cfg.Check):
		}
	}
}

func (r *Runner) run(ctx context.Context, tenant string) error {
	st, err := r.states.Get(ctx, tenant)
	if err != nil || !st.Building {
		return err
	}
	s, err := r.js.Stream(ctx, stream.TicketsName)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream.TicketsName, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream.TicketsName, err)
	}
	p := Progress{End: st.End, Checkpoint: st.Checkpoint, Done: st.Done, Total: st.Total}
	if p.End == 0 {
		// Read after the job was recorded; later messages reach the log through the live consumer.
		p.End = info.State.LastSeq
		if err := r.states.Checkpoint(ctx, tenant, r.owner, r.cfg.Lease, p); err != nil {
			return err
		}
	} else if p.Checkpoint > 0 && p.Checkpoint < p.End && info.State.FirstSeq > p.Checkpoint+1 {
		reason := fmt.Sprintf("%v: the job stopped at sequence %d and the stream now starts at %d (retention); start it again with a later --from",
			ErrRetention, p.Checkpoint, info.State.FirstSeq)
		return r.states.Finish(ctx, tenant, r.owner, "failed", reason)
	}
	if p.End > 0 && p.Checkpoint < p.End {
		if err := r.replay(ctx, s, tenant, st.From, &p); err != nil {
			return err
		}
	}
	r.log.Info("ticket log rebuilt", "tenant", tenant, "events", p.Done)
	return r.states.Finish(ctx, tenant, r.owner, "done", "")
}

func (r *Runner) replay(ctx context.Context, s jetstream.Stream, tenant string, from time.Time, p *Progress) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{stream.TicketSubject(tenant, ">")}}
	switch {
	case p.Checkpoint > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, p.Checkpoint+1
	case !from.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("replay consumer of tenant %s: %w", tenant, err)
	}
	lastCheckpoint := time.Now()
	for p.Checkpoint < p.End {
		batch, err := cons.Fetch(r.cfg.Batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("replay tenant %s: %w", tenant, err)
		}
		var evs []*tpv1.TicketEvent
		var last, pending uint64
		n := 0
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("replay tenant %s: message metadata: %w", tenant, err)
			}
			if md.Sequence.Stream > p.End {
				p.Checkpoint = p.End // later messages are the live consumer's
				break
			}
			last, pending = md.Sequence.Stream, md.NumPending
			n++
			if _, ev, err := eventcodec.Decode(m); err == nil {
				evs = append(evs, ev) // an undecodable message is the live consumer's dead letter
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("replay tenant %s: %w", tenant, err)
		}
		if len(evs) > 0 {
			if err := r.judge(ctx, evs); err != nil {
				return fmt.Errorf("replay tenant %s: %w", tenant, err)
			}
		}
		if n > 0 {
			p.Done += int64(n)
			p.Checkpoint = max(p.Checkpoint, last)
			p.Total = p.Done + int64(min(pending, p.End-min(p.End, last)))
		} else if p.Checkpoint < p.End {
			ci, err := cons.Info(ctx)
			if err != nil {
				return fmt.Errorf("replay tenant %s: %w", tenant, err)
			}
			if ci.NumPending == 0 {
				p.Checkpoint = p.End
			}
		}
		if p.Checkpoint >= p.End {
			p.Total = p.Done
		}
		if p.Checkpoint >= p.End || time.Since(lastCheckpoint) >= r.cfg.Checkpoint {
			if err := r.states.Checkpoint(ctx, tenant, r.owner, r.cfg.Lease, *p); err != nil {
				return err
			}
			lastCheckpoint = time.Now()
		}
	}
	return nil
}
