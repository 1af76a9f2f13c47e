package engine

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// benchStack is a Redis of its own (so its memory is the benchmark's alone) and an embedded NATS.
type benchStack struct {
	addr string
	rdb  redis.UniversalClient
	js   jetstream.JetStream
	cfg  *atomic.Pointer[rulesfile.Config]
}

func newBenchStack(b *testing.B) *benchStack {
	b.Helper()
	rs, err := testenv.StartRedis(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rs.Kill)
	js := escalationsStream(b)
	ptr := ruleset(b, testRules)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, PoolSize: 64})
	b.Cleanup(func() { rdb.Close() })
	return &benchStack{addr: rs.Addr, rdb: rdb, js: js, cfg: ptr}
}

// replica is one escalation replica: its own Redis client, timer queue and engine.
type replica struct {
	rdb    redis.UniversalClient
	queue  *timers.Queue
	engine *Engine
}

func (s *benchStack) replica(onFire func(time.Duration)) *replica {
	rdb := redis.NewClient(&redis.Options{Addr: s.addr, PoolSize: 64})
	q := timers.New(rdb, timers.Options{OnFire: onFire})
	e := New(rdb, escalationstore.New(rdb, time.Hour), q, s.js, s.cfg, time.Now, Options{TicketRetention: 24 * time.Hour, Parallel: 32}, quiet)
	return &replica{rdb: rdb, queue: q, engine: e}
}

func (s *benchStack) usedMemory(b *testing.B) int64 {
	info := s.rdb.Info(context.Background(), "memory").Val()
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory")
	return 0
}

func (s *benchStack) published(b *testing.B) uint64 {
	st, err := s.js.Stream(context.Background(), stream.EscalationsName)
	if err != nil {
		b.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return info.State.Msgs
}

// delays records firing delays.
type delays struct {
	mu sync.Mutex
	d  []time.Duration
}

func (d *delays) add(x time.Duration) {
	d.mu.Lock()
	d.d = append(d.d, x)
	d.mu.Unlock()
}

func (d *delays) quantile(q float64) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := slices.Clone(d.d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// watchPublished records, for every escalation change published, how long after its ticket's
// deadline it arrived: the firing delay as a supervisor's tool would see it.
func (s *benchStack) watchPublished(b *testing.B, dueOf func(ticket string) time.Time) *delays {
	d := &delays{}
	sub, err := s.js.Conn().Subscribe("escalations.>", func(m *nats.Msg) {
		at := time.Now()
		c, err := ChangeFromMsg(m.Data)
		if err != nil {
			b.Error(err)
			return
		}
		d.add(at.Sub(dueOf(c.GetEscalation().GetSubjectId())))
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	return d
}

// ticketIndex is i of ticket "<prefix>-<i>".
func ticketIndex(id string) int {
	_, n, _ := strings.Cut(id, "-")
	i, _ := strconv.Atoi(n)
	return i
}

// rawRoundTrip is the time of one Redis round trip on this machine now, the unit the engine's
// cost per event is reported in.
func rawRoundTrip(b *testing.B, rdb redis.UniversalClient) time.Duration {
	ctx := context.Background()
	const n = 2000
	start := time.Now()
	for range n {
		if err := rdb.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / n
}

// rawPublish is the time of one synchronous JetStream publish on this machine now.
func rawPublish(b *testing.B, js jetstream.JetStream) time.Duration {
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	const n = 2000
	start := time.Now()
	for i := range n {
		if _, err := js.Publish(ctx, "raw.x", []byte(strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / n
}

// openTickets feeds n ticket-created events through Tickets in consumer-sized batches; ticket i
// breaches its first-response target at dueAt(i).
func openTickets(b *testing.B, e *Engine, prefix string, n int, dueAt func(i int) time.Time) time.Duration {
	ctx := context.Background()
	const batch = 200
	start := time.Now()
	for i := 0; i < n; i += batch {
		evs := make([]*tpv1.TicketEvent, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			evs = append(evs, created(fmt.Sprintf("%s-%d", prefix, j), fmt.Sprintf("%s-%d", prefix, j), dueAt(j).Add(-time.Hour)))
		}
		if err := e.Tickets(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkTimers100k opens 100,000 tickets whose first-response deadlines fall over 20 s, runs
// two replicas, and reports the cost of planning a ticket's timer from its event, the firing
// delay of the escalations, and the memory a waiting ticket and its timer take in Redis.
func BenchmarkTimers100k(b *testing.B) {
	for range b.N {
		const n = 100_000
		s := newBenchStack(b)
		rt := rawRoundTrip(b, s.rdb)
		pub := rawPublish(b, s.js)
		d := &delays{}
		r1, r2 := s.replica(d.add), s.replica(d.add)

		before := s.usedMemory(b)
		// The first deadline comes once every ticket is open (planning takes a few seconds).
		first := time.Now().Add(25 * time.Second)
		spread := 20 * time.Second
		dueAt := func(i int) time.Time { return first.Add(spread * time.Duration(i) / n) }
		seen := s.watchPublished(b, func(ticket string) time.Time { return dueAt(ticketIndex(ticket)) })
		took := openTickets(b, r1.engine, "T", n, dueAt)
		after := s.usedMemory(b)
		if time.Now().After(first) {
			b.Fatalf("opening the tickets took %s, past the first deadline", took)
		}
		var timerBytes int64
		for sh := range 16 {
			timerBytes += s.rdb.MemoryUsage(context.Background(), fmt.Sprintf("tp:{tq:%d}:due", sh)).Val()
		}

		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, r := range []*replica{r1, r2} {
			wg.Add(1)
			go func() { defer wg.Done(); _ = r.queue.Run(ctx, 50*time.Millisecond, time.Now, r.engine.Fire) }()
		}
		deadline := first.Add(spread + 60*time.Second)
		for s.published(b) < n {
			if time.Now().After(deadline) {
				cancel()
				b.Fatalf("only %d of %d escalations published", s.published(b), n)
			}
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		wg.Wait()
		if got := s.published(b); got != n {
			b.Errorf("%d escalations published, want %d (one per ticket)", got, n)
		}

		perEvent := took / n
		b.ReportMetric(float64(perEvent.Microseconds()), "µs/event-planned")
		b.ReportMetric(float64(perEvent)/float64(rt), "redis-round-trips/event")
		b.ReportMetric(float64(d.quantile(0.5).Milliseconds()), "ms-claimed-p50")
		b.ReportMetric(float64(d.quantile(0.99).Milliseconds()), "ms-claimed-p99")
		b.ReportMetric(float64(seen.quantile(0.5).Milliseconds()), "ms-published-p50")
		b.ReportMetric(float64(seen.quantile(0.99).Milliseconds()), "ms-published-p99")
		b.ReportMetric(float64(seen.quantile(1).Milliseconds()), "ms-published-max")
		b.ReportMetric(float64(timerBytes)/n, "B/timer")
		b.ReportMetric(float64(after-before)/n, "B/open-ticket")
		b.ReportMetric(float64(rt.Microseconds()), "µs/raw-redis-rt")
		b.ReportMetric(float64(pub.Microseconds()), "µs/raw-js-publish")
	}
}

// BenchmarkBurst10k: 10,000 tickets breach in the same instant with two replicas running; every
// escalation must be published within 5 s, each exactly once.
func BenchmarkBurst10k(b *testing.B) {
	for range b.N {
		const n = 10_000
		s := newBenchStack(b)
		d := &delays{}
		r1, r2 := s.replica(d.add), s.replica(d.add)
		due := time.Now().Add(8 * time.Second).Truncate(time.Second)
		seen := s.watchPublished(b, func(string) time.Time { return due })
		openTickets(b, r1.engine, "B", n, func(int) time.Time { return due })
		if time.Now().After(due) {
			b.Fatal("opening the tickets took past the deadline")
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, r := range []*replica{r1, r2} {
			wg.Add(1)
			go func() { defer wg.Done(); _ = r.queue.Run(ctx, 50*time.Millisecond, time.Now, r.engine.Fire) }()
		}
		for s.published(b) < n && time.Since(due) < 30*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
		all := time.Since(due)
		time.Sleep(500 * time.Millisecond) // a second firing would publish by now
		cancel()
		wg.Wait()
		if got := s.published(b); got != n {
			b.Fatalf("%d escalations published, want %d", got, n)
		}
		if all > 5*time.Second {
			b.Errorf("the burst took %s to publish, target 5s", all)
		}
		// Each escalation was changed once: its sequence is 1.
		store := escalationstore.New(s.rdb, time.Hour)
		for i := 0; i < n; i += 97 {
			r, err := store.Current(context.Background(), "acme", rulesfile.RuleFirstResponse, escalationstore.Subject{Kind: escalationstore.Ticket, ID: fmt.Sprintf("B-%d", i)})
			if err != nil || r == nil || r.Seq != 1 {
				b.Fatalf("escalation of B-%d: %v %+v", i, err, r)
			}
		}
		b.ReportMetric(float64(all.Milliseconds()), "ms-burst-all-published")
		b.ReportMetric(float64(d.quantile(0.99).Milliseconds()), "ms-claimed-p99")
		b.ReportMetric(float64(seen.quantile(0.5).Milliseconds()), "ms-published-p50")
	}
}
