package app

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
	"github.com/ticketpulse/ticketpulse/services/platform/watermark"
)

// triggeredBy counts the TRIGGERED changes in ESCALATIONS per ticket.
func (s *stack) triggeredBy(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, c := range s.changes(t) {
		if c.GetKind() == tpv1.ChangeKind_CHANGE_KIND_TRIGGERED {
			out[c.GetEscalation().GetSubjectId()]++
		}
	}
	return out
}

// waitAllAcked waits until the TICKETS durable acknowledged every event published.
func (s *stack) waitAllAcked(t *testing.T) uint64 {
	t.Helper()
	ctx := context.Background()
	var last uint64
	waitFor(t, "every ticket event acknowledged", func() bool {
		st, err := s.js.Stream(ctx, stream.TicketsName)
		if err != nil {
			return false
		}
		last = st.CachedInfo().State.LastSeq
		c, err := s.js.Consumer(ctx, stream.TicketsName, "escalation")
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.AckFloor.Stream >= last && info.NumAckPending == 0
	})
	return last
}

// waitWatermark waits until the TICKETS durable's watermark has no gap and reached seq.
func (s *stack) waitWatermark(t *testing.T, seq uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("the watermark at %d", seq), func() bool {
		h := s.rdb.HGetAll(context.Background(), watermark.Key(Name, "escalation")).Val()
		w, _ := strconv.ParseUint(h["w"], 10, 64)
		return h["gap"] == "0" && w >= seq
	})
}

func tickets(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

// Redis is copied while escalations trigger, more trigger (on arrival and by timer) and more
// SLA clocks start, and Redis restarts from the old copy: every due escalation is triggered
// exactly once in ESCALATIONS, none missing (the lost timers are planned again by the replay),
// none doubled (a replayed trigger has the same message id and JetStream drops it).
func TestRedisLossTriggersEachEscalationOnce(t *testing.T) {
	redisSrv, _ := testenv.NewRedis(t)
	s := newStack(t, redisSrv.Addr)
	cfg := s.config()
	cfg.WatermarkInterval = 100 * time.Millisecond
	s.run(t, cfg)
	now := s.clock.now
	publish := func(ids []string, ago time.Duration) {
		for _, id := range ids {
			s.publish(t, createdAgo(id, now(), ago))
		}
	}
	waitTriggered := func(ids ...[]string) {
		t.Helper()
		waitFor(t, "escalations triggered", func() bool {
			got := s.triggeredBy(t)
			for _, set := range ids {
				for _, id := range set {
					if got[id] == 0 {
						return false
					}
				}
			}
			return true
		})
	}

	// Before the copy: breached on arrival, and at risk (48 minutes) in 8 minutes by timer.
	breachedBefore, timerAfterCopy := tickets("A", 5), tickets("P", 5)
	publish(breachedBefore, 2*time.Hour)
	publish(timerAfterCopy, 40*time.Minute)
	waitTriggered(breachedBefore)
	s.waitWatermark(t, s.waitAllAcked(t))
	snap := redisSrv.Snapshot(t)
	if got := s.triggeredBy(t); len(got) != len(breachedBefore) {
		t.Fatalf("triggered before the copy %v, want only %v", got, breachedBefore)
	}
	s.clock.advance(10 * time.Minute) // P's timers come due

	// After the copy, lost by the restore: escalations triggered on arrival and by the timers
	// planned before the copy, and SLA clocks whose timers are due later.
	breachedLost, timersLost := tickets("B", 5), tickets("C", 5)
	publish(breachedLost, 2*time.Hour)
	publish(timersLost, 30*time.Minute)
	waitTriggered(breachedLost, timerAfterCopy)
	s.waitAllAcked(t)

	redisSrv.RestartFrom(t, snap)
	s.waitWatermark(t, s.waitAllAcked(t))
	breachedAfter := tickets("D", 5)
	publish(breachedAfter, 2*time.Hour)
	waitTriggered(breachedAfter)

	// C's timers (at risk after 48 minutes) come due.
	s.clock.advance(20 * time.Minute)
	waitTriggered(timersLost)
	time.Sleep(time.Second) // a doubled trigger, if any, has landed

	got := s.triggeredBy(t)
	var want []string
	for _, set := range [][]string{breachedBefore, timerAfterCopy, breachedLost, timersLost, breachedAfter} {
		want = append(want, set...)
	}
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("ticket %s triggered %d times, want once", id, got[id])
		}
	}
	var ids []string
	for id := range got {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("escalations for %v, want %v", ids, want)
	}
}
